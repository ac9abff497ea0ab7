"""The poll loop and its lifecycle.

The main thread long-polls the queue only for as many messages as there are free slots (no
prefetch), hands each to a slot thread that runs the batch executor, deletes the message once
its writes committed, and keeps in-flight messages invisible with a batched heartbeat.
First SIGTERM: stop receiving, finish the recipient in flight, release the rest, exit 0.
Second: exit now.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass
from queue import Queue
from types import FrameType

from campaigns.domain.errors import QueueUnavailable
from campaigns.domain.message import UndecodableMessage, decode
from campaigns.engine.breaker import SendBreaker
from campaigns.engine.executor import BatchExecutor
from campaigns.engine.metrics import EngineMetrics
from campaigns.engine.outcomes import BatchOutcome, BatchSummary
from campaigns.logging import get_logger
from campaigns.ports import BatchQueue, ReceivedMessage
from consumer.backoff import receive_backoff_s
from consumer.health import HealthState
from consumer.receipts import ReceiptsLoop

EXIT_OK = 0
EXIT_FORCED = 1
EXIT_MARGIN_S = 0.5  # leave this much of the shutdown budget for logging and exit
EMPTY_POLL_PAUSE_S = 0.5  # with POLL_WAIT_S=0, wait this long (or for a slot) before polling
MAX_IN_FLIGHT_S = 11 * 3600  # stop extending before SQS's 12 h visibility ceiling


@dataclass
class WorkerStats:
    batches: int = 0
    sent: int = 0
    failed: int = 0
    unknown: int = 0
    released: int = 0
    poison: int = 0
    deferred: int = 0

    def add(self, summary: BatchSummary) -> None:
        self.batches += 1
        self.sent += summary.sent
        self.failed += summary.failed
        self.unknown += summary.unknown
        self.released += summary.released


@dataclass(frozen=True)
class WorkerConfig:
    visibility_timeout_s: int = 60
    poll_wait_s: int = 20
    shutdown_timeout_s: float = 25.0
    once: bool = False


class Worker:
    def __init__(
        self,
        *,
        queue: BatchQueue,
        executors: list[BatchExecutor],
        metrics: EngineMetrics,
        config: WorkerConfig,
        health: HealthState | None = None,
        handle_signals: bool = True,
        breaker: SendBreaker | None = None,
        early_signals: list[int] | None = None,
        receipts: ReceiptsLoop | None = None,
    ) -> None:
        if not executors:
            raise ValueError("at least one executor (slot) is needed")
        self._queue = queue
        self._metrics = metrics
        self._config = config
        self._health = health or HealthState()
        self._handle_signals = handle_signals
        self._breaker = breaker
        self._early_signals = early_signals if early_signals is not None else []
        self._receipts = receipts
        self._receipts_thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._stop_requested_at: float | None = None
        self._signals = 0
        self._idle: Queue[BatchExecutor] = _new_queue(executors)
        self._lock = threading.Lock()
        self._in_flight: dict[str, float] = {}  # receipt handle -> monotonic start
        self._done = threading.Condition(self._lock)
        self._busy = 0
        self.stats = WorkerStats()
        self._log = get_logger()

    @property
    def stopping(self) -> threading.Event:
        return self._stop

    def request_stop(self) -> None:
        if not self._stop.is_set():
            self._stop_requested_at = time.monotonic()
            self._log.info("consumer.draining")
        self._health.draining = True
        self._metrics.draining.set(1)
        self._stop.set()

    def run(self) -> int:
        if self._handle_signals:
            self._install_signals()
        heartbeat = threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True)
        heartbeat.start()
        receiver = threading.Thread(target=self._receive_loop, name="receiver", daemon=True)
        self._health.ready = True
        self._log.info("consumer.started", slots=self._idle.qsize())
        receiver.start()
        if self._receipts is not None:  # the status webhooks: stops with the same event
            self._receipts_thread = self._receipts.start(self._stop)
        # The main thread only waits, so signals are handled at once even mid long-poll.
        while receiver.is_alive() and not self._stop.wait(0.5):
            pass
        self.request_stop()
        self._drain(receiver)
        self._log.info(
            "consumer.stopped",
            batches=self.stats.batches,
            sent=self.stats.sent,
            failed=self.stats.failed,
            unknown=self.stats.unknown,
            released=self.stats.released,
            deferred=self.stats.deferred,
            poison=self.stats.poison,
        )
        return EXIT_OK

    # -- the loop ------------------------------------------------------------------------

    def _receive_loop(self) -> None:
        try:
            self._loop()
        except Exception:  # never let a bug end the daemon silently: stop it cleanly instead
            self._log.exception("consumer.loop_crashed")
            self.request_stop()

    def _loop(self) -> None:
        backoff_s = 0.0
        while not self._stop.is_set():
            self._health.beat()
            free = self._idle.qsize()
            if free == 0:
                with self._done:
                    self._done.wait(timeout=1.0)
                continue
            if self._breaker is not None and (hold_s := self._breaker.hold_s()) > 0:
                # A send storm: take no new work until the cool-down ends.
                if self._config.once and self._idle_all():
                    return
                self._stop.wait(min(hold_s, 5.0))
                continue
            try:
                messages = self._queue.receive(
                    min(free, 10), self._config.poll_wait_s, self._config.visibility_timeout_s
                )
                backoff_s = 0.0
            except QueueUnavailable as exc:
                self._metrics.receive_errors.inc()
                backoff_s = receive_backoff_s(exc.code, backoff_s)
                self._log.warning("queue.receive_failed", error=str(exc), backoff_s=backoff_s)
                self._stop.wait(backoff_s)
                continue
            if not messages:
                if self._config.once and self._idle_all():
                    return
                if self._config.poll_wait_s == 0:  # a short poll: do not spin on an empty queue
                    with self._done:
                        self._done.wait(timeout=EMPTY_POLL_PAUSE_S)
                continue
            self._dispatch(messages)

    def _dispatch(self, messages: list[ReceivedMessage]) -> None:
        """One slot thread per message (the loop asked for no more than the free slots)."""
        if self._stop.is_set():  # received while a stop came in: hand them straight back
            self._release([m.receipt_handle for m in messages])
            return  # and the loop ends: the stop is never cleared
        for message in messages:
            executor = self._idle.get_nowait()
            with self._lock:
                self._in_flight[message.receipt_handle] = time.monotonic()
                self._busy += 1
            threading.Thread(
                target=self._slot, args=(message, executor), name="batch", daemon=True
            ).start()

    def _idle_all(self) -> bool:
        with self._lock:
            return self._busy == 0

    def _slot(self, message: ReceivedMessage, executor: BatchExecutor) -> None:
        try:
            self._handle(message, executor)
        except Exception:  # a bug must not kill the daemon: leave the message for redelivery
            self._log.exception("batch.crashed", message_id=message.message_id)
        finally:
            with self._done:
                self._in_flight.pop(message.receipt_handle, None)
                self._busy -= 1
                self._done.notify_all()
            self._idle.put(executor)

    def _handle(self, message: ReceivedMessage, executor: BatchExecutor) -> None:
        started = time.monotonic()
        try:
            batch = decode(message.body)
        except UndecodableMessage as exc:
            # Never acted on; the redrive policy moves it to the DLQ after maxReceiveCount.
            self._log.error(
                "message.undecodable",
                message_id=message.message_id,
                receive_count=message.receive_count,
                error=str(exc),
            )
            self._metrics.batches.labels(outcome=BatchOutcome.POISON.value).inc()
            with self._lock:
                self.stats.poison += 1
            return
        summary = executor.run(batch, stop=self._stop)
        if summary.outcome.deletes_message:
            self._delete(message.receipt_handle)
        elif summary.outcome is BatchOutcome.RELEASED:
            self._release([message.receipt_handle])
        elif summary.outcome is BatchOutcome.DEFERRED:
            self._release([message.receipt_handle], delay_s=summary.defer_s)
        elif summary.outcome is BatchOutcome.POISON:
            self._log.error(
                "message.unknown_campaign",
                message_id=message.message_id,
                campaign_id=batch.campaign_id,
                receive_count=message.receive_count,
            )
        with self._lock:
            self.stats.add(summary)
            if summary.outcome is BatchOutcome.POISON:
                self.stats.poison += 1
            if summary.outcome is BatchOutcome.DEFERRED:
                self.stats.deferred += 1
        self._log.info(
            "batch.completed",
            campaign_id=batch.campaign_id,
            batch_id=batch.batch_id,
            outcome=summary.outcome.value,
            sent=summary.sent,
            failed=summary.failed,
            unknown=summary.unknown,
            skipped=summary.skipped,
            released=summary.released,
            pause_reason=summary.pause_reason,
            campaign_completed=summary.completed_campaign,
            duration_s=round(time.monotonic() - started, 3),
        )

    def _delete(self, receipt: str) -> None:
        try:
            if self._queue.delete([receipt]):
                self._log.warning("queue.delete_failed", receipt=receipt[-12:])
        except QueueUnavailable as exc:
            # Redelivery is harmless: every recipient in it is already committed.
            self._log.warning("queue.delete_failed", error=str(exc))

    def _release(self, receipts: list[str], delay_s: float = 0.0) -> None:
        try:
            self._queue.change_visibility(receipts, min(int(delay_s + 0.999), MAX_IN_FLIGHT_S))
        except QueueUnavailable as exc:
            self._log.warning("queue.release_failed", error=str(exc), count=len(receipts))

    # -- heartbeat and shutdown ----------------------------------------------------------

    def _heartbeat_loop(self) -> None:
        interval_s = max(1.0, self._config.visibility_timeout_s / 3)
        while True:
            with self._lock:
                finished = self._stop.is_set() and self._busy == 0
            if finished:
                return
            time.sleep(interval_s)
            self.extend_in_flight()

    def extend_in_flight(self) -> None:
        """Extend every in-flight message to now + the visibility timeout, in batches."""
        now = time.monotonic()
        with self._lock:
            receipts = [r for r, t in self._in_flight.items() if now - t < MAX_IN_FLIGHT_S]
            self._metrics.batches_in_flight.set(len(self._in_flight))
        if not receipts:
            return
        try:
            failed = self._queue.change_visibility(receipts, self._config.visibility_timeout_s)
        except QueueUnavailable as exc:
            # The recipient lease in DynamoDB still protects against a second sender.
            self._log.warning("queue.heartbeat_failed", error=str(exc), count=len(receipts))
            return
        if failed:
            self._log.warning("queue.heartbeat_failed", count=len(failed))

    def _drain(self, receiver: threading.Thread) -> None:
        """Wait for in-flight batches (they stop after their current recipient) until the
        shutdown budget, counted from the stop request, runs out; release what is left."""
        started = self._stop_requested_at or time.monotonic()
        deadline = started + self._config.shutdown_timeout_s - EXIT_MARGIN_S
        with self._done:
            while self._busy and time.monotonic() < deadline:
                self._done.wait(timeout=min(0.2, max(deadline - time.monotonic(), 0.01)))
            leftover = list(self._in_flight)
        if leftover:
            self._log.warning("consumer.drain_timeout", in_flight=len(leftover))
            self._release(leftover)
        # A long poll in progress ends by itself; what it brings back is released by it.
        receiver.join(timeout=max(deadline - time.monotonic(), 0.0))
        if receiver.is_alive():
            self._log.warning("consumer.poll_abandoned")
        # The receipts loop gets what is left of the same budget, never more: a message it
        # has not deleted is redelivered, and applying it again changes nothing.
        if self._receipts_thread is not None:
            self._receipts_thread.join(timeout=max(deadline - time.monotonic(), 0.0))
            if self._receipts_thread.is_alive():
                self._log.warning("receipts.poll_abandoned")

    def _install_signals(self) -> None:
        def _on_signal(signum: int, frame: FrameType | None) -> None:
            self._signals += 1
            if self._signals > 1:
                os._exit(EXIT_FORCED)  # second signal: exit now
            self.request_stop()

        signal.signal(signal.SIGTERM, _on_signal)
        signal.signal(signal.SIGINT, _on_signal)
        for signum in list(self._early_signals):  # arrived while we were starting
            _on_signal(signum, None)


def _new_queue(executors: list[BatchExecutor]) -> Queue[BatchExecutor]:
    idle: Queue[BatchExecutor] = Queue()
    for executor in executors:
        idle.put(executor)
    return idle


__all__ = ["Worker", "WorkerConfig", "WorkerStats"]
