"""The client of a running emulator's ``/_sandbox/`` control endpoints, for tests, benchmarks
and other processes: read what it accepted and its stats, script its faults and what happens
after a send is accepted, steer its status webhooks and send Meta's other webhooks on demand,
reset it."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import requests

from sandbox.cloudapi.deliveryrules import DeliveryRule
from sandbox.cloudapi.records import AcceptedMessage
from sandbox.faults import FaultRule

CONTROL_TIMEOUT_S = 5.0
IDLE_POLL_S = 0.02  # how often wait_for_webhooks looks again


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

    # -- status webhooks -------------------------------------------------------------------

    def webhooks(self) -> dict[str, Any]:
        """``{"config", "stats", "pending_statuses", "recent"}``: the delivery as it stands."""
        return self._call("GET", "/_sandbox/webhooks")

    def configure_webhooks(self, **options: Any) -> dict[str, Any]:
        """Change delivery options (``url``, ``app_secret``, ``time_scale``…); the new config."""
        return dict(self._call("PUT", "/_sandbox/webhooks/config", options)["config"])

    def set_delivery_rules(self, rules: Sequence[DeliveryRule | Mapping[str, Any]]) -> None:
        """Replace the delivery rules (failures after acceptance, username users, held…)."""
        checked = [r if isinstance(r, DeliveryRule) else DeliveryRule.from_dict(r) for r in rules]
        self._call("PUT", "/_sandbox/delivery-rules", {"rules": [r.to_dict() for r in checked]})

    def wait_for_webhooks(self, timeout_s: float = 10.0) -> dict[str, Any]:
        """Poll (bounded) until nothing is queued, retries included; the last snapshot.
        Raises ``TimeoutError`` when something is still pending after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            snapshot = self.webhooks()
            if snapshot["stats"]["pending"] == 0:
                return snapshot
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{snapshot['stats']['pending']} webhooks still pending")
            time.sleep(IDLE_POLL_S)

    # -- Meta's other webhooks, on demand (each returns the payload it queued) -------------

    def user_preferences(
        self,
        value: str,
        *,
        phone: str | None = None,
        user_id: str | None = None,
        withhold_phone: bool = False,
    ) -> dict[str, Any]:
        """A user stops (``"stop"``) or resumes (``"resume"``) marketing messages."""
        who = _who(phone, user_id, withhold_phone)
        return self._event("user-preferences", {"value": value, **who})

    def inbound_text(
        self,
        text: str,
        *,
        phone: str | None = None,
        user_id: str | None = None,
        withhold_phone: bool = False,
    ) -> dict[str, Any]:
        """A text message from a user (``"STOP"``), by number and/or BSUID."""
        return self._event("inbound", {"text": text, **_who(phone, user_id, withhold_phone)})

    def template_status(
        self, name: str, language: str, event: str, *, reason: str | None = None
    ) -> dict[str, Any]:
        """``message_template_status_update``: PAUSED, DISABLED, REJECTED, APPROVED…"""
        request: dict[str, Any] = {"name": name, "language": language, "event": event}
        if reason is not None:
            request["reason"] = reason
        return self._event("template-status", request)

    def quality_update(self, event: str, *, current_limit: str = "TIER_250") -> dict[str, Any]:
        """``phone_number_quality_update``: DOWNGRADE, FLAGGED, UPGRADE, UNFLAGGED…"""
        return self._event("quality", {"event": event, "current_limit": current_limit})

    def account_update(self, event: str, *, detail: str | None = None) -> dict[str, Any]:
        """``account_update``: ACCOUNT_RESTRICTION, ACCOUNT_VIOLATION, DISABLED_UPDATE…"""
        request: dict[str, Any] = {"event": event}
        if detail is not None:
            request["detail"] = detail
        return self._event("account", request)

    def _event(self, name: str, request: dict[str, Any]) -> dict[str, Any]:
        return dict(self._call("POST", f"/_sandbox/webhooks/{name}", request)["payload"])

    def _call(self, method: str, path: str, body: object = None) -> dict[str, Any]:
        url = self._url + path
        with requests.request(method, url, json=body, timeout=self._timeout_s) as response:
            if response.status_code in (400, 409):
                raise ValueError(response.json()["error"]["error_data"]["details"])
            response.raise_for_status()
            payload = response.json()
        if not isinstance(payload, dict):
            raise ValueError(f"unexpected answer from {url}: {payload!r}")
        return payload


def _who(phone: str | None, user_id: str | None, withhold_phone: bool) -> dict[str, Any]:
    who: dict[str, Any] = {"withhold_phone": withhold_phone}
    if phone is not None:
        who["phone"] = phone
    if user_id is not None:
        who["user_id"] = user_id
    return who
