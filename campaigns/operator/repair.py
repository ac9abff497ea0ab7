"""Repair: ``reconcile`` (expire dead leases, repair counters, complete, re-enqueue lost
batches) and ``requeue-unknown`` (UNKNOWN → PENDING, accepting the duplicate risk)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from campaigns.domain.delivery import DELIVERY_COUNTERS, state_counts
from campaigns.domain.errors import InvalidInput, InvalidTransition
from campaigns.domain.models import REQUEUE_HOLD_S, CampaignStatus, RecipientStatus
from campaigns.domain.tallies import is_tally
from campaigns.operator.batches import enqueue_pending

if TYPE_CHECKING:
    from campaigns.operator.commands import Producer
    from campaigns.ports import Clock, OperatorStore

RECONCILE_SETTLE_S = 1.0  # a counter ADD still in flight lands within this long
COUNT_TOKEN_IDLE_S = 3600.0  # a batch thread's counter token idle this long is pruned
SETTLE_ROUNDS = 10


def reconcile(op: Producer, campaign_id: str | None) -> dict[str, Any]:
    if campaign_id is not None:
        op.get(campaign_id)
        ids = [campaign_id]
    else:
        ids = [
            c.campaign_id
            for c in op.store.list_campaigns()
            if c.status in (CampaignStatus.RUNNING, CampaignStatus.PAUSED)
        ]
    return {"success": True, "campaigns": [_reconcile_one(op, cid) for cid in ids]}


def _reconcile_one(op: Producer, campaign_id: str) -> dict[str, Any]:
    store = op.store
    now = op.clock.now()
    expired = 0
    for recipient in store.iter_recipients(campaign_id, RecipientStatus.SENDING):
        if recipient.lease_expired(now) and store.expire_lease(recipient, now):
            store.add_counts(campaign_id, unknown=1)
            expired += 1
    repaired = _repair_counters(op, campaign_id)
    store.prune_count_tokens(campaign_id, COUNT_TOKEN_IDLE_S)
    completed = False
    reenqueued = 0
    campaign = op.get(campaign_id)
    if campaign.status is CampaignStatus.RUNNING:
        completed = op.complete_if_done(campaign_id)
        if not completed and op.queue.depth() == (0, 0):
            # RUNNING with PENDING recipients and not one message anywhere in the queue:
            # their messages were lost (or dead-lettered). Duplicates would be harmless.
            _, reenqueued = enqueue_pending(op, campaign_id)
    return {
        "campaignId": campaign_id,
        "expiredLeases": expired,
        "repairedCounters": repaired,
        "reenqueuedRecipients": reenqueued,
        "completed": completed,
        "status": op.get(campaign_id).status.value,
    }


# A census: for each counter (by its attribute name), the value stored and the value the
# recipients say it should have; compared twice around a settle before anything is set.
Census = dict[str, tuple[int, int]]


def _send_census(op: Producer, campaign_id: str) -> Census:
    counts = op.store.count_statuses(campaign_id)
    campaign = op.get(campaign_id)
    return {
        "sentCount": (campaign.sent_count, counts[RecipientStatus.SENT]),
        "failedCount": (campaign.failed_count, counts[RecipientStatus.FAILED]),
        "unknownCount": (campaign.unknown_count, counts[RecipientStatus.UNKNOWN]),
        "totalRecipients": (campaign.total_recipients, counts.total),
    }


def _delivery_census(op: Producer, campaign_id: str) -> Census:
    """The delivery counters and tallies against ``state_counts`` summed over the recipients."""
    recount: Counter[str] = Counter()
    for recipient in op.store.iter_recipients(campaign_id):
        recount.update(state_counts(recipient))
    campaign = op.get(campaign_id)
    census = {
        name: (getattr(campaign, field_name), recount[field_name])
        for field_name, name in DELIVERY_COUNTERS.items()
    }
    for key in set(campaign.tallies) | {key for key in recount if is_tally(key)}:
        census[key] = (campaign.tallies.get(key, 0), recount[key])
    return census


def _repair_counters(op: Producer, campaign_id: str) -> dict[str, dict[str, int]]:
    repaired = _repair(op, campaign_id, _send_census)
    return repaired | _repair(op, campaign_id, _delivery_census)


def _repair(
    op: Producer, campaign_id: str, census: Callable[[Producer, str], Census]
) -> dict[str, dict[str, int]]:
    repaired: dict[str, dict[str, int]] = {}
    for _ in range(SETTLE_ROUNDS):
        found = census(op, campaign_id)
        wrong = {name: pair for name, pair in found.items() if pair[0] != pair[1]}
        if not wrong:
            break
        # A consumer may be between its recipient commit and its counter ADD: only repair
        # what stays wrong after that ADD had time to land.
        op.clock.sleep(RECONCILE_SETTLE_S)
        if census(op, campaign_id) != found:
            continue
        moved = False
        for name, (old, new) in wrong.items():
            if op.store.set_counter(campaign_id, name, old, new):
                repaired[name] = {"from": old, "to": new}
            else:
                moved = True
        if not moved:
            break
    return repaired


def requeue_unknown(op: Producer, campaign_id: str, *, confirmed: bool) -> dict[str, Any]:
    if not confirmed:
        raise InvalidInput(
            "requeue-unknown may message these recipients a second time: "
            "pass --yes to accept that risk"
        )
    campaign = op.get(campaign_id)
    if campaign.status in (CampaignStatus.COMPLETED, CampaignStatus.CANCELLED):
        raise InvalidTransition(campaign.status.value, "requeue-unknown")
    requeued = requeue_unknown_recipients(op.store, op.clock, campaign_id)
    result: dict[str, Any] = {"success": True, "requeued": requeued}
    if requeued and campaign.status is CampaignStatus.RUNNING:
        batches, _ = enqueue_pending(op, campaign_id)
        result["enqueuedBatches"] = batches
    return result


def requeue_unknown_recipients(store: OperatorStore, clock: Clock, campaign_id: str) -> int:
    """UNKNOWN → PENDING for every UNKNOWN recipient of the campaign; how many. Completion is
    held off meanwhile, and refused afterwards for any scan that began before the end (the
    generation bump), so no recipient made PENDING here is left in a COMPLETED campaign.
    ``InvalidTransition`` if the campaign is COMPLETED or CANCELLED."""
    store.begin_requeue(campaign_id, clock.now() + REQUEUE_HOLD_S)
    requeued = 0
    try:
        for recipient in store.iter_recipients(campaign_id, RecipientStatus.UNKNOWN):
            if store.requeue_unknown(recipient):
                store.add_counts(campaign_id, unknown=-1)
                requeued += 1
    finally:
        store.end_requeue(campaign_id)
    return requeued
