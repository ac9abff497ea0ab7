"""The in-memory ``campaigns.ports.DeliveryStore``: the part of ``MemoryStore`` the status
webhooks write, under the store's one lock (which stands in for DynamoDB's transaction)."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from campaigns.domain.delivery import merge_delivery
from campaigns.domain.models import (
    Campaign,
    CampaignStatus,
    DeliveryApplied,
    DeliveryReport,
    Recipient,
)
from campaigns.domain.tallies import is_tally


def _moved(campaign: Campaign, counts: Mapping[str, int]) -> Campaign:
    """The campaign with ``counts`` (counter fields and tally keys) added."""
    tallies = dict(campaign.tallies)
    moved: dict[str, Any] = {}
    for name, delta in counts.items():
        if is_tally(name):
            tallies[name] = tallies.get(name, 0) + delta
        else:
            moved[name] = getattr(campaign, name) + delta
    nonzero = {name: count for name, count in tallies.items() if count}
    return replace(campaign, tallies=nonzero, **moved)


class MemoryDeliveries:
    """Mixed into ``MemoryStore``, whose dicts and lock it works on."""

    _lock: threading.RLock
    campaigns: dict[str, Campaign]
    recipients: dict[tuple[str, str], Recipient]
    suppressed: dict[str, set[str]]
    user_links: dict[str, str]
    writes: int

    def apply_delivery(self, report: DeliveryReport) -> DeliveryApplied:
        key = (report.campaign_id, report.phone)
        with self._lock:
            current = self.recipients.get(key)
            if current is None:
                return DeliveryApplied(
                    found=False, changed=False, resolved_unknown=False, before=None, after=None
                )
            change = merge_delivery(current, report)
            if change.writes:
                self.recipients[key] = replace(current, **change.sets)
                self.writes += 1
            campaign = self.campaigns.get(report.campaign_id)
            if change.counts and campaign is not None:
                self.campaigns[report.campaign_id] = _moved(campaign, change.counts)
            return change.applied()

    def find_by_message_id(self, message_id: str) -> tuple[str, str] | None:
        with self._lock:
            for (campaign_id, phone), recipient in self.recipients.items():
                if recipient.message_id == message_id:
                    return campaign_id, phone
            return None

    def link_user(self, user_id: str, phone: str) -> None:
        with self._lock:
            self.user_links[user_id] = phone
            self.writes += 1

    def phone_for_user(self, user_id: str) -> str | None:
        with self._lock:
            return self.user_links.get(user_id)

    def unsuppress(self, phone: str, reason: str) -> bool:
        with self._lock:
            reasons = self.suppressed.get(phone)
            if reasons is None or reason not in reasons:
                return False
            reasons.discard(reason)
            if not reasons:  # the last reason lifted: the number is no longer suppressed
                del self.suppressed[phone]
            self.writes += 1
            return True

    def running_campaigns(self) -> list[Campaign]:
        with self._lock:
            running = [c for c in self.campaigns.values() if c.status is CampaignStatus.RUNNING]
        return sorted(running, key=lambda c: c.created_at or "")
