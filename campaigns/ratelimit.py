"""Pacing: a thread-safe token bucket at ``SEND_RATE_PER_SECOND`` that holds the rate whatever
the API latency, cuts it on Meta's throttling answers and recovers gradually (AIMD)."""

from __future__ import annotations

import threading

from campaigns.clock import SystemClock
from campaigns.ports import Clock

MIN_RATE_FRACTION = 0.05  # never slow below 5% of the configured rate
DECREASE_FACTOR = 0.5  # multiplicative decrease on 130429 / 4 / 80007
RECOVERY_S = 10.0  # additive increase: back from the floor to the full rate in this long
MAX_RETRY_AFTER_S = 60.0


class TokenBucket:
    """``acquire`` blocks until the caller may send; FIFO-fair across threads."""

    def __init__(
        self, rate_per_s: float, burst: float | None = None, clock: Clock | None = None
    ) -> None:
        if rate_per_s <= 0:
            raise ValueError("rate_per_s must be positive")
        self._clock: Clock = clock or SystemClock()
        self._target = rate_per_s
        self._burst = burst if burst is not None else max(1.0, rate_per_s / 10)
        self._lock = threading.Lock()
        self._tokens = self._burst
        self._last = self._clock.monotonic()
        self._cut_rate = rate_per_s  # the rate right after the last cut
        self._cut_at = self._last - RECOVERY_S
        self._paused_until = 0.0

    @property
    def target_rate(self) -> float:
        return self._target

    def current_rate(self) -> float:
        with self._lock:
            return self._rate_at(self._clock.monotonic())

    def _rate_at(self, now: float) -> float:
        grown = self._cut_rate + (self._target / RECOVERY_S) * (now - self._cut_at)
        return min(self._target, grown)

    def acquire(self, stop: threading.Event | None = None) -> bool:
        with self._lock:
            now = self._clock.monotonic()
            rate = self._rate_at(now)
            self._tokens = min(self._burst, self._tokens + (now - self._last) * rate)
            self._last = now
            self._tokens -= 1.0  # reserve our slot now; a deficit is our wait
            wait_s = max(-self._tokens / rate, self._paused_until - now, 0.0)
        if wait_s > 0:
            return self._clock.sleep(wait_s, stop)
        return not (stop is not None and stop.is_set())

    def throttled(self, retry_after_s: float | None = None) -> None:
        with self._lock:
            now = self._clock.monotonic()
            floor = self._target * MIN_RATE_FRACTION
            self._cut_rate = max(floor, self._rate_at(now) * DECREASE_FACTOR)
            self._cut_at = now
            self._tokens = min(self._tokens, 0.0)
            if retry_after_s:
                self._paused_until = max(
                    self._paused_until, now + min(retry_after_s, MAX_RETRY_AFTER_S)
                )


class Unlimited:
    """No pacing (tests, and the in-process ``execute-batch``)."""

    def acquire(self, stop: threading.Event | None = None) -> bool:
        return not (stop is not None and stop.is_set())

    def throttled(self, retry_after_s: float | None = None) -> None:
        return None
