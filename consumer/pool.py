"""A fixed set of daemon threads that run calls handed to them: the receipts loop's appliers.

Not ``concurrent.futures.ThreadPoolExecutor``: its threads are joined at interpreter exit, so
one store call hung on a dead connection would hold the process past its shutdown budget.
These are daemon threads like the worker's batch threads: the worker's drain bounds the wait,
and a message whose apply never finished is redelivered (applying it again changes nothing).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")

_Task = tuple["Future[Any]", Callable[[], Any]]


class ThreadPool:
    """``size`` threads, started once; ``submit`` hands one a call, ``shutdown`` ends them once
    the calls already handed over are done."""

    def __init__(self, size: int, name: str) -> None:
        if size < 1:
            raise ValueError("a pool needs at least one thread")
        self.size = size
        self._tasks: queue.SimpleQueue[_Task | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{index}", daemon=True)
            for index in range(size)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, call: Callable[[], T]) -> Future[T]:
        future: Future[T] = Future()
        self._tasks.put((future, call))
        return future

    def shutdown(self) -> None:
        """Each thread exits after the calls queued before this; nothing waits for them."""
        for _ in self._threads:
            self._tasks.put(None)

    def _work(self) -> None:
        while (task := self._tasks.get()) is not None:
            future, call = task
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(call())
            except BaseException as exc:  # handed to whoever waits on the future
                future.set_exception(exc)


__all__ = ["ThreadPool"]
