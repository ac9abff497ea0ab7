"""The statuses Meta would send for one accepted message, and when: ``sent`` → ``delivered`` →
``read`` (or never read), ``read`` at once without a ``delivered``, a ``failed`` after the 200
for rule-matched numbers, duplicates, and a message whose statuses arrive newest first.

``plan`` draws everything from the RNG it is given (one per message, see
``sandbox.cloudapi.deliveryrules``); only the wall clock is the caller's.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from sandbox.cloudapi.deliveryrules import DeliveryDecision
from sandbox.cloudapi.payloads import Recipient, bsuid_for, status_item
from sandbox.cloudapi.records import AcceptedMessage
from sandbox.cloudapi.webhookconfig import WebhookConfig


@dataclass(frozen=True)
class PlannedStatus:
    """One ``statuses[]`` item, due ``due_s`` (scaled seconds) after the accept."""

    due_s: float
    phone_number_id: str
    item: dict[str, Any]

    @property
    def key(self) -> tuple[str, str]:
        """(wamid, status): a duplicate has its original's key."""
        return str(self.item["id"]), str(self.item["status"])


def _uniform(rng: random.Random, low_high: tuple[float, float]) -> float:
    low, high = low_high
    return low if low == high else rng.uniform(low, high)


def _timeline(
    decision: DeliveryDecision, config: WebhookConfig, rng: random.Random
) -> list[tuple[str, float]]:
    """(status, unscaled seconds after the accept), in the order they happen."""
    sent_s = _uniform(rng, config.sent_delay_s)
    if decision.fail_code is not None:
        return [("failed", sent_s)]
    delivered_s = sent_s + _uniform(rng, config.delivered_delay_s)
    reads = not decision.never_read and rng.random() < config.read_share
    if not reads:
        return [("sent", sent_s), ("delivered", delivered_s)]
    if rng.random() < config.read_without_delivered_probability:
        return [("sent", sent_s), ("read", delivered_s)]  # read at once: no delivered
    return [
        ("sent", sent_s),
        ("delivered", delivered_s),
        ("read", delivered_s + _uniform(rng, config.read_delay_s)),
    ]


def plan(
    message: AcceptedMessage,
    decision: DeliveryDecision,
    config: WebhookConfig,
    rng: random.Random,
) -> list[PlannedStatus]:
    """Every status of ``message`` with its due time, earliest first."""
    timeline = _timeline(decision, config, rng)
    recipient = Recipient(None if decision.username else message.to, bsuid_for(message.to))
    items = [
        status_item(
            wamid=message.wamid,
            status=status,
            timestamp_s=int(message.accepted_at + at_s * config.time_scale),
            recipient=recipient,
            callback_data=message.biz_opaque_callback_data,
            category=decision.category,
            error_code=decision.fail_code,
        )
        for status, at_s in timeline
    ]
    dues = [at_s * config.time_scale for _, at_s in timeline]
    if len(items) > 1 and rng.random() < config.out_of_order_probability:
        items.reverse()  # the newest status takes the earliest slot
    planned = [
        PlannedStatus(due, message.phone_number_id, i) for due, i in zip(dues, items, strict=True)
    ]
    copies = [
        PlannedStatus(
            p.due_s + _uniform(rng, config.duplicate_delay_s) * config.time_scale,
            p.phone_number_id,
            p.item,
        )
        for p in planned
        if rng.random() < config.duplicate_probability
    ]
    return sorted(planned + copies, key=lambda p: p.due_s)
