"""Slowing down in a storm: after N consecutive transient send failures, stop sending for a
cool-down instead of burning the retry budget of every recipient in the queue.

Closed (sending) → open after ``threshold`` consecutive failures (no sends for ``cooldown_s``,
doubling up to ``max_cooldown_s`` while the storm lasts) → half-open (one probe send) →
closed again on the first success. Shared by every batch thread of a process.
"""

from __future__ import annotations

import threading

from campaigns.domain.clock import SystemClock
from campaigns.ports import Clock

DEFAULT_THRESHOLD = 5
DEFAULT_COOLDOWN_S = 5.0
DEFAULT_MAX_COOLDOWN_S = 120.0


class SendBreaker:
    def __init__(
        self,
        threshold: int = DEFAULT_THRESHOLD,
        cooldown_s: float = DEFAULT_COOLDOWN_S,
        max_cooldown_s: float = DEFAULT_MAX_COOLDOWN_S,
        clock: Clock | None = None,
    ) -> None:
        self._threshold = threshold
        self._base_cooldown_s = cooldown_s
        self._max_cooldown_s = max_cooldown_s
        self._clock: Clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._failures = 0
        self._cooldown_s = cooldown_s
        self._open_until: float | None = None
        self._probing = False
        self.opened = 0  # how often it opened (for logs and tests)

    def wait_s(self) -> float:
        """0 when a send may go now; otherwise how long to hold off."""
        with self._lock:
            if self._open_until is None:
                return 0.0
            now = self._clock.monotonic()
            if now < self._open_until:
                return self._open_until - now
            if self._probing:  # someone else is probing: wait for their answer
                return min(self._base_cooldown_s, 1.0)
            self._probing = True  # half-open: this caller sends the probe
            return 0.0

    def hold_s(self) -> float:
        """Time left in the current cool-down, without taking the probe (for the poll loop)."""
        with self._lock:
            if self._open_until is None:
                return 0.0
            return max(self._open_until - self._clock.monotonic(), 0.0)

    def success(self) -> None:
        with self._lock:
            self._failures = 0
            self._open_until = None
            self._probing = False
            self._cooldown_s = self._base_cooldown_s

    def failure(self) -> None:
        with self._lock:
            self._failures += 1
            now = self._clock.monotonic()
            if self._probing:  # the probe failed: stay open, longer
                self._probing = False
                self._cooldown_s = min(self._cooldown_s * 2, self._max_cooldown_s)
                self._open_until = now + self._cooldown_s
                self.opened += 1
            elif self._open_until is None and self._failures >= self._threshold:
                self._open_until = now + self._cooldown_s
                self.opened += 1

    @property
    def is_open(self) -> bool:
        with self._lock:
            return self._open_until is not None
