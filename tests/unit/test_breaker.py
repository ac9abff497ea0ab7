from __future__ import annotations

from campaigns.engine.breaker import SendBreaker
from campaigns.memory import ManualClock


def test_the_breaker_opens_after_consecutive_failures_and_closes_on_a_successful_probe() -> None:
    clock = ManualClock()
    breaker = SendBreaker(threshold=3, cooldown_s=10, clock=clock)
    for _ in range(2):
        breaker.failure()
    assert breaker.wait_s() == 0  # two failures: still sending

    breaker.failure()
    assert breaker.wait_s() == 10
    clock.advance(4)
    assert breaker.hold_s() == 6

    clock.advance(6)
    assert breaker.wait_s() == 0  # half-open: this caller probes
    assert breaker.wait_s() > 0  # everyone else waits for the probe
    breaker.success()
    assert breaker.wait_s() == 0
    assert not breaker.is_open


def test_a_failed_probe_doubles_the_cool_down_up_to_its_ceiling() -> None:
    clock = ManualClock()
    breaker = SendBreaker(threshold=1, cooldown_s=10, max_cooldown_s=25, clock=clock)
    breaker.failure()
    holds = []
    for _ in range(3):
        holds.append(breaker.wait_s())
        clock.advance(holds[-1])
        assert breaker.wait_s() == 0  # the probe
        breaker.failure()
    assert holds == [10, 20, 25]
    assert breaker.opened == 4  # the first opening and three failed probes


def test_a_success_between_failures_resets_the_count() -> None:
    breaker = SendBreaker(threshold=3, clock=ManualClock())
    for _ in range(10):
        breaker.failure()
        breaker.failure()
        breaker.success()
    assert not breaker.is_open
