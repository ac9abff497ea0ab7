"""Pacing: a thread-safe token bucket at ``SEND_RATE_PER_SECOND`` that holds the rate whatever
the API latency, cuts it on Meta's throttling answers and recovers gradually (AIMD).

Each throttling answer (130429, 4, 80007) cuts the rate by ``DECREASE_PER_THROTTLE`` (2 %):
the cut is proportional to how much of the traffic Meta refuses, so a hard overload (most
requests refused) collapses the rate within a second while an occasional refusal only dents
it. The rate then grows back by a tenth of the target per second. At equilibrium the
decrease (0.02 · refused share · rate² per second) meets the increase (target / 10 per
second): with 10 % refused at 80 msg/s that is about 63 msg/s (docs/performance.md has the
measured figure).
"""

from __future__ import annotations

import threading

from campaigns.domain.clock import SystemClock
from campaigns.ports import Clock

MIN_RATE_FRACTION = 0.05  # never slow below 5% of the configured rate
DECREASE_PER_THROTTLE = 0.02  # multiplicative decrease per 130429 / 4 / 80007 answer
RECOVERY_S = 10.0  # additive increase: a tenth of the target per second
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
            self._cut_rate = max(floor, self._rate_at(now) * (1 - DECREASE_PER_THROTTLE))
            self._cut_at = now
            self._tokens = min(self._tokens, 0.0)
            if retry_after_s:
                self._paused_until = max(
                    self._paused_until, now + min(retry_after_s, MAX_RETRY_AFTER_S)
                )
