"""No pacing: the in-memory ``campaigns.ports.RateLimiter``."""

from __future__ import annotations

import threading


class Unlimited:
    """No pacing (tests, and the in-process ``execute-batch``)."""

    def acquire(self, stop: threading.Event | None = None) -> bool:
        return not (stop is not None and stop.is_set())

    def throttled(self, retry_after_s: float | None = None) -> None:
        return None
