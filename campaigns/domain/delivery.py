"""What one delivery report does to one recipient: the merge both stores apply.

``merge_delivery`` is pure: from the recipient as read and the report it decides the recipient
fields to set and the campaign counters to move. The memory store applies it under its lock;
the DynamoDB store writes it conditioned on the values it was decided from (and decides again
if they moved), so the two cannot drift.

Every part of it is a join (a max or a min, or "fill when empty"), so duplicates and any order
of the same reports give one end state:

- ``deliveryStatus`` is the max by ``DELIVERY_RANK`` of the old one and the report's; only a
  report that raises it moves the counters (``changed``), by the difference between old and
  new: ``deliveredCount`` += [new ≥ DELIVERED] - [old ≥ DELIVERED], ``readCount`` += [new = READ]
  - [old = READ], ``deliveryFailedCount`` += [new = FAILED] - [old = FAILED]. A "failed" after
  "read" is ignored; a late "delivered" after "failed" wins (Meta delivered it after all);
- ``deliveryErrorCode`` is the code of the FAILED report while the status is FAILED, and is
  removed when a later report lifts it past FAILED;
- ``deliveredAt`` is the earliest time of a report at DELIVERED or above (a READ without a
  DELIVERED sets it), ``readAt`` the earliest READ: a late report with an earlier timestamp
  moves them back, although it changes nothing else;
- ``userId`` is filled from the first report that carries one, ``pricingCategory`` from the
  first whose pricing object is billable (``billable`` true or not said);
- ``heldCount`` counts the recipients still HELD (sent as held_for_quality_assessment, no
  status since): any report lifts HELD, since every status ranks above it;
- the tallies (``campaigns.domain.tallies``) count the FAILED recipients by error code and the
  billable deliveries (DELIVERED or READ with a billable category) by category and calling
  code. All counters are ``state_counts`` summed over the recipients: a report moves them by
  ``state_counts(after) - state_counts(before)``;
- any report about an UNKNOWN recipient proves the send: it becomes SENT with the report's
  wamid, ``unknownCount`` -1 and ``sentCount`` +1 — once, since it is no longer UNKNOWN after.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from campaigns.domain import tallies
from campaigns.domain.models import (
    DELIVERY_RANK,
    DeliveryApplied,
    DeliveryReport,
    DeliveryStatus,
    Recipient,
    RecipientStatus,
)
from campaigns.domain.phones import calling_code

_DELIVERED_RANK = DELIVERY_RANK[DeliveryStatus.DELIVERED]
# The fixed delivery counters: Campaign field → its name (the attribute, and the key of
# ``Campaign.to_public``). The tallies are named by their keys.
DELIVERY_COUNTERS = {
    "delivered_count": "deliveredCount",
    "read_count": "readCount",
    "delivery_failed_count": "deliveryFailedCount",
    "held_count": "heldCount",
}


@dataclass(frozen=True)
class DeliveryChange:
    """The writes one report asks for: ``sets`` maps ``Recipient`` fields to their new values
        (None: remove it), ``counts`` maps ``Campaign`` counter fields and tally keys
    (``campaigns.domain.tallies``) to their (non-zero) deltas.
        ``changed``: the deliveryStatus moved up; ``sets`` may hold writes without that (an
        earlier timestamp, a first userId)."""

    before: DeliveryStatus | None
    after: DeliveryStatus | None
    changed: bool
    resolves_unknown: bool
    sets: Mapping[str, Any] = field(default_factory=dict)
    counts: Mapping[str, int] = field(default_factory=dict)

    @property
    def writes(self) -> bool:
        return bool(self.sets)

    def applied(self) -> DeliveryApplied:
        return DeliveryApplied(
            found=True,
            changed=self.changed,
            resolved_unknown=self.resolves_unknown,
            before=self.before,
            after=self.after,
        )


def rank(status: DeliveryStatus | None) -> int:
    """``DELIVERY_RANK``, with no status yet below every status."""
    return -1 if status is None else DELIVERY_RANK[status]


def _delivered(status: DeliveryStatus | None) -> int:
    return int(rank(status) >= _DELIVERED_RANK)


def _is(status: DeliveryStatus | None, wanted: DeliveryStatus) -> int:
    return int(status is wanted)


def merge_delivery(recipient: Recipient, report: DeliveryReport) -> DeliveryChange:
    before = recipient.delivery_status
    changed = rank(report.status) > rank(before)
    after = report.status if changed else before
    sets: dict[str, Any] = {}
    if changed:
        sets["delivery_status"] = after
        if after is DeliveryStatus.FAILED:
            sets["delivery_error_code"] = report.error_code
        elif recipient.delivery_error_code is not None:
            sets["delivery_error_code"] = None  # delivered after all: the failure is void
    if _delivered(report.status) and _earlier(report.at_s, recipient.delivered_at):
        sets["delivered_at"] = report.at_s
    if report.status is DeliveryStatus.READ and _earlier(report.at_s, recipient.read_at):
        sets["read_at"] = report.at_s
    if report.user_id is not None and recipient.user_id is None:
        sets["user_id"] = report.user_id
    billable = report.billable is not False
    category = tallies.category_of(report.pricing_category) if billable else None
    if category is not None and recipient.pricing_category is None:
        sets["pricing_category"] = category
    sets = {name: value for name, value in sets.items() if value != getattr(recipient, name)}
    counts = state_counts(replace(recipient, **sets))
    counts.subtract(state_counts(recipient))  # keeps the negative deltas (unlike ``-``)
    resolves = recipient.status is RecipientStatus.UNKNOWN
    if resolves:
        sets["status"] = RecipientStatus.SENT
        if report.message_id is not None and report.message_id != recipient.message_id:
            sets["message_id"] = report.message_id
        counts.update({"unknown_count": -1, "sent_count": 1})
    return DeliveryChange(
        before=before,
        after=after,
        changed=changed,
        resolves_unknown=resolves,
        sets=sets,
        counts={name: delta for name, delta in counts.items() if delta},
    )


def state_counts(recipient: Recipient) -> Counter[str]:
    """The delivery counters one recipient stands for: the campaign's counters are the sum of
    this over its recipients (``reconcile`` recounts them so), and a report moves them by the
    difference between the recipient after and before it."""
    status = recipient.delivery_status
    counts: Counter[str] = Counter()
    if status is None:
        return counts
    delivered = _delivered(status)
    counts["delivered_count"] = delivered
    counts["read_count"] = _is(status, DeliveryStatus.READ)
    counts["held_count"] = _is(status, DeliveryStatus.HELD)
    if status is DeliveryStatus.FAILED:
        counts["delivery_failed_count"] = 1
        counts[tallies.failure_key(recipient.delivery_error_code)] = 1
    if delivered and recipient.pricing_category is not None:
        key = tallies.billed_key(recipient.pricing_category, calling_code(recipient.phone))
        counts[key] = 1
    return counts


def _earlier(at_s: float, current: float | None) -> bool:
    return current is None or at_s < current
