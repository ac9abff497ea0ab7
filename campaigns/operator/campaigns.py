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


def list_campaigns(op: Producer) -> dict[str, Any]:
    campaigns = [
        {
            "campaignId": c.campaign_id,
            "name": c.name,
            "status": c.status.value,
            "totalRecipients": c.total_recipients,
            "progress": c.progress_percent,
            "createdAt": c.created_at,
        }
        for c in op.store.list_campaigns()
    ]
    return {"success": True, "campaigns": campaigns}


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
