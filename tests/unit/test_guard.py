"""The DynamoDB cap guard on moto: a moving 24 h window that racing writers cannot pass."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from campaigns.aws.clients import dynamodb_client
from campaigns.aws.dynamo import deserialize
from campaigns.aws.guard import DynamoCapGuard
from campaigns.ports import Reservation
from campaigns.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

HOUR_S = 3600.0
DAY_S = 24 * HOUR_S
DAY = datetime(2026, 3, 10, tzinfo=UTC)  # day D of every test


def at(day: int, hour: int, minute: int = 0) -> float:
    """Epoch seconds at ``hour:minute`` UTC of day D + ``day``."""
    return (DAY + timedelta(days=day, hours=hour, minutes=minute)).timestamp()


def date_of(day: int) -> str:
    return (DAY + timedelta(days=day)).strftime("%Y-%m-%d")


@pytest.fixture
def db(aws_settings: Settings) -> DynamoDBClient:
    return dynamodb_client(aws_settings)


def make_guard(
    db: DynamoDBClient, aws_settings: Settings, cap: int, portfolio: str = "default"
) -> DynamoCapGuard:
    return DynamoCapGuard(db, aws_settings.campaigns_table, cap, portfolio)


def counter_item(db: DynamoDBClient, aws_settings: Settings, pk: str) -> dict[str, Any]:
    response = db.get_item(
        TableName=aws_settings.campaigns_table,
        Key={"PK": {"S": pk}, "SK": {"S": "METADATA"}},
        ConsistentRead=True,
    )
    return deserialize(response.get("Item", {}))


def reserve_n(guard: DynamoCapGuard, now_s: float, n: int) -> list[Reservation | None]:
    return [guard.reserve(now_s) for _ in range(n)]


def test_the_cap_is_never_exceeded(db: DynamoDBClient, aws_settings: Settings) -> None:
    guard = make_guard(db, aws_settings, cap=3)

    results = reserve_n(guard, at(0, 10, 15), 5)

    granted = [r for r in results if r is not None]
    assert results[3:] == [None, None]
    assert [r.used for r in granted] == [1, 2, 3]
    assert {(r.bucket, r.hour, r.limit) for r in granted} == {
        (f"DAILY_COUNTER#{date_of(0)}", 10, 3)
    }
    item = counter_item(db, aws_settings, f"DAILY_COUNTER#{date_of(0)}")
    assert (item["h10"], item["count"], item["openHour"]) == (3, 3, 10)
    assert guard.usage(at(0, 10, 30)).used == 3


def test_a_refund_frees_a_unit(db: DynamoDBClient, aws_settings: Settings) -> None:
    guard = make_guard(db, aws_settings, cap=2)
    first, second = reserve_n(guard, at(0, 10), 2)
    assert first is not None
    assert second is not None
    assert guard.reserve(at(0, 10, 5)) is None

    guard.refund(second)

    assert guard.usage(at(0, 10, 6)).used == 1
    again = guard.reserve(at(0, 10, 7))
    assert again is not None
    assert again.used == 2
    assert guard.reserve(at(0, 10, 8)) is None
    item = counter_item(db, aws_settings, f"DAILY_COUNTER#{date_of(0)}")
    assert (item["h10"], item["count"]) == (2, 2)


def test_a_refusal_is_believed_only_on_a_fresh_read(
    db: DynamoDBClient, aws_settings: Settings
) -> None:
    guard = make_guard(db, aws_settings, cap=2)
    first, _ = reserve_n(guard, at(0, 10), 2)  # this guard now remembers a full bucket
    assert first is not None
    make_guard(db, aws_settings, cap=2).refund(first)  # another process gives one back

    again = guard.reserve(at(0, 10, 1))

    assert again is not None
    assert again.used == 2


def test_a_refund_never_takes_a_bucket_below_zero(
    db: DynamoDBClient, aws_settings: Settings
) -> None:
    guard = make_guard(db, aws_settings, cap=2)
    reservation = guard.reserve(at(0, 10))
    assert reservation is not None

    guard.refund(reservation)
    guard.refund(reservation)

    item = counter_item(db, aws_settings, f"DAILY_COUNTER#{date_of(0)}")
    assert (item["h10"], item["count"]) == (0, 0)


@pytest.mark.parametrize("fresh_guard_each_time", [False, True])
def test_the_window_moves_units_count_for_24_hours_and_are_free_25_hours_later(
    db: DynamoDBClient, aws_settings: Settings, fresh_guard_each_time: bool
) -> None:
    first = make_guard(db, aws_settings, cap=2)
    assert all(reserve_n(first, at(0, 10, 20), 2))

    def reserve(now_s: float) -> Reservation | None:
        guard = make_guard(db, aws_settings, cap=2) if fresh_guard_each_time else first
        return guard.reserve(now_s)

    assert reserve(at(0, 23, 59)) is None  # H+13, same day
    assert reserve(at(1, 9, 59)) is None  # H+23, next day
    assert reserve(at(1, 10, 30)) is None  # H+24: the window is 24-25 h, never less
    granted = reserve(at(1, 11, 0))  # H+25
    assert granted is not None
    assert (granted.bucket, granted.hour, granted.used) == (f"DAILY_COUNTER#{date_of(1)}", 11, 1)


def test_units_charged_just_after_midnight_count_until_the_next_midnight(
    db: DynamoDBClient, aws_settings: Settings
) -> None:
    guard = make_guard(db, aws_settings, cap=1)
    assert guard.reserve(at(0, 0, 1)) is not None

    assert guard.reserve(at(0, 23, 59)) is None
    assert guard.reserve(at(1, 0, 30)) is None
    assert guard.reserve(at(1, 1, 0)) is not None


def test_crossing_midnight_seals_the_previous_day_and_keeps_its_count(
    db: DynamoDBClient, aws_settings: Settings
) -> None:
    guard = make_guard(db, aws_settings, cap=10)
    assert all(reserve_n(guard, at(0, 22, 40), 3))

    tomorrow = guard.reserve(at(1, 1, 5))

    assert tomorrow is not None
    assert tomorrow.used == 4  # yesterday's 22:00 bucket is inside the window
    yesterday = counter_item(db, aws_settings, f"DAILY_COUNTER#{date_of(0)}")
    assert yesterday["sealed"] is True
    assert (yesterday["count"], yesterday["h22"]) == (3, 3)
    today = counter_item(db, aws_settings, f"DAILY_COUNTER#{date_of(1)}")
    assert (today["count"], today["h01"], today["openHour"]) == (1, 1, 1)
    assert "sealed" not in today


@pytest.mark.parametrize(
    ("portfolio", "key"),
    [
        ("default", "DAILY_COUNTER#2026-03-10"),
        ("acme-retail", "DAILY_COUNTER#acme-retail#2026-03-10"),
    ],
)
def test_the_day_counter_is_keyed_by_portfolio(
    db: DynamoDBClient, aws_settings: Settings, portfolio: str, key: str
) -> None:
    guard = make_guard(db, aws_settings, cap=5, portfolio=portfolio)

    reservation = guard.reserve(at(0, 9))

    assert reservation is not None
    assert reservation.bucket == key
    assert counter_item(db, aws_settings, key)["count"] == 1


def test_portfolios_have_separate_caps(db: DynamoDBClient, aws_settings: Settings) -> None:
    default = make_guard(db, aws_settings, cap=1)
    other = make_guard(db, aws_settings, cap=1, portfolio="acme-retail")

    assert default.reserve(at(0, 9)) is not None
    assert other.reserve(at(0, 9)) is not None
    assert default.reserve(at(0, 9)) is None
    assert other.reserve(at(0, 9)) is None


def test_a_writer_whose_clock_lags_charges_the_later_bucket_and_keeps_the_cap(
    db: DynamoDBClient, aws_settings: Settings
) -> None:
    ahead = make_guard(db, aws_settings, cap=3)
    lagging = make_guard(db, aws_settings, cap=3)
    assert all(reserve_n(ahead, at(0, 5, 1), 2))

    late = lagging.reserve(at(0, 3, 59))  # its clock is an hour behind
    refused = lagging.reserve(at(0, 3, 59))

    assert late is not None
    assert late.hour == 5
    assert refused is None
    item = counter_item(db, aws_settings, f"DAILY_COUNTER#{date_of(0)}")
    assert item["h05"] == 3
    assert "h03" not in item
    assert ahead.reserve(at(0, 5, 2)) is None


def test_a_writer_lagging_behind_midnight_charges_the_new_day(
    db: DynamoDBClient, aws_settings: Settings
) -> None:
    ahead = make_guard(db, aws_settings, cap=5)
    lagging = make_guard(db, aws_settings, cap=5)
    assert lagging.reserve(at(0, 23, 58)) is not None
    assert ahead.reserve(at(1, 0, 1)) is not None  # seals day D

    late = lagging.reserve(at(0, 23, 59))

    assert late is not None
    assert (late.bucket, late.hour) == (f"DAILY_COUNTER#{date_of(1)}", 0)
    assert late.used == 3
    assert counter_item(db, aws_settings, f"DAILY_COUNTER#{date_of(0)}")["count"] == 1
    assert counter_item(db, aws_settings, f"DAILY_COUNTER#{date_of(1)}")["count"] == 2


def test_a_cap_of_zero_is_unlimited_but_still_counts(
    db: DynamoDBClient, aws_settings: Settings
) -> None:
    guard = make_guard(db, aws_settings, cap=0)

    results = reserve_n(guard, at(0, 14), 40)

    assert all(r is not None and r.limit == 0 for r in results)
    assert results[-1] is not None
    assert results[-1].used == 40
    assert counter_item(db, aws_settings, f"DAILY_COUNTER#{date_of(0)}")["count"] == 40
    assert guard.usage(at(0, 14)).used == 40


def test_racing_guards_in_threads_grant_exactly_the_cap(
    db: DynamoDBClient, aws_settings: Settings
) -> None:
    threads_n, per_thread, cap = 8, 30, 100
    now_s = at(0, 12, 30)
    start = threading.Barrier(threads_n)
    granted: list[int] = [0] * threads_n
    errors: list[BaseException] = []

    def race(index: int) -> None:
        guard = DynamoCapGuard(dynamodb_client(aws_settings), aws_settings.campaigns_table, cap)
        try:
            start.wait(timeout=10)
            granted[index] = sum(1 for _ in range(per_thread) if guard.reserve(now_s))
        except BaseException as exc:  # reported below, on the test's thread
            errors.append(exc)

    workers = [threading.Thread(target=race, args=(i,)) for i in range(threads_n)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)

    assert errors == []
    assert sum(granted) == cap
    item = counter_item(db, aws_settings, f"DAILY_COUNTER#{date_of(0)}")
    assert (item["h12"], item["count"]) == (cap, cap)


# -- property: no 24 h window ever holds more than the cap ----------------------------------

operations = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=6 * 60),  # minutes since the previous operation
        st.sampled_from(["reserve", "reserve", "refund"]),
        st.integers(min_value=0, max_value=1000),  # which live reservation a refund returns
    ),
    min_size=1,
    max_size=30,
)


@settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    cap=st.integers(min_value=1, max_value=4),
    start_minute=st.integers(min_value=0, max_value=24 * 60 - 1),
    ops=operations,
)
def test_no_reservation_ever_sees_more_than_the_cap_in_the_24_hours_before_it(
    db: DynamoDBClient,
    aws_settings: Settings,
    cap: int,
    start_minute: int,
    ops: list[tuple[int, str, int]],
) -> None:
    guard = make_guard(db, aws_settings, cap, portfolio=f"p{uuid.uuid4().hex[:12]}")
    now_s = at(0, 0) + start_minute * 60
    live: list[tuple[float, Reservation]] = []  # granted and not refunded: users reached
    granted_at: list[float] = []  # every grant, refunded or not

    for minutes, kind, pick in ops:
        now_s += minutes * 60
        if kind == "refund":
            if live:
                _, returned = live.pop(pick % len(live))
                guard.refund(returned)
            continue
        reservation = guard.reserve(now_s)
        if reservation is not None:
            live.append((now_s, reservation))
            granted_at.append(now_s)
            reached = sum(1 for t, _ in live if now_s - DAY_S < t <= now_s)
            assert reached <= cap
            assert reservation.used <= cap
        else:
            # Refused only when the 24-25 h window of hour buckets really holds the cap.
            window_start = now_s - now_s % HOUR_S - DAY_S
            assert sum(1 for t in granted_at if t >= window_start) >= cap
