"""The receipts loop: a thread of ``campaign-consumer`` that applies Meta's webhooks.

It long-polls the receipts queue (≤ 10 s, so a status takes effect well within the issue's
10 s), parses each body, applies its events and deletes the message only after the writes
committed. An exception while applying leaves the message for redelivery (SQS moves it to
the receipts DLQ after 5 receives); a body that is not JSON is poison, never acted on and left
for the DLQ. A receipts queue that does not exist turns the loop off (``receipts.disabled``,
once): the batch worker runs without it. It stops with the worker's stop event.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from campaigns.domain.errors import QueueUnavailable
from campaigns.domain.webhook_events import UndecodableReceipt
from campaigns.domain.webhooks import parse
from campaigns.engine.metrics import EngineMetrics
from campaigns.engine.receipts import ReceiptApplier
from campaigns.logging import get_logger
from campaigns.ports import BatchQueue, ReceivedMessage
from consumer.backoff import receive_backoff_s

RECEIPTS_POLL_WAIT_S = 10  # long poll; a status applies within this plus the apply time
MAX_SQS_BATCH = 10  # ReceiveMessage returns at most 10 messages
EMPTY_POLL_PAUSE_S = 0.5  # with a short poll (tests), wait this long before polling again
# SQS's error codes for a queue that does not exist (GetQueueUrl, ReceiveMessage).
MISSING_QUEUE_CODES = frozenset(
    {"AWS.SimpleQueueService.NonExistentQueue", "NonExistentQueue", "QueueDoesNotExist"}
)


@dataclass
class ReceiptsStats:
    messages: int = 0  # applied and deleted
    events: int = 0
    poison: int = 0
    errors: int = 0  # left for redelivery


@dataclass(frozen=True)
class ReceiptsConfig:
    poll_wait_s: int = RECEIPTS_POLL_WAIT_S
    visibility_timeout_s: int = 60
    once: bool = False  # return once a poll comes back empty (tests, ``--once``)


class ReceiptsLoop:
    def __init__(
        self,
        *,
        queue_factory: Callable[[], BatchQueue],
        applier: ReceiptApplier,
        metrics: EngineMetrics,
        config: ReceiptsConfig | None = None,
    ) -> None:
        self._queue_factory = queue_factory
        self._applier = applier
        self._metrics = metrics
        self._config = config or ReceiptsConfig()
        self._stop = threading.Event()
        self.disabled = False
        self.stats = ReceiptsStats()
        self._log = get_logger(loop="receipts")

    def start(self, stop: threading.Event) -> threading.Thread:
        """Run in a daemon thread until ``stop`` is set (the worker's stop event)."""
        self._stop = stop
        thread = threading.Thread(target=self._guarded, name="receipts", daemon=True)
        thread.start()
        return thread

    def _guarded(self) -> None:
        try:
            self.run(self._stop)
        except Exception:  # a bug must not end receipt processing silently: stop the consumer
            self._log.exception("receipts.loop_crashed")
            self._stop.set()

    def run(self, stop: threading.Event) -> None:
        self._stop = stop
        queue = self._open()
        backoff_s = 0.0
        while queue is not None and not stop.is_set():
            try:
                messages = queue.receive(
                    MAX_SQS_BATCH, self._config.poll_wait_s, self._config.visibility_timeout_s
                )
                backoff_s = 0.0
            except QueueUnavailable as exc:
                if exc.code in MISSING_QUEUE_CODES:
                    self._disable(exc)
                    return
                self._metrics.receive_errors.inc()
                backoff_s = receive_backoff_s(exc.code, backoff_s)
                self._log.warning("receipts.receive_failed", error=str(exc), backoff_s=backoff_s)
                stop.wait(backoff_s)
                continue
            if not messages:
                if self._config.once:
                    return
                if self._config.poll_wait_s == 0:
                    stop.wait(EMPTY_POLL_PAUSE_S)
                continue
            if stop.is_set():  # received as the stop came in: hand them straight back
                self._release(queue, messages)
                return
            for message in messages:
                self._handle(queue, message)

    def _open(self) -> BatchQueue | None:
        """The queue, or None (disabled) when it does not exist; other failures retried."""
        backoff_s = 0.0
        while not self._stop.is_set():
            try:
                return self._queue_factory()
            except QueueUnavailable as exc:
                if exc.code in MISSING_QUEUE_CODES:
                    self._disable(exc)
                    return None
                backoff_s = receive_backoff_s(exc.code, backoff_s)
                self._log.warning("receipts.queue_unavailable", error=str(exc), backoff_s=backoff_s)
                self._stop.wait(backoff_s)
        return None

    def _disable(self, exc: QueueUnavailable) -> None:
        if not self.disabled:
            self.disabled = True
            self._log.warning(
                "receipts.disabled", reason="the receipts queue does not exist", error=str(exc)
            )

    def _handle(self, queue: BatchQueue, message: ReceivedMessage) -> None:
        started = time.monotonic()
        try:
            parsed = parse(message.body)
        except UndecodableReceipt as exc:
            # Never acted on; the redrive policy moves it to the DLQ after maxReceiveCount.
            self.stats.poison += 1
            self._metrics.receipts_poison.inc()
            self._log.error(
                "receipts.undecodable",
                message_id=message.message_id,
                receive_count=message.receive_count,
                error=str(exc),
            )
            return
        try:
            summary = self._applier.apply(parsed.events, parsed.skipped)
        except Exception as exc:  # the store failed (or a bug): leave it for redelivery
            self.stats.errors += 1
            self._log.warning(
                "receipts.apply_failed",
                message_id=message.message_id,
                receive_count=message.receive_count,
                error=f"{type(exc).__name__}: {exc}",
            )
            return
        self._delete(queue, message)
        self.stats.messages += 1
        self.stats.events += summary.events
        self._log.info(
            "receipts.applied",
            message_id=message.message_id,
            events=summary.events,
            changed=summary.changed,
            unmatched=summary.unmatched,
            resolved_unknown=summary.resolved_unknown,
            suppressed=summary.suppressed,
            paused=summary.paused,
            skipped=summary.skipped,
            duration_s=round(time.monotonic() - started, 3),
        )

    def _delete(self, queue: BatchQueue, message: ReceivedMessage) -> None:
        try:
            if queue.delete([message.receipt_handle]):
                self._log.warning("receipts.delete_failed", message_id=message.message_id)
        except QueueUnavailable as exc:
            # Redelivery is harmless: applying the same events again changes nothing.
            self._log.warning("receipts.delete_failed", error=str(exc))

    def _release(self, queue: BatchQueue, messages: list[ReceivedMessage]) -> None:
        try:
            queue.change_visibility([m.receipt_handle for m in messages], 0)
        except QueueUnavailable as exc:
            self._log.warning("receipts.release_failed", error=str(exc), count=len(messages))


__all__ = ["ReceiptsConfig", "ReceiptsLoop", "ReceiptsStats"]
