"""The cap guard port: ``MemoryCapGuard`` and ``DynamoCapGuard`` (on moto) reserve up to the
cap over the same moving window, refuse past it and take refunds."""

from __future__ import annotations

from campaigns.ports import CapUsage
from tests.contract.conftest import Guards

HOUR_S = 3600.0
T0 = 1_767_225_600.0 + 10 * HOUR_S + 60  # 2026-01-01T10:01:00Z


def test_the_guard_reserves_up_to_the_cap_and_refuses_past_it(guards: Guards) -> None:
    guard = guards.build(3)

    reserved = [guard.reserve(T0) for _ in range(3)]

    assert [r.used if r else None for r in reserved] == [1, 2, 3]
    assert {r.limit for r in reserved if r} == {3}
    assert guard.reserve(T0) is None
    assert guard.usage(T0) == CapUsage(used=3, limit=3)


def test_a_refund_gives_the_unit_back(guards: Guards) -> None:
    guard = guards.build(2)
    first = guard.reserve(T0)
    assert first is not None
    assert guard.reserve(T0) is not None

    guard.refund(first)

    assert guard.usage(T0) == CapUsage(used=1, limit=2)
    assert guard.reserve(T0) is not None
    assert guard.reserve(T0) is None


def test_racing_guards_on_one_counter_share_the_cap(guards: Guards) -> None:
    first, second = guards.build(3), guards.build(3)

    outcomes = [g.reserve(T0) for g in (first, second, first, second)]

    assert [o is not None for o in outcomes] == [True, True, True, False]


def test_units_leave_the_window_after_a_day_and_an_hour(guards: Guards) -> None:
    guard = guards.build(2)
    assert guard.reserve(T0) is not None
    assert guard.reserve(T0 + HOUR_S) is not None

    assert guard.reserve(T0 + 23 * HOUR_S) is None  # both still in the last 24 hours
    assert guard.reserve(T0 + 24 * HOUR_S) is None  # the window is 24-25 hours, never less
    assert guard.usage(T0 + 25 * HOUR_S) == CapUsage(used=1, limit=2)
    assert guard.reserve(T0 + 25 * HOUR_S) is not None
    assert guard.reserve(T0 + 25 * HOUR_S) is None


def test_a_cap_of_zero_is_unlimited(guards: Guards) -> None:
    guard = guards.build(0)

    assert all(guard.reserve(T0) is not None for _ in range(5))
    assert guard.usage(T0) == CapUsage(used=5, limit=0)


def test_refunding_the_same_reservation_twice_refunds_it_once(guards: Guards) -> None:
    guard = guards.build(3)
    first = guard.reserve(T0)
    assert first is not None
    assert guard.reserve(T0) is not None

    guard.refund(first)
    guard.refund(first)  # a caller's retry, or a second path giving the same unit back

    assert guard.usage(T0) == CapUsage(used=1, limit=3)


def test_a_refund_retried_after_a_lost_answer_refunds_once(guards: Guards) -> None:
    guard = guards.build(3)
    first = guard.reserve(T0)
    assert first is not None
    assert guard.reserve(T0) is not None
    guards.lose_next_refund_answer()

    guard.refund(first)  # lands, its answer is lost, retried: recognised, not counted twice

    assert guard.usage(T0) == CapUsage(used=1, limit=3)


def test_refunds_of_different_reservations_each_give_a_unit_back(guards: Guards) -> None:
    guard = guards.build(3)
    reserved = [guard.reserve(T0) for _ in range(3)]

    for reservation in reserved:
        assert reservation is not None
        guard.refund(reservation)

    assert guard.usage(T0) == CapUsage(used=0, limit=3)
