"""A clock that only moves when told to (or when slept on): deterministic tests."""

from __future__ import annotations

import threading


class ManualClock:
    """Implements ``campaigns.ports.Clock``; sleeping advances it instead of waiting."""

    def __init__(self, start_s: float = 1_767_225_600.0) -> None:  # 2026-01-01T00:00:00Z
        self._now = start_s
        self._mono = 0.0
        self._lock = threading.Lock()
        self.slept: list[float] = []

    def now(self) -> float:
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        with self._lock:
            return self._mono

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds
            self._mono += seconds

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> bool:
        self.slept.append(seconds)
        if stop is not None and stop.is_set():
            return False
        self.advance(max(seconds, 0.0))
        return True
