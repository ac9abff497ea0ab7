"""The poll loop on in-memory adapters: deletion rules, poison, release, deferral, outages."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest
from structlog.testing import capture_logs

from campaigns.domain.errors import QueueUnavailable, RetryableSendError
from campaigns.domain.message import encode, new_batch
from campaigns.domain.models import (
    Action,
    Campaign,
    CampaignStatus,
    RecipientStatus,
    new_campaign_id,
)
from campaigns.engine.breaker import SendBreaker
from campaigns.engine.executor import BatchExecutor
from campaigns.engine.metrics import EngineMetrics
from campaigns.memory import (
    FakeSender,
    ManualClock,
    MemoryCapGuard,
    MemoryQueue,
    MemoryStore,
    Unlimited,
)
from campaigns.ports import ReceivedMessage
from consumer.backoff import receive_backoff_s
from consumer.worker import Worker, WorkerConfig

PHONES = [f"91900000{i:04d}" for i in range(6)]


def make_campaign(store: MemoryStore, phones: Sequence[str] = PHONES) -> str:
    campaign_id = new_campaign_id()
    store.add_campaign(Campaign(campaign_id, "c", "tpl", "en_US", CampaignStatus.RUNNING))
    store.add_recipients(campaign_id, list(phones))
    return campaign_id


def make_worker(
    store: MemoryStore,
    queue: MemoryQueue,
    sender: FakeSender | None = None,
    *,
    slots: int = 1,
    breaker: SendBreaker | None = None,
    metrics: EngineMetrics | None = None,
    visibility_timeout_s: int = 30,
) -> Worker:
    metrics = metrics or EngineMetrics()
    executors = [
        BatchExecutor(
            store=store,
            guard=MemoryCapGuard(0),
            sender=sender or FakeSender(),
            limiter=Unlimited(),
            clock=ManualClock(),
            metrics=metrics,
            owner="test-consumer",
            lease_s=60,
            breaker=breaker,
        )
        for _ in range(slots)
    ]
    return Worker(
        queue=queue,
        executors=executors,
        metrics=metrics,
        config=WorkerConfig(visibility_timeout_s=visibility_timeout_s, poll_wait_s=0, once=True),
        handle_signals=False,
        breaker=breaker,
    )


def test_once_mode_processes_every_message_deletes_it_and_exits_zero() -> None:
    store, queue = MemoryStore(), MemoryQueue()
    campaign_id = make_campaign(store)
    queue.send(
        [encode(new_batch(campaign_id, PHONES[:3])), encode(new_batch(campaign_id, PHONES[3:]))]
    )

    worker = make_worker(store, queue, slots=2)
    assert worker.run() == 0

    assert queue.depth() == (0, 0)
    assert len(queue.deleted) == 2
    assert worker.stats.sent == len(PHONES)
    assert store.get_campaign(campaign_id).status is CampaignStatus.COMPLETED  # type: ignore[union-attr]


def test_an_undecodable_body_is_never_acted_on_and_reaches_the_dead_letter_queue() -> None:
    store = MemoryStore()
    queue = MemoryQueue(visibility_timeout_s=0, max_receive_count=3)
    queue.send(['{"version": 2, "campaignId": "cmp_x"}'])
    metrics = EngineMetrics()

    with capture_logs() as logs:
        for _ in range(4):
            make_worker(store, queue, metrics=metrics, visibility_timeout_s=0).run()

    undecodable = [e for e in logs if e["event"] == "message.undecodable"]
    assert [e["receive_count"] for e in undecodable] == [1, 2, 3]  # once per receipt
    assert len(queue.dead) == 1
    assert queue.deleted == []
    assert (
        metrics.registry.get_sample_value("campaign_batches_processed_total", {"outcome": "poison"})
        == 3
    )


def test_a_message_for_an_unknown_campaign_is_left_for_the_dead_letter_queue() -> None:
    store, queue = MemoryStore(), MemoryQueue(visibility_timeout_s=0, max_receive_count=2)
    queue.send([encode(new_batch(new_campaign_id(), PHONES[:2]))])

    for _ in range(3):
        make_worker(store, queue, visibility_timeout_s=0).run()

    assert len(queue.dead) == 1
    assert queue.deleted == []


@pytest.mark.parametrize("action", [Action.PAUSE, Action.CANCEL])
def test_a_message_for_a_stopped_campaign_is_deleted_without_touching_recipients(
    action: Action,
) -> None:
    store, queue = MemoryStore(), MemoryQueue()
    campaign_id = make_campaign(store)
    store.transition(campaign_id, action)
    queue.send([encode(new_batch(campaign_id, PHONES))])
    sender = FakeSender()

    make_worker(store, queue, sender).run()

    assert queue.depth() == (0, 0)
    assert sender.sent == []
    statuses = {store.recipient(campaign_id, p).status for p in PHONES}
    assert statuses == {RecipientStatus.PENDING}


def test_a_stop_mid_batch_releases_the_message_at_once_with_the_rest_pending() -> None:
    store, queue = MemoryStore(), MemoryQueue(visibility_timeout_s=300)
    campaign_id = make_campaign(store)
    queue.send([encode(new_batch(campaign_id, PHONES))])
    worker_box: list[Worker] = []

    class StoppingSender(FakeSender):
        def send(self, message):  # type: ignore[no-untyped-def]
            accepted = super().send(message)
            if len(self.sent) == 2:
                worker_box[0].request_stop()
            return accepted

    sender = StoppingSender()
    worker = make_worker(store, queue, sender)
    worker_box.append(worker)
    assert worker.run() == 0

    assert len(sender.sent) == 2
    assert queue.depth() == (1, 0)  # visible again at once, not after 300 s
    assert worker.stats.released == len(PHONES) - 2
    pending = [
        p for p in PHONES if store.recipient(campaign_id, p).status is RecipientStatus.PENDING
    ]
    assert len(pending) == len(PHONES) - 2


def test_a_send_storm_defers_the_batch_instead_of_burning_every_retry_budget() -> None:
    store, queue = MemoryStore(), MemoryQueue()
    campaign_id = make_campaign(store)
    queue.send([encode(new_batch(campaign_id, PHONES))])
    storm = [RetryableSendError("META_HTTP_503", "storm")]
    sender = FakeSender(script={p: list(storm) for p in PHONES})
    breaker = SendBreaker(threshold=3, cooldown_s=60, clock=ManualClock())

    worker = make_worker(store, queue, sender, breaker=breaker)
    worker.run()

    # The first recipient used its own three tries; then the breaker opened and nobody else
    # was tried: their budgets are intact and the message comes back after the cool-down.
    assert [m.to for m in sender.sent] == [PHONES[0]] * 3
    assert store.recipient(campaign_id, PHONES[0]).status is RecipientStatus.FAILED
    for phone in PHONES[1:]:
        recipient = store.recipient(campaign_id, phone)
        assert (recipient.status, recipient.attempts) == (RecipientStatus.PENDING, 0)
    assert worker.stats.deferred == 1
    assert queue.depth() == (0, 1)


def test_the_heartbeat_extends_every_message_in_flight() -> None:
    extended: list[tuple[list[str], int]] = []

    class RecordingQueue(MemoryQueue):
        def change_visibility(self, receipt_handles: Sequence[str], timeout_s: int) -> list[str]:
            extended.append((list(receipt_handles), timeout_s))
            return []

    store, queue = MemoryStore(), RecordingQueue()
    worker = make_worker(store, queue)
    worker._in_flight.update({"r1": 0.0, "r2": 0.0})  # two batches being worked on

    worker.extend_in_flight()

    assert extended == [(["r1", "r2"], 30)]


def test_receive_errors_back_off_and_never_crash_the_loop() -> None:
    calls: list[int] = []

    class FlakyQueue(MemoryQueue):
        def receive(
            self, max_messages: int, wait_s: int, visibility_timeout_s: int | None = None
        ) -> list[ReceivedMessage]:
            calls.append(1)
            if len(calls) <= 2:
                raise QueueUnavailable("SQS ReceiveMessage failed: InternalError", "InternalError")
            return super().receive(max_messages, wait_s, visibility_timeout_s)

    store, queue = MemoryStore(), FlakyQueue()
    campaign_id = make_campaign(store, PHONES[:1])
    queue.send([encode(new_batch(campaign_id, PHONES[:1]))])
    metrics = EngineMetrics()
    worker = make_worker(store, queue, metrics=metrics)
    done = threading.Event()

    def run() -> None:
        worker.run()
        done.set()

    threading.Thread(target=run, daemon=True).start()
    assert done.wait(timeout=10)  # 1 s + 2 s of backoff, then the message
    assert worker.stats.sent == 1
    assert metrics.registry.get_sample_value("campaign_queue_receive_errors_total") == 2


@pytest.mark.parametrize(
    ("code", "first_s", "ceiling_s"),
    [
        ("InternalError", 1.0, 60.0),
        ("ThrottlingException", 5.0, 120.0),
        ("ExpiredToken", 10.0, 300.0),
        ("NoCredentialsError", 10.0, 300.0),
    ],
)
def test_receive_backoff_is_exponential_and_longer_for_credentials_and_throttling(
    code: str, first_s: float, ceiling_s: float
) -> None:
    delays = [receive_backoff_s(code, 0.0)]
    for _ in range(12):
        delays.append(receive_backoff_s(code, delays[-1]))
    assert delays[0] == first_s
    assert delays[1] == 2 * first_s
    assert max(delays) == ceiling_s
