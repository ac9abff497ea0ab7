"""The in-memory batch queue: ``campaigns.ports.BatchQueue`` and ``SendQueue`` with SQS's
visibility semantics."""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from campaigns.ports import ReceivedMessage


@dataclass
class _Held:
    message: ReceivedMessage
    visible_at: float
    receipt: str | None = None


@dataclass
class MemoryQueue:
    """SQS semantics that matter here: visibility timeout, receive counts, redrive to a DLQ."""

    visibility_timeout_s: float = 60.0
    max_receive_count: int = 5
    clock: Any = time.monotonic
    dead: list[ReceivedMessage] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    _messages: dict[str, _Held] = field(default_factory=dict)
    _receipts: dict[str, str] = field(default_factory=dict)
    _ids: Any = field(default_factory=itertools.count)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, bodies: Sequence[str], delay_s: int = 0) -> int:
        with self._lock:
            for body in bodies:
                message_id = f"m{next(self._ids)}"
                self._messages[message_id] = _Held(
                    ReceivedMessage(message_id, "", body, 0), self.clock() + delay_s
                )
        return len(bodies)

    def receive(
        self, max_messages: int, wait_s: int, visibility_timeout_s: int | None = None
    ) -> list[ReceivedMessage]:
        now = self.clock()
        out: list[ReceivedMessage] = []
        with self._lock:
            for message_id, held in list(self._messages.items()):
                if len(out) >= max_messages:
                    break
                if held.visible_at > now:
                    continue
                count = held.message.receive_count + 1
                if count > self.max_receive_count:
                    self.dead.append(held.message)
                    del self._messages[message_id]
                    continue
                receipt = uuid.uuid4().hex
                received = ReceivedMessage(message_id, receipt, held.message.body, count)
                timeout = (
                    self.visibility_timeout_s
                    if visibility_timeout_s is None
                    else visibility_timeout_s
                )
                self._messages[message_id] = _Held(received, now + timeout, receipt)
                self._receipts[receipt] = message_id
                out.append(received)
        return out

    def delete(self, receipt_handles: Sequence[str]) -> list[str]:
        with self._lock:
            for receipt in receipt_handles:
                message_id = self._receipts.pop(receipt, None)
                if message_id is not None and message_id in self._messages:
                    del self._messages[message_id]
                    self.deleted.append(message_id)
        return []

    def change_visibility(self, receipt_handles: Sequence[str], timeout_s: int) -> list[str]:
        failed: list[str] = []
        with self._lock:
            for receipt in receipt_handles:
                message_id = self._receipts.get(receipt)
                held = self._messages.get(message_id) if message_id else None
                if held is None or held.receipt != receipt:
                    failed.append(receipt)
                    continue
                held.visible_at = self.clock() + timeout_s
        return failed

    def depth(self) -> tuple[int, int]:
        now = self.clock()
        with self._lock:
            visible = sum(1 for h in self._messages.values() if h.visible_at <= now)
            return visible, len(self._messages) - visible

    def bodies(self) -> list[str]:
        with self._lock:
            return [h.message.body for h in self._messages.values()]
