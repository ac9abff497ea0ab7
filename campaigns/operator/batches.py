"""PENDING recipients in batches: enqueued to SQS (``start``, ``resume``, ``enqueue``) or sent
in-process (``execute-batch``). One routine walks them, for both."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

from campaigns.domain.errors import ConfigError, InvalidTransition
from campaigns.domain.message import BatchMessage, encode, new_batch
from campaigns.domain.models import CampaignStatus, RecipientStatus
from campaigns.engine.completion import complete_if_done as _complete_if_done
from campaigns.engine.outcomes import BatchSummary
from campaigns.settings import MAX_SQS_BATCH, require_meta_credentials

if TYPE_CHECKING:
    from campaigns.operator.commands import Producer


class BatchRunner(Protocol):
    """Sends one batch (``campaigns.engine.executor.BatchExecutor``)."""

    def run(self, message: BatchMessage, stop: threading.Event | None = None) -> BatchSummary: ...


def pending_batches(op: Producer, campaign_id: str) -> Iterator[list[str]]:
    """The campaign's PENDING phones in chunks of ``BATCH_SIZE``, read page by page."""
    phones: list[str] = []
    for recipient in op.store.iter_recipients(campaign_id, RecipientStatus.PENDING):
        phones.append(recipient.phone)
        if len(phones) == op.settings.batch_size:
            yield phones
            phones = []
    if phones:
        yield phones


def enqueue_pending(op: Producer, campaign_id: str) -> tuple[int, int]:
    """One message per batch of up to BATCH_SIZE PENDING recipients, 10 per SendMessageBatch.
    Holds O(batch) memory; duplicates are harmless (the claim step refuses them)."""
    bodies: list[str] = []
    batches = recipients = 0
    for phones in pending_batches(op, campaign_id):
        bodies.append(encode(new_batch(campaign_id, phones)))
        batches += 1
        recipients += len(phones)
        if len(bodies) == MAX_SQS_BATCH:
            op.queue.send(bodies)
            bodies = []
    if bodies:
        op.queue.send(bodies)
    return batches, recipients


def complete_if_done(op: Producer, campaign_id: str) -> bool:
    return _complete_if_done(op.store, campaign_id) is not None


def enqueue(op: Producer, campaign_id: str) -> dict[str, Any]:
    campaign = op.get(campaign_id)
    if campaign.status is not CampaignStatus.RUNNING:
        raise InvalidTransition(campaign.status.value, "enqueue")
    batches, recipients = enqueue_pending(op, campaign_id)
    completed = recipients == 0 and op.complete_if_done(campaign_id)
    return {
        "success": True,
        "enqueuedBatches": batches,
        "enqueuedRecipients": recipients,
        "completed": completed,
    }


def execute_batch(op: Producer, campaign_id: str) -> dict[str, Any]:
    """Send the first batch of PENDING recipients in-process, as a consumer would."""
    try:
        require_meta_credentials(op.settings)
    except ConfigError:
        raise ConfigError("invalid META_ACCESS_TOKEN / META_PHONE_NUMBER_ID: must be set") from None
    campaign = op.get(campaign_id)
    if campaign.status is not CampaignStatus.RUNNING:
        raise InvalidTransition(campaign.status.value, "execute-batch")
    phones = next(pending_batches(op, campaign_id), [])
    result: dict[str, Any] = {"success": True, "processed": 0, "sent": 0, "failed": 0}
    if not phones:
        completed = op.complete_if_done(campaign_id)
        return result | {"paused": False, "completed": completed, "pauseReason": None}
    summary = op.executor_factory().run(new_batch(campaign_id, phones))
    after = op.store.require_campaign(campaign_id)
    return result | {
        "processed": summary.processed,
        "sent": summary.sent,
        "failed": summary.failed,
        "unknown": summary.unknown,
        "paused": after.status is CampaignStatus.PAUSED,
        "completed": after.status is CampaignStatus.COMPLETED,
        "pauseReason": summary.pause_reason or after.pause_reason,
    }
