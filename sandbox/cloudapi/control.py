"""The client of a running emulator's ``/_sandbox/`` control endpoints, for tests, benchmarks
and other processes: read what it accepted and its stats, script its faults, reset it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import requests

from sandbox.cloudapi.records import AcceptedMessage
from sandbox.faults import FaultRule

CONTROL_TIMEOUT_S = 5.0


class SandboxControl:
    """Client for the ``/_sandbox/`` control endpoints of a running emulator."""

    def __init__(self, url: str, *, timeout_s: float = CONTROL_TIMEOUT_S) -> None:
        self._url = url.rstrip("/")
        self._timeout_s = timeout_s

    def messages(self) -> list[AcceptedMessage]:
        payload = self._call("GET", "/_sandbox/messages")
        return [AcceptedMessage.from_dict(m) for m in payload["messages"]]

    def set_rules(self, rules: Sequence[FaultRule | Mapping[str, Any]]) -> None:
        """Replace the rules; raises ``ValueError`` on a rule this side or the server refuses."""
        checked = [r if isinstance(r, FaultRule) else FaultRule.from_dict(r) for r in rules]
        self._call("PUT", "/_sandbox/rules", {"rules": [r.to_dict() for r in checked]})

    def reset(self) -> None:
        self._call("POST", "/_sandbox/reset")

    def stats(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in self._call("GET", "/_sandbox/stats").items()}

    def _call(self, method: str, path: str, body: object = None) -> dict[str, Any]:
        url = self._url + path
        with requests.request(method, url, json=body, timeout=self._timeout_s) as response:
            if response.status_code == 400:
                raise ValueError(response.json()["error"]["error_data"]["details"])
            response.raise_for_status()
            payload = response.json()
        if not isinstance(payload, dict):
            raise ValueError(f"unexpected answer from {url}: {payload!r}")
        return payload
