"""The in-memory ``campaigns.ports.CapGuard``."""

from __future__ import annotations

import threading

from campaigns.ports import CapUsage, Reservation


class MemoryCapGuard:
    """A moving-window cap over hour buckets, like the DynamoDB guard (without the items)."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._lock = threading.Lock()
        self._hours: dict[int, int] = {}
        self.refunds = 0

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
            if self._hours.get(reservation.hour, 0) > 0:
                self._hours[reservation.hour] -= 1
                self.refunds += 1

    def usage(self, now_s: float) -> CapUsage:
        with self._lock:
            return CapUsage(used=self._window(int(now_s // 3600)), limit=self.cap)
