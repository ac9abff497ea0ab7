"""The receipts queue as the receiver sees it: built on first use (a queue missing at start-up
means 503s and not-ready, not a crash loop), sending a body's groups, and remembering whether
SQS answered, which is what ``/readyz`` reports."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from campaigns.domain.errors import QueueUnavailable
from campaigns.ports import SendQueue

# /readyz trusts the last send or check this long, then asks SQS again (GetQueueAttributes):
# a probe every few seconds at most, however often the kubelet asks.
READY_CHECK_S = 5.0

QueueFactory = Callable[[], SendQueue]  # raises QueueUnavailable when the queue is not there


class Outbox:
    def __init__(
        self,
        factory: QueueFactory,
        check_every_s: float = READY_CHECK_S,
        clock: Callable[[], float] = time.monotonic,
        on_state: Callable[[bool], None] | None = None,
    ) -> None:
        self._factory = factory
        self._check_every_s = check_every_s
        self._clock = clock
        self._on_state = on_state
        self._lock = threading.Lock()
        self._probing = threading.Lock()
        self._queue: SendQueue | None = None
        self._ok = False
        self._checked_at: float | None = None

    def send(self, groups: Sequence[Sequence[str]]) -> int:
        """Send every group (one SendMessageBatch each); returns the messages sent. Raises
        ``QueueUnavailable`` if any group could not be sent (the caller answers 503, and Meta
        sends the whole body again)."""
        try:
            queue = self._get()
            sent = sum(queue.send(list(group)) for group in groups)
        except QueueUnavailable:
            self._record(False)
            raise
        self._record(True)
        return sent

    def ready(self) -> bool:
        """Whether SQS answered recently; asks it (``depth``) when the last answer is older
        than ``check_every_s`` and no other request is asking already."""
        with self._lock:
            fresh = (
                self._checked_at is not None
                and self._clock() - self._checked_at < self._check_every_s
            )
            if fresh:
                return self._ok
        if not self._probing.acquire(blocking=False):
            return self._ok
        try:
            self._get().depth()
        except QueueUnavailable:
            self._record(False)
        else:
            self._record(True)
        finally:
            self._probing.release()
        return self._ok

    def _get(self) -> SendQueue:
        with self._lock:
            if self._queue is None:
                self._queue = self._factory()
            return self._queue

    def _record(self, ok: bool) -> None:
        with self._lock:
            self._ok = ok
            self._checked_at = self._clock()
        if self._on_state is not None:
            self._on_state(ok)
