"""The token bucket: holds the rate, cuts it on throttling, recovers, honours Retry-After."""

from __future__ import annotations

import threading

import pytest

from campaigns.engine.ratelimit import DECREASE_PER_THROTTLE, RECOVERY_S, TokenBucket
from campaigns.memory import ManualClock, Unlimited


def test_the_bucket_holds_the_configured_rate() -> None:
    clock = ManualClock()
    bucket = TokenBucket(20.0, burst=1.0, clock=clock)
    start = clock.monotonic()
    for _ in range(101):
        assert bucket.acquire()
    elapsed = clock.monotonic() - start
    assert elapsed == pytest.approx(100 / 20.0, rel=1e-6)  # the first token was in hand


def test_a_burst_is_allowed_then_the_rate_applies() -> None:
    clock = ManualClock()
    bucket = TokenBucket(80.0, clock=clock)  # burst = 8
    for _ in range(8):
        bucket.acquire()
    assert clock.slept == []  # the burst cost no waiting
    bucket.acquire()
    assert clock.slept == [pytest.approx(1 / 80.0)]


def test_a_throttle_cuts_the_rate_and_it_recovers_gradually() -> None:
    clock = ManualClock()
    bucket = TokenBucket(80.0, clock=clock)
    for _ in range(10):
        bucket.throttled()
    cut = 80.0 * (1 - DECREASE_PER_THROTTLE) ** 10
    assert bucket.current_rate() == pytest.approx(cut)
    clock.advance(1.0)
    assert bucket.current_rate() == pytest.approx(cut + 80.0 / RECOVERY_S)
    clock.advance(RECOVERY_S)
    assert bucket.current_rate() == 80.0


def test_a_hard_overload_collapses_the_rate_to_its_floor_but_not_below() -> None:
    clock = ManualClock()
    bucket = TokenBucket(100.0, clock=clock)
    for _ in range(1000):
        bucket.throttled()
    assert bucket.current_rate() == pytest.approx(5.0)  # 5 % of the target


def test_retry_after_holds_every_sender_back() -> None:
    clock = ManualClock()
    bucket = TokenBucket(1000.0, clock=clock)
    bucket.throttled(retry_after_s=7.0)
    bucket.acquire()
    assert clock.slept[-1] >= 7.0


def test_a_stop_interrupts_the_wait() -> None:
    clock = ManualClock()
    bucket = TokenBucket(1.0, burst=1.0, clock=clock)
    stop = threading.Event()
    assert bucket.acquire(stop)
    stop.set()
    assert not bucket.acquire(stop)
    assert not Unlimited().acquire(stop)


def test_threads_share_one_rate() -> None:
    clock = ManualClock()
    bucket = TokenBucket(50.0, burst=1.0, clock=clock)
    start = clock.monotonic()
    threads = [
        threading.Thread(target=lambda: [bucket.acquire() for _ in range(25)]) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    # 100 tokens at 50/s: whatever the interleaving, the slots handed out span ~2 s.
    assert sum(clock.slept) >= (100 - 1) / 50.0 - 1e-6
    assert clock.monotonic() - start > 0


def test_a_non_positive_rate_is_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        TokenBucket(0)
