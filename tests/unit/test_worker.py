"""The poll loop on in-memory adapters: deletion rules, poison, release, deferral, outages."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace

import pytest
from structlog.testing import capture_logs

from campaigns.domain.errors import QueueUnavailable, RetryableSendError, StoreUnavailable
from campaigns.domain.message import encode, new_batch
from campaigns.domain.models import (
    Action,
    Campaign,
    CampaignStatus,
    DeliveryApplied,
    DeliveryReport,
    RecipientStatus,
    new_campaign_id,
)
from campaigns.engine.breaker import SendBreaker
from campaigns.engine.executor import BatchExecutor
from campaigns.engine.metrics import EngineMetrics
from campaigns.engine.receipts import ReceiptApplier
from campaigns.memory import (
    FakeSender,
    ManualClock,
    MemoryCapGuard,
    MemoryQueue,
    MemoryStore,
    Unlimited,
)
from campaigns.ports import BatchQueue, ReceivedMessage
from consumer.backoff import receive_backoff_s
from consumer.receipts import ReceiptsConfig, ReceiptsLoop
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
    receipts: ReceiptsLoop | None = None,
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
        receipts=receipts,
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


def test_receive_errors_back_off_and_never_crash_the_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    planned: list[float] = []

    def scaled_backoff_s(code: str, previous_s: float) -> float:
        """The real backoff, recorded; the worker waits a hundredth of it (1 s + 2 s here)."""
        planned.append(receive_backoff_s(code, previous_s * 100))
        return planned[-1] / 100

    monkeypatch.setattr("consumer.worker.receive_backoff_s", scaled_backoff_s)

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
    assert done.wait(timeout=10)  # two backoffs, then the message
    assert planned == [1.0, 2.0]  # exponential from InternalError's first step
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


# -- the receipts loop ---------------------------------------------------------------------------

RECEIPT_CAMPAIGN = "cmp_2f1d3c4b-5a69-4788-9a0b-1c2d3e4f5a6b"
MISSING_QUEUE = "AWS.SimpleQueueService.NonExistentQueue"


def delivered_body(phone: str, campaign_id: str = RECEIPT_CAMPAIGN) -> str:
    item = {
        "id": f"wamid.{phone}",
        "status": "delivered",
        "timestamp": "1767225700",
        "recipient_id": phone,
        "biz_opaque_callback_data": f"{campaign_id}:{phone}",
    }
    return json.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [
                {"id": "1", "changes": [{"field": "messages", "value": {"statuses": [item]}}]}
            ],
        }
    )


def sent_campaign(store: MemoryStore, phones: Sequence[str] = PHONES[:2]) -> None:
    store.add_campaign(Campaign(RECEIPT_CAMPAIGN, "c", "tpl", "en_US", CampaignStatus.RUNNING))
    store.add_recipients(RECEIPT_CAMPAIGN, list(phones))
    for phone in phones:
        store.recipients[(RECEIPT_CAMPAIGN, phone)] = replace(
            store.recipient(RECEIPT_CAMPAIGN, phone),
            status=RecipientStatus.SENT,
            message_id=f"wamid.{phone}",
        )


def receipts_loop(
    store: MemoryStore,
    queue: BatchQueue | Callable[[], BatchQueue],
    metrics: EngineMetrics | None = None,
    *,
    once: bool = True,
    poll_wait_s: int = 0,
    visibility_timeout_s: int = 0,
) -> ReceiptsLoop:
    metrics = metrics or EngineMetrics()
    factory = queue if callable(queue) else (lambda: queue)
    return ReceiptsLoop(
        queue_factory=factory,
        applier=ReceiptApplier(store, store, metrics, frozenset({"STOP"})),
        metrics=metrics,
        config=ReceiptsConfig(
            poll_wait_s=poll_wait_s, visibility_timeout_s=visibility_timeout_s, once=once
        ),
    )


class FailingDeliveries(MemoryStore):
    """The store is down for delivery writes while ``down`` is set."""

    down = True

    def apply_delivery(self, report: DeliveryReport) -> DeliveryApplied:
        if self.down:
            raise StoreUnavailable("DynamoDB is down")
        return super().apply_delivery(report)


def test_a_receipt_is_applied_then_deleted() -> None:
    store, queue = MemoryStore(), MemoryQueue()
    sent_campaign(store)
    queue.send([delivered_body(PHONES[0]), delivered_body(PHONES[1])])

    # Not visibility 0: the loop polls again while a batch applies, and would get it back.
    loop = receipts_loop(store, queue, visibility_timeout_s=30)
    loop.run(threading.Event())

    assert queue.depth() == (0, 0)
    assert len(queue.deleted) == 2
    assert store.get_campaign(RECEIPT_CAMPAIGN).delivered_count == 2  # type: ignore[union-attr]
    assert (loop.stats.messages, loop.stats.events) == (2, 2)


def test_a_failure_while_applying_leaves_the_receipt_for_redelivery() -> None:
    now = [0.0]
    store, queue = FailingDeliveries(), MemoryQueue(clock=lambda: now[0])
    sent_campaign(store)
    queue.send([delivered_body(PHONES[0])])

    with capture_logs() as logs:
        receipts_loop(store, queue, visibility_timeout_s=30).run(threading.Event())
    assert queue.deleted == []
    assert queue.depth() == (0, 1)  # invisible until its visibility timeout ends
    assert [e["event"] for e in logs if e["event"].startswith("receipts.apply")] == [
        "receipts.apply_failed"
    ]

    store.down = False  # DynamoDB is back: the redelivered message applies
    now[0] += 30
    receipts_loop(store, queue, visibility_timeout_s=30).run(threading.Event())

    assert len(queue.deleted) == 1
    assert store.get_campaign(RECEIPT_CAMPAIGN).delivered_count == 1  # type: ignore[union-attr]


def test_an_undecodable_receipt_is_never_acted_on_and_reaches_the_dead_letter_queue() -> None:
    store = MemoryStore()
    queue = MemoryQueue(visibility_timeout_s=0, max_receive_count=3)
    queue.send(["<html>502 Bad Gateway</html>"])
    metrics = EngineMetrics()

    with capture_logs() as logs:
        for _ in range(4):
            receipts_loop(store, queue, metrics).run(threading.Event())

    assert [e["receive_count"] for e in logs if e["event"] == "receipts.undecodable"] == [1, 2, 3]
    assert len(queue.dead) == 1
    assert queue.deleted == []
    assert metrics.registry.get_sample_value("campaign_receipts_poison_total") == 3


def missing_queue() -> BatchQueue:
    raise QueueUnavailable("GetQueueUrl(campaign-receipts): queue does not exist", MISSING_QUEUE)


def test_a_missing_receipts_queue_disables_the_loop_once_and_the_batches_still_run() -> None:
    store, queue = MemoryStore(), MemoryQueue()
    campaign_id = make_campaign(store, PHONES[:2])
    queue.send([encode(new_batch(campaign_id, PHONES[:2]))])
    metrics = EngineMetrics()
    receipts = receipts_loop(store, missing_queue, metrics, once=False)
    worker = make_worker(store, queue, metrics=metrics, receipts=receipts)

    with capture_logs() as logs:
        assert worker.run() == 0

    assert [e["event"] for e in logs].count("receipts.disabled") == 1
    assert worker.stats.sent == 2


class VanishingQueue(MemoryQueue):
    """The receipts queue is deleted under the running loop."""

    def receive(
        self, max_messages: int, wait_s: int, visibility_timeout_s: int | None = None
    ) -> list[ReceivedMessage]:
        raise QueueUnavailable("ReceiveMessage: queue does not exist", MISSING_QUEUE)


def test_a_receipts_queue_deleted_under_the_loop_disables_it_once() -> None:
    loop = receipts_loop(MemoryStore(), VanishingQueue(), once=False)

    with capture_logs() as logs:
        loop.run(threading.Event())

    assert loop.disabled
    assert [e["event"] for e in logs].count("receipts.disabled") == 1


class BlockingQueue(MemoryQueue):
    """A long poll that does not come back until the test lets it."""

    def __init__(self) -> None:
        super().__init__()
        self.polling = threading.Event()
        self.release = threading.Event()

    def receive(
        self, max_messages: int, wait_s: int, visibility_timeout_s: int | None = None
    ) -> list[ReceivedMessage]:
        self.polling.set()
        self.release.wait(timeout=30)
        return []


def test_the_receipts_loop_stops_with_the_worker_without_holding_up_its_drain() -> None:
    store, batches = MemoryStore(), MemoryQueue()
    receipts = BlockingQueue()
    metrics = EngineMetrics()
    executor = BatchExecutor(
        store=store,
        guard=MemoryCapGuard(0),
        sender=FakeSender(),
        limiter=Unlimited(),
        clock=ManualClock(),
        metrics=metrics,
        owner="test-consumer",
        lease_s=60,
    )
    worker = Worker(
        queue=batches,
        executors=[executor],
        metrics=metrics,
        config=WorkerConfig(poll_wait_s=0, shutdown_timeout_s=1.0),
        handle_signals=False,
        receipts=receipts_loop(store, receipts, metrics, once=False, poll_wait_s=10),
    )
    result: list[int] = []
    runner = threading.Thread(target=lambda: result.append(worker.run()), daemon=True)
    runner.start()
    assert receipts.polling.wait(timeout=10)

    with capture_logs() as logs:
        worker.request_stop()
        runner.join(timeout=20)

    try:
        assert result == [0]  # the worker exited inside its budget, the poll still open
        assert "receipts.poll_abandoned" in [e["event"] for e in logs]
    finally:
        receipts.release.set()
