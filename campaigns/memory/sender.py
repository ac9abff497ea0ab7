"""The in-memory ``campaigns.ports.Sender``: a scripted Cloud API."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from campaigns.domain.models import SendAccepted, TemplateMessage

Outcome = SendAccepted | Exception


@dataclass
class FakeSender:
    """Answers from a script per phone (a list consumed in order; the last one repeats), else
    accepts. ``sent`` records every request made, in order."""

    script: dict[str, list[Outcome]] = field(default_factory=dict)
    default: Callable[[TemplateMessage], Outcome] | None = None
    sent: list[TemplateMessage] = field(default_factory=list)
    accepted: list[tuple[str, str]] = field(default_factory=list)  # (phone, wamid)
    _ids: Iterator[int] = field(default_factory=itertools.count)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, message: TemplateMessage) -> SendAccepted:
        with self._lock:
            self.sent.append(message)
            queue = self.script.get(message.to)
            if queue:
                outcome = queue.pop(0) if len(queue) > 1 else queue[0]
            elif self.default is not None:
                outcome = self.default(message)
            else:
                outcome = SendAccepted(f"wamid.fake{next(self._ids)}", "accepted")
            if isinstance(outcome, Exception):
                raise outcome
            self.accepted.append((message.to, outcome.message_id))
            return outcome

    def requests_for(self, phone: str) -> int:
        with self._lock:
            return sum(1 for m in self.sent if m.to == phone)
