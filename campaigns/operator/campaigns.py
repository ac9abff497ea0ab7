"""Campaign records: create, list, and the operator's transitions (start and resume enqueue)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from campaigns.domain.clock import iso_utc
from campaigns.domain.errors import InvalidInput, QueueUnavailable
from campaigns.domain.models import (
    OPERATOR_PAUSE_REASON,
    Action,
    Campaign,
    CampaignStatus,
    new_campaign_id,
    validate_campaign_id,
)
from campaigns.operator.batches import enqueue_pending
from campaigns.operator.cursors import decode_cursor, encode_cursor

if TYPE_CHECKING:
    from campaigns.operator.commands import Producer


def create(
    op: Producer, name: str, template: str, language: str, parameter_format: str
) -> dict[str, Any]:
    if not name.strip():
        raise InvalidInput("--name must not be empty")
    if not template.strip():
        raise InvalidInput("--template must not be empty")
    if not language.strip():
        raise InvalidInput("--language must not be empty")
    campaign = Campaign(
        campaign_id=new_campaign_id(),
        name=name.strip(),
        template_name=template.strip(),
        template_language=language.strip(),
        status=CampaignStatus.DRAFT,
        parameter_format=parameter_format,
        created_at=iso_utc(op.clock.now()),
    )
    op.store.create_campaign(campaign)
    return {"success": True, "campaignId": campaign.campaign_id}


MAX_LIST = 200


def _newest_first(campaign: Campaign) -> tuple[str, str]:
    return (campaign.created_at or "", campaign.campaign_id)


def list_campaigns(
    op: Producer, status: CampaignStatus | None, limit: int, cursor: str | None
) -> dict[str, Any]:
    """Newest first (createdAt, then campaignId, descending); the cursor holds the sort key of
    the last campaign shown, so the next page starts strictly below it."""
    if not 1 <= limit <= MAX_LIST:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIST}")
    below = decode_cursor(cursor, 2) if cursor is not None else None
    found = sorted(
        (
            c
            for c in op.store.list_campaigns()
            if (status is None or c.status is status)
            and (below is None or _newest_first(c) < below)
        ),
        key=_newest_first,
        reverse=True,
    )
    shown = found[:limit]
    more = len(found) > limit
    return {
        "success": True,
        "campaigns": [c.to_public() | {"progressPercent": c.progress_percent} for c in shown],
        "nextCursor": encode_cursor(*_newest_first(shown[-1])) if more else None,
    }


def transition(op: Producer, campaign_id: str, action: Action) -> dict[str, Any]:
    validate_campaign_id(campaign_id)
    reason = OPERATOR_PAUSE_REASON if action is Action.PAUSE else None
    campaign = op.store.transition(campaign_id, action, pause_reason=reason)
    result: dict[str, Any] = {"success": True, "newStatus": campaign.status.value}
    if action in (Action.START, Action.RESUME):
        try:
            batches, recipients = enqueue_pending(op, campaign_id)
        except QueueUnavailable as exc:
            raise QueueUnavailable(
                f"{exc}; the campaign is RUNNING but not every batch was enqueued: "
                f"run `campaign-producer enqueue {campaign_id}`"
            ) from None
        result |= {"enqueuedBatches": batches, "enqueuedRecipients": recipients}
        if recipients == 0 and op.complete_if_done(campaign_id):
            result["newStatus"] = CampaignStatus.COMPLETED.value
    return result
