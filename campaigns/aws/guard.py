"""The cap guard: Meta's messaging limit, enforced atomically across every consumer.

Meta counts unique users reached by business-initiated messages in a *moving 24-hour window*
per business portfolio. We charge one unit per send into hour buckets, kept as attributes
``h00``..``h23`` of one item per UTC day (the seed's ``DAILY_COUNTER#<date>`` item, whose day
``count`` keeps being updated for reporting). A reservation is one conditional write:

    ADD count 1, hHH 1   IF openHour = HH AND not sealed AND hHH < cap - sum(previous 24 hours)

The previous 24 hours are *closed*: their sums are frozen and may be cached. An hour closes
when a writer advances ``openHour`` past it (a write that also checks that the hour it closes
still holds the value it read), and a day closes when the first writer of the next day seals
it. A writer whose clock lags behind sees the advanced ``openHour`` (or the seal) and charges
the later bucket instead, which only makes the window more conservative. The window is
therefore 24-25 hours, never less than Meta's 24, and no interleaving of racing writers can
pass the cap: the only bucket still open is checked by the condition itself.

Refunds (``ADD -1``) only ever lower a bucket, so a cached frozen sum errs on the safe side;
a refusal is confirmed with a fresh consistent read before it is believed. A refund is safe to
retry: it also writes the reservation's id into its thread's ``refundToken_<slot>`` attribute
and is conditional on that slot not holding it yet, so a retry whose first try landed (answer
lost) is recognised instead of refunding twice (as ``campaigns.aws.counters`` does for ADDs).
It is retried under ``campaigns.aws.retrying.refunds``; when it still fails, the caller keeps
the unit charged (``campaigns.engine.commit``).
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from campaigns.aws.dynamo import Item, Refused, Table, deserialize, flag, number, text
from campaigns.aws.items import bucket_key, counter_bucket, counter_key
from campaigns.aws.retrying import refunds
from campaigns.domain.clock import SystemClock
from campaigns.domain.errors import StoreUnavailable
from campaigns.ports import CapUsage, Clock, Reservation

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

HOURS = 24
MAX_RESERVE_TRIES = 12  # conflicts only happen around hour boundaries
REFUND_TOKEN_PREFIX = "refundToken_"  # noqa: S105 (an attribute name, not a secret)


def hour_attr(hour: int) -> str:
    return f"h{hour:02d}"


def day_and_hour(now_s: float) -> tuple[str, int]:
    moment = datetime.fromtimestamp(now_s, tz=UTC)
    return moment.strftime("%Y-%m-%d"), moment.hour


def previous_day(day: str) -> str:
    return (datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC) - timedelta(days=1)).strftime(
        "%Y-%m-%d"
    )


def next_day(day: str) -> str:
    return (datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC) + timedelta(days=1)).strftime(
        "%Y-%m-%d"
    )


@dataclass
class DayState:
    """What one day item held when last read (or written) by this process."""

    hours: list[int] = field(default_factory=lambda: [0] * HOURS)
    open_hour: int | None = None
    sealed: bool = False

    @classmethod
    def from_item(cls, item: Item | None) -> DayState:
        if not item:
            return cls()
        data = deserialize(item)
        hours = [int(data.get(hour_attr(h), 0)) for h in range(HOURS)]
        open_hour = data.get("openHour")
        return cls(
            hours=hours,
            open_hour=int(open_hour) if open_hour is not None else None,
            sealed=bool(data.get("sealed", False)),
        )


class DynamoCapGuard:
    """Implements ``campaigns.ports.CapGuard`` on the campaigns table's counter items."""

    def __init__(
        self,
        client: DynamoDBClient,
        table: str,
        cap: int,
        portfolio: str = "default",
        *,
        refund_client: DynamoDBClient | None = None,
        shard: int = 0,
        clock: Clock | None = None,
    ) -> None:
        self._table = Table(client, table)
        self._shard = shard
        # Refunds recognise their own landed tries (see the module's docstring), so they are
        # retried: by botocore when ``refund_client`` retries, and by the ``refunds`` policy.
        self._refunds = Table(refund_client or client, table)
        self._refund_retry = refunds(clock or SystemClock())
        self._refund_slot = threading.local()  # one slot per thread: its refunds are serial
        self._cap = cap
        self._portfolio = portfolio
        self._lock = threading.Lock()
        self._days: dict[str, DayState] = {}

    @property
    def limit(self) -> int:
        return self._cap

    def reserve(self, now_s: float) -> Reservation | None:
        day, hour = day_and_hour(now_s)
        fresh = False  # a refusal is believed only on a state read just now
        for _ in range(MAX_RESERVE_TRIES):
            today = self._state(day)
            if today.sealed:  # our clock lags behind a writer who already started the next day
                day, hour, fresh = next_day(day), 0, False
                continue
            target = max(hour, today.open_hour if today.open_hour is not None else hour)
            frozen = self._frozen_sum(day, target)
            remaining = self._cap - frozen if self._cap else None
            if remaining is not None and remaining <= today.hours[target]:
                if fresh:
                    return None
                self._read(day)
                fresh = True
                continue
            written = self._write(day, target, today, remaining)
            if written is None:
                self._read(day)  # someone moved the item: re-read and try again
                fresh = True
                continue
            return Reservation(
                bucket=counter_bucket(self._portfolio, day, self._shard),
                hour=target,
                used=frozen + written.hours[target],
                limit=self._cap,
            )
        raise StoreUnavailable("cap reservation kept conflicting; try again later")

    def refund(self, reservation: Reservation) -> None:
        slot = REFUND_TOKEN_PREFIX + self._slot()

        def landed(found: dict[str, Any]) -> bool:
            return found.get(slot) == reservation.id

        try:
            self._refunds.update(
                bucket_key(reservation.bucket),
                "ADD #c :minus, #h :minus SET #r = :id",
                condition="#h > :zero AND (attribute_not_exists(#r) OR #r <> :id)",
                names={"#c": "count", "#h": hour_attr(reservation.hour), "#r": slot},
                values={":minus": number(-1), ":zero": number(0), ":id": text(reservation.id)},
                landed=landed,
                retry=self._refund_retry,
                what="refund",
            )
        except Refused:
            return  # refunded already, or the bucket holds nothing to refund (never below 0)

    def _slot(self) -> str:
        slot: str | None = getattr(self._refund_slot, "value", None)
        if slot is None:
            slot = self._refund_slot.value = uuid.uuid4().hex[:12]
        return slot

    def usage(self, now_s: float) -> CapUsage:
        day, hour = day_and_hour(now_s)
        today = self._read(day)
        yesterday = self._read(previous_day(day))
        used = sum(today.hours[: hour + 1]) + sum(yesterday.hours[hour:])
        return CapUsage(used=used, limit=self._cap)

    # -- internals -----------------------------------------------------------------------

    def _frozen_sum(self, day: str, hour: int) -> int:
        """Units charged in the 24 closed hours before ``hour`` of ``day``."""
        with self._lock:
            today = self._days.get(day, DayState())
            yesterday = self._days.get(previous_day(day))
        if yesterday is None or not yesterday.sealed:
            yesterday = self._seal(previous_day(day))
        return sum(today.hours[:hour]) + sum(yesterday.hours[hour:])

    def _state(self, day: str) -> DayState:
        with self._lock:
            state = self._days.get(day)
        return state if state is not None else self._read(day)

    def _read(self, day: str) -> DayState:
        item = self._table.get(counter_key(self._portfolio, day, self._shard), what="cap read")
        state = DayState.from_item(item)
        self._remember(day, state)
        return state

    def _seal(self, day: str) -> DayState:
        """Close ``day`` for good: afterwards nobody can charge it, so its sums are final."""
        with self._lock:
            known = self._days.get(day)
        if known is not None and known.sealed:
            return known
        written = self._table.update(
            counter_key(self._portfolio, day, self._shard),
            "SET sealed = :t",
            values={":t": flag(True)},
            returns="ALL_NEW",
            what="cap seal",
        )
        state = DayState.from_item(written.item)
        self._remember(day, state)
        return state

    def _write(self, day: str, hour: int, seen: DayState, remaining: int | None) -> DayState | None:
        attr = hour_attr(hour)
        names = {"#c": "count", "#h": attr}
        values: dict[str, Any] = {":one": number(1), ":hour": number(hour)}
        conditions = ["attribute_not_exists(sealed)"]
        update = "ADD #c :one, #h :one"
        if seen.open_hour == hour:
            conditions.append("openHour = :hour")
        else:
            # Advancing the open hour closes the previous one: it must still hold what we read.
            update += " SET openHour = :hour"
            if seen.open_hour is None:
                conditions.append("attribute_not_exists(openHour)")
            else:
                names["#p"] = hour_attr(seen.open_hour)
                values[":open"] = number(seen.open_hour)
                values[":prev"] = number(seen.hours[seen.open_hour])
                conditions.append("openHour = :open")
                conditions.append(
                    "(#p = :prev OR attribute_not_exists(#p))"
                    if seen.hours[seen.open_hour] == 0
                    else "#p = :prev"
                )
        if remaining is not None:
            values[":rem"] = number(remaining)
            conditions.append("(attribute_not_exists(#h) OR #h < :rem)")
        try:
            written = self._table.update(
                counter_key(self._portfolio, day, self._shard),
                update,
                condition=" AND ".join(conditions),
                names=names,
                values=values,
                returns="ALL_NEW",
                what="cap reserve",
            )
        except Refused:
            return None
        state = DayState.from_item(written.item)
        self._remember(day, state)
        return state

    def _remember(self, day: str, state: DayState) -> None:
        with self._lock:
            self._days[day] = state
            if len(self._days) > 4:  # keep only the days a window can touch
                for old in sorted(self._days)[:-4]:
                    del self._days[old]


class ShardedCapGuard:
    """The cap split over ``N`` independent guards (``DAILY_COUNTER#…#s<k>`` items), each with
    its share of ``DAILY_CAP``; for send rates where one bucket item would pass DynamoDB's
    per-item write ceiling. The shares add up to the cap, so the total can never pass it, and
    a reservation is refused only when every shard refused, so the whole cap gets used."""

    def __init__(self, guards: list[DynamoCapGuard]) -> None:
        if not guards:
            raise ValueError("at least one shard")
        self._guards = guards
        self._next = threading.local()
        self._lock = threading.Lock()
        self._used = [0] * len(guards)
        self._turn = 0

    @classmethod
    def build(
        cls,
        client: DynamoDBClient,
        table: str,
        cap: int,
        shards: int,
        *,
        portfolio: str = "default",
        refund_client: DynamoDBClient | None = None,
        clock: Clock | None = None,
    ) -> ShardedCapGuard:
        shares = [cap // shards + (1 if k < cap % shards else 0) for k in range(shards)]
        if cap and min(shares) == 0:
            raise ValueError(f"DAILY_CAP {cap} is too small for {shards} counter shards")
        return cls(
            [
                DynamoCapGuard(
                    client,
                    table,
                    share,
                    portfolio,
                    refund_client=refund_client,
                    shard=k,
                    clock=clock,
                )
                for k, share in enumerate(shares)
            ]
        )

    @property
    def limit(self) -> int:
        return sum(guard.limit for guard in self._guards)

    def _start(self) -> int:
        start: int | None = getattr(self._next, "start", None)
        if start is None:  # each thread starts at its own shard, spreading the writes
            with self._lock:
                start = self._turn % len(self._guards)
                self._turn += 1
            self._next.start = start
        return start

    def reserve(self, now_s: float) -> Reservation | None:
        start = self._start()
        count = len(self._guards)
        for offset in range(count):
            shard = (start + offset) % count
            reservation = self._guards[shard].reserve(now_s)
            if reservation is not None:
                with self._lock:
                    self._used[shard] = reservation.used
                    used = sum(self._used)
                return Reservation(
                    bucket=reservation.bucket,
                    hour=reservation.hour,
                    used=used,
                    limit=self.limit,
                    shard=shard,
                    id=reservation.id,
                )
        return None

    def refund(self, reservation: Reservation) -> None:
        self._guards[reservation.shard].refund(reservation)

    def usage(self, now_s: float) -> CapUsage:
        usages = [guard.usage(now_s) for guard in self._guards]
        with self._lock:
            self._used = [u.used for u in usages]
        return CapUsage(used=sum(u.used for u in usages), limit=self.limit)
