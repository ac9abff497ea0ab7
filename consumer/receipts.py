"""The receipts loop: a thread of ``campaign-consumer`` that applies Meta's webhooks.

It long-polls the receipts queue (≤ 10 s, so a status takes effect well within the issue's
10 s) and hands the messages of each receive (≤ 10) to a pool of ``RECEIPTS_CONCURRENCY``
threads, which parse and apply them at once: each apply is a few DynamoDB round trips, so one
at a time would cap a consumer at about 120 statuses a second. While they apply, the loop
fetches the next receive (without waiting: a quiet queue must not hold the deletes back).
When every apply of the batch has ended, the messages whose writes committed are deleted (one
DeleteMessageBatch); a message whose apply raised is left for redelivery (SQS moves it to the
receipts DLQ after 5 receives); a body that is not JSON is poison, never acted on and left for
the DLQ. Applying in any order, concurrently or twice is safe: the store's writes are
conditional and retried on a lost race, and the merge is a join.

It stops with the worker's stop event: applies in flight finish (and are deleted), messages
not yet started are handed straight back. A receipts queue that does not exist turns the loop
off (``receipts.disabled``, once): the batch worker runs without it.
"""

from __future__ import annotations

import enum
import functools
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, wait
from dataclasses import dataclass

from campaigns.domain.errors import QueueUnavailable
from campaigns.domain.webhook_events import UndecodableReceipt
from campaigns.domain.webhooks import parse
from campaigns.engine.metrics import EngineMetrics
from campaigns.engine.receipts import ApplySummary, ReceiptApplier
from campaigns.logging import get_logger
from campaigns.ports import BatchQueue, ReceivedMessage
from campaigns.settings import DEFAULT_RECEIPTS_CONCURRENCY
from consumer.backoff import receive_backoff_s
from consumer.pool import ThreadPool

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
    released: int = 0  # received as the stop came, handed back unapplied


@dataclass(frozen=True)
class ReceiptsConfig:
    poll_wait_s: int = RECEIPTS_POLL_WAIT_S
    visibility_timeout_s: int = 60
    once: bool = False  # return once a poll comes back empty (tests, ``--once``)
    # Messages of one receive applied at once; one receive holds at most MAX_SQS_BATCH, so
    # more threads than that would never have work.
    concurrency: int = DEFAULT_RECEIPTS_CONCURRENCY

    @property
    def threads(self) -> int:
        return max(1, min(self.concurrency, MAX_SQS_BATCH))


class Outcome(enum.Enum):
    APPLIED = "applied"  # the writes committed: delete it
    POISON = "poison"  # not JSON: left for the DLQ
    FAILED = "failed"  # the store failed (or a bug): left for redelivery
    RELEASED = "released"  # not started when the stop came: handed back


@dataclass(frozen=True)
class Applied:
    """What became of one message (built by a pool thread, acted on by the poll loop)."""

    message: ReceivedMessage
    outcome: Outcome
    summary: ApplySummary | None = None


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
        self.stats = ReceiptsStats()  # written by the poll loop's thread only
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
        if queue is None:
            return
        pool = ThreadPool(self._config.threads, name="receipts-apply")
        try:
            self._poll(queue, pool, stop)
        finally:
            pool.shutdown()  # idle by now: every batch handed to it has been waited for

    def _poll(self, queue: BatchQueue, pool: ThreadPool, stop: threading.Event) -> None:
        """One receive at a time; the next is fetched while the last batch applies."""
        backoff_s = 0.0
        applying: list[Future[Applied]] = []
        try:
            while not stop.is_set():
                # While a batch applies, poll without waiting: a long poll on a quiet queue
                # would hold that batch's deletes back for its whole wait.
                wait_s = 0 if applying else self._config.poll_wait_s
                try:
                    messages = queue.receive(
                        MAX_SQS_BATCH, wait_s, self._config.visibility_timeout_s
                    )
                    backoff_s = 0.0
                except QueueUnavailable as exc:
                    batch, applying = applying, []
                    self._finish(queue, batch)
                    if exc.code in MISSING_QUEUE_CODES:
                        self._disable(exc)
                        return
                    self._metrics.receive_errors.inc()
                    backoff_s = receive_backoff_s(exc.code, backoff_s)
                    self._log.warning(
                        "receipts.receive_failed", error=str(exc), backoff_s=backoff_s
                    )
                    stop.wait(backoff_s)
                    continue
                batch, applying = applying, []  # so the ``finally`` never finishes it twice
                self._finish(queue, batch)
                if not messages:
                    if batch:  # polled without waiting: the next poll waits
                        continue
                    if self._config.once:
                        return
                    if self._config.poll_wait_s == 0:
                        stop.wait(EMPTY_POLL_PAUSE_S)
                    continue
                if stop.is_set():  # received as the stop came in: hand them straight back
                    self._release(queue, messages)
                    self.stats.released += len(messages)
                    return
                applying = [pool.submit(functools.partial(self._apply, m)) for m in messages]
        finally:
            self._finish(queue, applying)

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

    def _finish(self, queue: BatchQueue, applying: Sequence[Future[Applied]]) -> None:
        """Wait for every apply of one batch (none is cut short), then delete the messages
        whose own apply committed, hand back the ones the stop kept from starting."""
        if not applying:
            return
        wait(applying)
        results = [future.result() for future in applying]  # a bug in _apply re-raises here
        applied = [r.message for r in results if r.outcome is Outcome.APPLIED]
        released = [r.message for r in results if r.outcome is Outcome.RELEASED]
        if applied:
            self._delete(queue, applied)
        if released:
            self._release(queue, released)
        for result in results:
            self._count(result)

    def _apply(self, message: ReceivedMessage) -> Applied:
        """Parse and apply one message (in a pool thread): never raises for a bad body or a
        failed store, which are outcomes."""
        if self._stop.is_set():
            return Applied(message, Outcome.RELEASED)
        started = time.monotonic()
        try:
            parsed = parse(message.body)
        except UndecodableReceipt as exc:
            # Never acted on; the redrive policy moves it to the DLQ after maxReceiveCount.
            self._log.error(
                "receipts.undecodable",
                message_id=message.message_id,
                receive_count=message.receive_count,
                error=str(exc),
            )
            return Applied(message, Outcome.POISON)
        try:
            summary = self._applier.apply(parsed.events, parsed.skipped)
        except Exception as exc:  # the store failed (or a bug): leave it for redelivery
            self._log.warning(
                "receipts.apply_failed",
                message_id=message.message_id,
                receive_count=message.receive_count,
                error=f"{type(exc).__name__}: {exc}",
            )
            return Applied(message, Outcome.FAILED)
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
        return Applied(message, Outcome.APPLIED, summary)

    def _count(self, result: Applied) -> None:
        match result.outcome:
            case Outcome.APPLIED:
                self.stats.messages += 1
                self.stats.events += result.summary.events if result.summary else 0
            case Outcome.POISON:
                self.stats.poison += 1
                self._metrics.receipts_poison.inc()
            case Outcome.FAILED:
                self.stats.errors += 1
            case Outcome.RELEASED:
                self.stats.released += 1

    def _delete(self, queue: BatchQueue, messages: Sequence[ReceivedMessage]) -> None:
        by_handle = {m.receipt_handle: m for m in messages}
        try:
            failed = queue.delete(list(by_handle))
        except QueueUnavailable as exc:
            # Redelivery is harmless: applying the same events again changes nothing.
            self._log.warning("receipts.delete_failed", error=str(exc), count=len(by_handle))
            return
        for handle in failed:
            message = by_handle.get(handle)
            self._log.warning(
                "receipts.delete_failed", message_id=message.message_id if message else None
            )

    def _release(self, queue: BatchQueue, messages: Sequence[ReceivedMessage]) -> None:
        try:
            queue.change_visibility([m.receipt_handle for m in messages], 0)
        except QueueUnavailable as exc:
            self._log.warning("receipts.release_failed", error=str(exc), count=len(messages))


__all__ = ["Applied", "Outcome", "ReceiptsConfig", "ReceiptsLoop", "ReceiptsStats"]
