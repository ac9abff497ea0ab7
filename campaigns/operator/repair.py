"""Repair: ``reconcile`` (expire dead leases, repair counters, complete, re-enqueue lost
batches) and ``requeue-unknown`` (UNKNOWN → PENDING, accepting the duplicate risk)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from campaigns.domain.errors import InvalidInput, InvalidTransition
from campaigns.domain.models import CampaignStatus, RecipientStatus
from campaigns.operator.batches import enqueue_pending

if TYPE_CHECKING:
    from campaigns.operator.commands import Producer

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


def _repair_counters(op: Producer, campaign_id: str) -> dict[str, dict[str, int]]:
    store = op.store
    repaired: dict[str, dict[str, int]] = {}
    for _ in range(SETTLE_ROUNDS):
        counts = store.count_statuses(campaign_id)
        campaign = op.get(campaign_id)
        wanted = {
            "sentCount": (campaign.sent_count, counts[RecipientStatus.SENT]),
            "failedCount": (campaign.failed_count, counts[RecipientStatus.FAILED]),
            "unknownCount": (campaign.unknown_count, counts[RecipientStatus.UNKNOWN]),
            "totalRecipients": (campaign.total_recipients, counts.total),
        }
        wrong = {name: pair for name, pair in wanted.items() if pair[0] != pair[1]}
        if not wrong:
            break
        # A consumer may be between its recipient commit and its counter ADD: only repair
        # what stays wrong after that ADD had time to land.
        op.clock.sleep(RECONCILE_SETTLE_S)
        if store.count_statuses(campaign_id) != counts or op.get(campaign_id) != campaign:
            continue
        moved = False
        for name, (old, new) in wrong.items():
            if store.set_counter(campaign_id, name, old, new):
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
    requeued = 0
    for recipient in op.store.iter_recipients(campaign_id, RecipientStatus.UNKNOWN):
        if op.store.requeue_unknown(recipient):
            op.store.add_counts(campaign_id, unknown=-1)
            requeued += 1
    result: dict[str, Any] = {"success": True, "requeued": requeued}
    if requeued and campaign.status is CampaignStatus.RUNNING:
        batches, _ = enqueue_pending(op, campaign_id)
        result["enqueuedBatches"] = batches
    return result
