"""The in-memory ``campaigns.ports.CapGuard``."""

from __future__ import annotations

import threading

from campaigns.domain.errors import StoreUnavailable
from campaigns.ports import CapUsage, Reservation


class MemoryCapGuard:
    """A moving-window cap over hour buckets, like the DynamoDB guard (without the items)."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._lock = threading.Lock()
        self._hours: dict[int, int] = {}
        self.refunds = 0
        self._failing_refunds = 0
        self._lost_answers = 0
        self._slots: dict[int, str] = {}  # thread -> the reservation it refunded last

    def fail_next_refunds(self, times: int) -> None:
        """The next ``times`` refunds raise ``StoreUnavailable`` without landing (throttled
        past their retries)."""
        with self._lock:
            self._failing_refunds += times

    def lose_next_answer(self) -> None:
        """The next refund lands but its answer is lost, so it is sent again."""
        with self._lock:
            self._lost_answers += 1

    def _window(self, hour: int) -> int:
        return sum(n for h, n in self._hours.items() if hour - 24 <= h <= hour)

    def reserve(self, now_s: float) -> Reservation | None:
        hour = int(now_s // 3600)
        with self._lock:
            used = self._window(hour)
            if self.cap and used >= self.cap:
                return None
            self._hours[hour] = self._hours.get(hour, 0) + 1
            return Reservation(bucket="memory", hour=hour, used=used + 1, limit=self.cap)

    def refund(self, reservation: Reservation) -> None:
        with self._lock:
            if self._failing_refunds:
                self._failing_refunds -= 1
                raise StoreUnavailable("DynamoDB refund failed: ThrottlingException")
            if self._lost_answers:  # it lands, the answer is lost: the same write again
                self._lost_answers -= 1
                self._refund(reservation)
            self._refund(reservation)

    def _refund(self, reservation: Reservation) -> None:
        """As DynamoDB's: conditional on the thread's refund slot not holding this
        reservation's id yet, and on the bucket holding a unit."""
        slot = threading.get_ident()
        if self._slots.get(slot) == reservation.id:
            return  # this very refund landed already
        if self._hours.get(reservation.hour, 0) > 0:
            self._hours[reservation.hour] -= 1
            self._slots[slot] = reservation.id
            self.refunds += 1

    def usage(self, now_s: float) -> CapUsage:
        with self._lock:
            return CapUsage(used=self._window(int(now_s // 3600)), limit=self.cap)
