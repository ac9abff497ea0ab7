"""The emulator's webhook delivery: one thread that posts due statuses and on-demand events to
the configured receiver, signed, batched sometimes, retried with exponential back-off when the
receiver answers 5xx or cannot be reached (never after a 2xx or a 4xx), bounded in attempts,
in total time and in what it holds (a capped queue; what does not fit is dropped and counted).

``stop()`` ends it promptly: it wakes the thread, shuts an in-flight connection and joins;
whatever was still waiting is abandoned (and shown as ``pending`` until then).
"""

from __future__ import annotations

import contextlib
import heapq
import http.client
import itertools
import random
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from sandbox.cloudapi.payloads import SIGNATURE_HEADER, Business, encode, sign, statuses_payload
from sandbox.cloudapi.statusplan import PlannedStatus
from sandbox.cloudapi.webhookconfig import WebhookConfig

RECENT_POSTS = 200  # how many finished POSTs the control API shows
STOP_JOIN_S = 5.0
IDLE_WAIT_S = 1.0  # the thread re-checks its queue at least this often
USER_AGENT = "facebookexternalua"  # what Meta's webhook requests say
STAT_NAMES = (
    "scheduled_statuses",
    "scheduled_events",
    "attempts",
    "delivered_posts",
    "delivered_statuses",
    "delivered_events",
    "retries",
    "failed_attempts",
    "rejected",
    "gave_up",
    "dropped",
)


@dataclass(order=True)
class _Pending:
    """A status waiting for its POST, or a whole body (an event, or a POST to retry)."""

    due: float  # time.monotonic()
    seq: int
    kind: str = field(compare=False)  # "statuses" or the webhook field of an event
    status: PlannedStatus | None = field(default=None, compare=False)
    body: bytes | None = field(default=None, compare=False)
    keys: tuple[tuple[str, str], ...] = field(default=(), compare=False)  # (wamid, status)
    attempt: int = field(default=1, compare=False)
    backed_off_s: float = field(default=0.0, compare=False)  # the back-offs so far, summed


class WebhookDispatcher:
    """A capped queue of due webhooks and the thread that posts them."""

    def __init__(self, config: WebhookConfig, seed: int = 0) -> None:
        self._config = config
        self._seed = seed
        self._rng = random.Random(seed)  # batching only
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._heap: list[_Pending] = []
        self._in_flight: _Pending | None = None  # taken off the heap, being posted
        self._seq = itertools.count()
        self._stats = dict.fromkeys(STAT_NAMES, 0)
        self._recent: deque[dict[str, Any]] = deque(maxlen=RECENT_POSTS)
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._conn: http.client.HTTPConnection | None = None
        self._conn_target: tuple[str, str] | None = None
        self._conn_lock = threading.Lock()  # guards _conn between the thread and stop()

    # -- configuration and state -----------------------------------------------------------

    @property
    def config(self) -> WebhookConfig:
        with self._lock:
            return self._config

    def configure(self, config: WebhookConfig) -> None:
        """Use ``config`` from the next POST on (what is queued goes to the new URL)."""
        with self._wake:
            self._config = config
            self._wake.notify_all()

    def reset(self) -> None:
        """Forget what is queued, the stats and the recent POSTs; the config stays."""
        with self._wake:
            self._heap.clear()
            self._in_flight = None
            self._stats = dict.fromkeys(STAT_NAMES, 0)
            self._recent.clear()
            self._rng = random.Random(self._seed)

    def snapshot(self) -> dict[str, Any]:
        """Config (no secret), stats, what is pending, and the recent POSTs, newest last."""
        with self._lock:
            waiting = [*self._heap, *([self._in_flight] if self._in_flight else [])]
            pending_statuses = sum(len(p.keys) for p in waiting if p.kind == "statuses")
            return {
                "config": self._config.to_public(),
                "stats": dict(self._stats) | {"pending": len(waiting)},
                "pending_statuses": pending_statuses,
                "recent": list(self._recent),
            }

    # -- scheduling (any thread) -----------------------------------------------------------

    def schedule_statuses(self, planned: list[PlannedStatus]) -> None:
        now = time.monotonic()
        with self._wake:
            for status in planned:
                if len(self._heap) >= self._config.queue_cap:
                    self._stats["dropped"] += 1
                    continue
                pending = _Pending(
                    now + status.due_s, next(self._seq), "statuses", status=status,
                    keys=(status.key,),
                )  # fmt: skip
                heapq.heappush(self._heap, pending)
                self._stats["scheduled_statuses"] += 1
            self._wake.notify_all()

    def schedule_event(self, kind: str, payload: dict[str, Any]) -> bool:
        """Queue one on-demand webhook for now; False when the queue is full (dropped)."""
        with self._wake:
            if len(self._heap) >= self._config.queue_cap:
                self._stats["dropped"] += 1
                return False
            body = encode(payload)
            heapq.heappush(self._heap, _Pending(time.monotonic(), next(self._seq), kind, body=body))
            self._stats["scheduled_events"] += 1
            self._wake.notify_all()
            return True

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        with self._lock:
            if self._thread is not None:
                raise RuntimeError("webhook dispatcher already started")
            self._stopping = False
            self._thread = threading.Thread(
                target=self._run, name="sandbox-cloudapi-webhooks", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        """Wake the thread, cut an in-flight POST, join; idempotent."""
        with self._wake:
            thread, self._thread = self._thread, None
            self._stopping = True
            self._wake.notify_all()
        self._close_connection(shutdown=True)
        if thread is not None:
            thread.join(STOP_JOIN_S)
        self._close_connection(shutdown=False)

    # -- the thread ------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._wake:
                pending = self._next_due()
                if pending is None:
                    return  # stopping
                self._in_flight = pending
                config = self._config
            status = self._post(config, pending)
            with self._wake:
                self._in_flight = None
                if self._stopping:
                    return
                self._finish(config, pending, status)

    def _next_due(self) -> _Pending | None:
        """Wait (lock held) for the next due POST, batched when the dice say so."""
        while not self._stopping:
            now = time.monotonic()
            if not self._config.enabled or not self._heap:
                wait_s = IDLE_WAIT_S
            elif self._heap[0].due <= now:
                return self._take(now)
            else:
                wait_s = self._heap[0].due - now
            self._wake.wait(min(wait_s, IDLE_WAIT_S))
        return None

    def _take(self, now: float) -> _Pending:
        first = heapq.heappop(self._heap)
        if first.body is not None:
            return first
        assert first.status is not None
        group = [first.status]
        if self._rng.random() < self._config.batch_probability:
            group += self._take_more(now, first.status)
        business = Business(
            self._config.waba_id, first.status.phone_number_id, self._config.display_phone_number
        )
        body = encode(statuses_payload(business, [s.item for s in group]))
        return _Pending(
            first.due, first.seq, "statuses", body=body, keys=tuple(s.key for s in group)
        )

    def _take_more(self, now: float, first: PlannedStatus) -> list[PlannedStatus]:
        """Other due statuses of the same number for the same POST; never two copies of one."""
        taken: list[PlannedStatus] = []
        keys = {first.key}
        kept: list[_Pending] = []
        while self._heap and self._heap[0].due <= now and len(taken) + 1 < self._config.max_batch:
            candidate = heapq.heappop(self._heap)
            status = candidate.status
            if (
                status is None
                or status.phone_number_id != first.phone_number_id
                or status.key in keys
            ):
                kept.append(candidate)
                continue
            keys.add(status.key)
            taken.append(status)
        for candidate in kept:
            heapq.heappush(self._heap, candidate)
        return taken

    def _finish(self, config: WebhookConfig, pending: _Pending, status: int | None) -> None:
        """Count the outcome (lock held); queue a retry after a 5xx or no answer."""
        self._stats["attempts"] += 1
        if status is not None and 200 <= status < 300:
            self._stats["delivered_posts"] += 1
            if pending.kind == "statuses":
                self._stats["delivered_statuses"] += len(pending.keys)
            else:
                self._stats["delivered_events"] += 1
            self._record(pending, "delivered", status)
            return
        if status is not None and status < 500:
            self._stats["rejected"] += 1
            self._record(pending, "rejected", status)
            return
        self._stats["failed_attempts"] += 1
        backoff_s = config.retry_base_s * 2 ** (pending.attempt - 1) * config.time_scale
        backed_off_s = pending.backed_off_s + backoff_s
        total_s = config.retry_max_total_s * config.time_scale
        if pending.attempt >= config.retry_attempts or backed_off_s > total_s:
            self._stats["gave_up"] += 1
            self._record(pending, "gave_up", status)
            return
        self._stats["retries"] += 1
        retry = _Pending(
            time.monotonic() + backoff_s, next(self._seq), pending.kind, body=pending.body,
            keys=pending.keys, attempt=pending.attempt + 1, backed_off_s=backed_off_s,
        )  # fmt: skip
        heapq.heappush(self._heap, retry)

    def _record(self, pending: _Pending, outcome: str, status: int | None) -> None:
        self._recent.append(
            {
                "kind": pending.kind,
                "statuses": [list(k) for k in pending.keys],
                "attempts": pending.attempt,
                "outcome": outcome,
                "http_status": status,
            }
        )

    # -- HTTP ------------------------------------------------------------------------------

    def _post(self, config: WebhookConfig, pending: _Pending) -> int | None:
        """POST the body; the HTTP status, or None when the receiver could not be reached."""
        assert pending.body is not None
        assert config.url is not None
        parts = urlsplit(config.url)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            SIGNATURE_HEADER: sign(pending.body, config.app_secret),
        }
        for fresh in (False, True):
            reused = False
            try:
                conn, reused = self._connection(
                    parts.scheme, parts.netloc, config.request_timeout_s, fresh=fresh
                )
                conn.request("POST", path, body=pending.body, headers=headers)
                with conn.getresponse() as response:
                    response.read()
                    if response.will_close:
                        self._close_connection(shutdown=False)
                    return response.status
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self._close_connection(shutdown=False)
                if not reused:
                    return None  # a kept-alive connection the receiver had closed: once more
            except (OSError, http.client.HTTPException):
                self._close_connection(shutdown=False)
                return None
        return None

    def _connection(
        self, scheme: str, netloc: str, timeout_s: float, *, fresh: bool
    ) -> tuple[http.client.HTTPConnection, bool]:
        """The kept-alive connection to the receiver (and True), or a new one (and False):
        new when ``fresh`` or when the URL's host changed."""
        with self._conn_lock:
            if self._stopping:
                raise OSError("stopping")
            if not fresh and self._conn is not None and self._conn_target == (scheme, netloc):
                return self._conn, self._conn.sock is not None
            if self._conn is not None:
                self._conn.close()
            factory = (
                http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
            )
            self._conn = factory(netloc, timeout=timeout_s)
            self._conn_target = (scheme, netloc)
            return self._conn, False

    def _close_connection(self, *, shutdown: bool) -> None:
        with self._conn_lock:
            conn, self._conn, self._conn_target = self._conn, None, None
        if conn is None:
            return
        if shutdown and conn.sock is not None:
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_RDWR)
        conn.close()
