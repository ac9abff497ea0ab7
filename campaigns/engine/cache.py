"""Campaign metadata read at most once a second per campaign, so pause and cancel take effect
within a second (or one send) without a read per recipient."""

from __future__ import annotations

import threading

from campaigns.domain.models import Campaign
from campaigns.ports import CampaignStore, Clock

STATUS_CACHE_S = 1.0  # pause and cancel take effect within a second (or one send)
MAX_ENTRIES = 1000  # campaigns remembered; the oldest entry goes first


class CampaignCache:
    """Campaign metadata read at most once a second per campaign; shared by threads."""

    def __init__(self, store: CampaignStore, clock: Clock, ttl_s: float = STATUS_CACHE_S) -> None:
        self._store = store
        self._clock = clock
        self._ttl_s = ttl_s
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[Campaign | None, float]] = {}

    @property
    def ttl_s(self) -> float:
        """How old an entry may be when it is returned."""
        return self._ttl_s

    def get(self, campaign_id: str) -> Campaign | None:
        now = self._clock.monotonic()
        with self._lock:
            entry = self._entries.get(campaign_id)
        if entry is not None and now - entry[1] < self._ttl_s:
            return entry[0]
        campaign = self._store.get_campaign(campaign_id)
        self.put(campaign_id, campaign)
        return campaign

    def put(self, campaign_id: str, campaign: Campaign | None) -> None:
        with self._lock:
            self._entries[campaign_id] = (campaign, self._clock.monotonic())
            if len(self._entries) > MAX_ENTRIES:
                self._entries.pop(next(iter(self._entries)))
