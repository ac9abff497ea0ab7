"""The receipts loop applying the messages of one receive at once: in parallel and bounded, each
deleted only after its own apply committed, the same end state as one at a time, and a stop
that lets the applies in flight finish and hands the rest back."""

from __future__ import annotations

import random
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from campaigns.domain.errors import StoreUnavailable
from campaigns.domain.models import DeliveryApplied, DeliveryReport
from campaigns.engine import receipts as receipts_module
from campaigns.engine.breaker import SendBreaker
from campaigns.engine.executor import BatchExecutor
from campaigns.memory import (
    FakeSender,
    ManualClock,
    MemoryCapGuard,
    MemoryQueue,
    MemoryStore,
    Unlimited,
)
from consumer.receipts import ReceiptsConfig, ReceiptsLoop
from consumer.worker import Worker, WorkerConfig
from tests.unit.test_receipts import (
    CAMPAIGN_ID,
    PHONES,
    T0,
    World,
    status_body,
    status_stream,
)

WAIT_S = 5.0  # a barrier or an event not reached by then fails the test instead of hanging it


@contextmanager
def frequent_thread_switches() -> Iterator[None]:
    """Switch threads every microsecond, not every 5 ms: the applies really interleave."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def sent_world(store: MemoryStore | None = None, phones: list[str] = PHONES) -> World:
    """A RUNNING campaign whose recipients were all sent through the real executor."""
    world = World(store=store) if store is not None else World()
    world.campaign(phones, campaign_id=CAMPAIGN_ID)
    for start in range(0, len(phones), 25):  # a batch message holds at most 25
        world.send(CAMPAIGN_ID, phones[start : start + 25])
    return world


def delivered(world: World, phone: str, user_id: str | None = None) -> str:
    wamid = world.store.recipient(CAMPAIGN_ID, phone).message_id
    assert wamid is not None
    callback = f"{CAMPAIGN_ID}:{phone}"
    return status_body(wamid, "delivered", T0 + 5, callback=callback, user_id=user_id)


def loop_over(
    world: World, queue: MemoryQueue, concurrency: int, *, once: bool = True
) -> ReceiptsLoop:
    return ReceiptsLoop(
        queue_factory=lambda: queue,
        applier=world.applier,
        metrics=world.metrics,
        config=ReceiptsConfig(
            poll_wait_s=0, visibility_timeout_s=30, once=once, concurrency=concurrency
        ),
    )


def end_state(world: World, phones: list[str] = PHONES) -> tuple[Any, ...]:
    campaign = world.store.get_campaign(CAMPAIGN_ID)
    # The lease owner carries a fresh token per claim: the same claims, not the same tokens.
    recipients = tuple(
        replace(world.store.recipient(CAMPAIGN_ID, p), lease_owner=None) for p in phones
    )
    return campaign, recipients, dict(world.store.user_links), dict(world.store.suppressed)


class BarrierStore(MemoryStore):
    """Each delivery write first waits at a barrier of ``parties``: it passes only when that
    many applies are under way at once (and breaks, failing the apply, after WAIT_S)."""

    def __init__(self, parties: int) -> None:
        super().__init__(clock=ManualClock())
        self.barrier = threading.Barrier(parties, timeout=WAIT_S)

    def apply_delivery(self, report: DeliveryReport) -> DeliveryApplied:
        self.barrier.wait()
        return super().apply_delivery(report)


@pytest.mark.parametrize("concurrency", [2, 8])
def test_the_messages_of_one_receive_are_applied_in_parallel(concurrency: int) -> None:
    phones = [f"91933333{i:04d}" for i in range(concurrency)]
    store = BarrierStore(parties=concurrency)
    world = sent_world(store, phones)
    queue = MemoryQueue()
    queue.send([delivered(world, phone) for phone in phones])

    loop = loop_over(world, queue, concurrency)
    loop.run(threading.Event())

    assert (loop.stats.messages, loop.stats.errors) == (concurrency, 0)
    assert len(queue.deleted) == concurrency
    assert store.require_campaign(CAMPAIGN_ID).delivered_count == concurrency


class CountingStore(MemoryStore):
    """Records the most delivery writes ever under way at once."""

    def __init__(self) -> None:
        super().__init__(clock=ManualClock())
        self._gauge = threading.Lock()
        self.in_flight = self.most = 0

    def apply_delivery(self, report: DeliveryReport) -> DeliveryApplied:
        with self._gauge:
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
        try:
            time.sleep(0.002)  # a store round trip: let the other appliers start meanwhile
            return super().apply_delivery(report)
        finally:
            with self._gauge:
                self.in_flight -= 1


def test_no_more_messages_are_applied_at_once_than_the_concurrency() -> None:
    phones = [f"91911111{i:04d}" for i in range(20)]
    store = CountingStore()
    world = sent_world(store, phones)
    queue = MemoryQueue()
    queue.send([delivered(world, phone) for phone in phones])

    loop = loop_over(world, queue, concurrency=3)
    loop.run(threading.Event())

    assert 1 <= store.most <= 3
    assert len(queue.deleted) == 20


class YieldingStore(MemoryStore):
    """Gives up the GIL before each call the applier makes, so concurrent applies interleave
    between their reads and writes as they would on DynamoDB."""

    def apply_delivery(self, report: DeliveryReport) -> DeliveryApplied:
        time.sleep(0)
        return super().apply_delivery(report)

    def find_by_message_id(self, message_id: str) -> tuple[str, str] | None:
        time.sleep(0)
        return super().find_by_message_id(message_id)

    def phone_for_user(self, user_id: str) -> str | None:
        time.sleep(0)
        return super().phone_for_user(user_id)

    def link_user(self, user_id: str, phone: str) -> None:
        time.sleep(0)
        super().link_user(user_id, phone)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_a_shuffled_replay_with_duplicates_applied_eight_at_a_time_ends_as_one_at_a_time(
    seed: int,
) -> None:
    reference = sent_world()
    stream = status_stream(
        {p: reference.store.recipient(CAMPAIGN_ID, p).message_id or "" for p in PHONES}
    )
    reference.apply(*stream)  # sequential, in Meta's natural order
    rng = random.Random(seed)
    replayed = [body for body in stream for _ in range(rng.randint(1, 3))]
    rng.shuffle(replayed)

    world = sent_world(YieldingStore(clock=ManualClock()))
    queue = MemoryQueue()
    queue.send(replayed)
    loop = loop_over(world, queue, concurrency=8)
    with frequent_thread_switches():
        loop.run(threading.Event())

    assert (loop.stats.messages, loop.stats.errors) == (len(replayed), 0)
    assert queue.depth() == (0, 0)
    assert end_state(world) == end_state(reference)


def test_many_users_linked_at_once_keep_the_bsuid_memo_bounded_and_every_link_stored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(receipts_module, "LINKS_REMEMBERED", 3)  # evictions on every apply
    phones = [f"91922222{i:04d}" for i in range(60)]
    world = sent_world(YieldingStore(clock=ManualClock()), phones)
    users = {phone: f"IN.{i:016d}" for i, phone in enumerate(phones)}
    queue = MemoryQueue()
    queue.send([delivered(world, phone, users[phone]) for phone in phones])

    loop = loop_over(world, queue, concurrency=8)
    with frequent_thread_switches():
        loop.run(threading.Event())

    assert (loop.stats.messages, loop.stats.errors) == (60, 0)
    assert world.store.user_links == {user: phone for phone, user in users.items()}
    assert len(world.applier._linked) <= 3


class FailingForOne(MemoryStore):
    """DynamoDB refuses the delivery writes of one recipient."""

    def __init__(self, phone: str) -> None:
        super().__init__(clock=ManualClock())
        self.phone = phone

    def apply_delivery(self, report: DeliveryReport) -> DeliveryApplied:
        if report.phone == self.phone:
            raise StoreUnavailable("DynamoDB is down for this item")
        return super().apply_delivery(report)


def test_a_failed_apply_leaves_only_its_own_message_for_redelivery() -> None:
    store = FailingForOne(PHONES[2])
    world = sent_world(store)
    queue = MemoryQueue()
    queue.send([delivered(world, phone) for phone in PHONES[:5]] + ["<html>502</html>"])

    with capture_logs() as logs:
        loop = loop_over(world, queue, concurrency=8)
        loop.run(threading.Event())

    assert sorted(queue.deleted) == ["m0", "m1", "m3", "m4"]  # m2 failed, m5 is poison
    assert queue.depth() == (0, 2)  # both invisible until their visibility timeout ends
    assert (loop.stats.messages, loop.stats.errors, loop.stats.poison) == (4, 1, 1)
    failed = [e for e in logs if e["event"] == "receipts.apply_failed"]
    assert [e["message_id"] for e in failed] == ["m2"]
    assert store.require_campaign(CAMPAIGN_ID).delivered_count == 4


class HeldStore(MemoryStore):
    """Delivery writes start, say so, and wait until the test lets them finish."""

    def __init__(self) -> None:
        super().__init__(clock=ManualClock())
        self.entered = threading.Semaphore(0)
        self.proceed = threading.Event()

    def apply_delivery(self, report: DeliveryReport) -> DeliveryApplied:
        self.entered.release()
        self.proceed.wait(timeout=30)
        return super().apply_delivery(report)


def test_a_stop_lets_the_applies_in_flight_finish_and_hands_the_rest_back() -> None:
    store = HeldStore()
    world = sent_world(store)
    queue = MemoryQueue()
    queue.send([delivered(world, phone) for phone in PHONES[:4]])
    loop = loop_over(world, queue, concurrency=2, once=False)
    stop = threading.Event()
    thread = loop.start(stop)
    try:
        assert store.entered.acquire(timeout=WAIT_S)
        assert store.entered.acquire(timeout=WAIT_S)  # two applies in flight, two waiting

        stop.set()
        store.proceed.set()
        thread.join(timeout=WAIT_S)

        assert not thread.is_alive()
        assert sorted(queue.deleted) == ["m0", "m1"]  # the two in flight committed, deleted
        assert queue.depth() == (2, 0)  # the two not started: visible again at once
        assert (loop.stats.messages, loop.stats.released) == (2, 2)
        assert store.require_campaign(CAMPAIGN_ID).delivered_count == 2
    finally:
        store.proceed.set()


def wait_for(condition: Callable[[], bool]) -> bool:
    """True once ``condition`` holds; False if it still does not after WAIT_S."""
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def test_the_next_receive_is_fetched_while_a_batch_applies_and_a_stop_hands_it_back() -> None:
    phones = [f"91944444{i:04d}" for i in range(12)]
    store = HeldStore()
    world = sent_world(store, phones)
    queue = MemoryQueue()
    queue.send([delivered(world, phone) for phone in phones])  # a receive of 10, then of 2
    loop = loop_over(world, queue, concurrency=10, once=False)
    stop = threading.Event()
    thread = loop.start(stop)
    try:
        for _ in range(10):
            assert store.entered.acquire(timeout=WAIT_S)  # the first receive, all applying
        assert wait_for(lambda: queue.depth() == (0, 12))  # ... and the second one received

        stop.set()
        store.proceed.set()
        thread.join(timeout=WAIT_S)

        assert not thread.is_alive()
        assert sorted(queue.deleted) == sorted(f"m{i}" for i in range(10))
        assert queue.depth() == (2, 0)  # the second receive, handed back unapplied
        assert (loop.stats.messages, loop.stats.released) == (10, 2)
    finally:
        store.proceed.set()


def test_an_apply_that_never_returns_does_not_hold_up_the_workers_exit() -> None:
    store = HeldStore()
    world = sent_world(store)
    receipts = MemoryQueue()
    receipts.send([delivered(world, PHONES[0])])
    executor = BatchExecutor(
        store=store,
        guard=MemoryCapGuard(0),
        sender=FakeSender(),
        limiter=Unlimited(),
        clock=ManualClock(),
        metrics=world.metrics,
        owner="test-consumer",
        lease_s=60,
    )
    worker = Worker(
        queue=MemoryQueue(),
        executors=[executor],
        metrics=world.metrics,
        config=WorkerConfig(poll_wait_s=0, shutdown_timeout_s=1.0),
        handle_signals=False,
        breaker=SendBreaker(),
        receipts=loop_over(world, receipts, concurrency=8, once=False),
    )
    result: list[int] = []
    runner = threading.Thread(target=lambda: result.append(worker.run()), daemon=True)
    runner.start()
    try:
        assert store.entered.acquire(timeout=WAIT_S)  # the apply is stuck in the store

        with capture_logs() as logs:
            worker.request_stop()
            runner.join(timeout=WAIT_S)

        assert result == [0]  # inside its budget, the apply still open
        assert "receipts.poll_abandoned" in [e["event"] for e in logs]
        appliers = [t for t in threading.enumerate() if t.name.startswith("receipts-apply")]
        assert appliers
        assert all(t.daemon for t in appliers)  # never joined at the interpreter's exit
        assert receipts.deleted == []  # not applied, so not deleted: redelivered later
    finally:
        store.proceed.set()  # the apply ends; let the loop's thread finish before the next test
        wait_for(lambda: receipts.depth() == (0, 0))
