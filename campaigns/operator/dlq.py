"""Looking at and redriving the dead-letter queue."""

from __future__ import annotations

from typing import Any

from campaigns.domain.message import UndecodableMessage, decode
from campaigns.ports import BatchQueue, ReceivedMessage, SendQueue

PEEK_VISIBILITY_S = 10
REDRIVE_VISIBILITY_S = 60


def describe(message: ReceivedMessage) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "messageId": message.message_id,
        "receiveCount": message.receive_count,
    }
    try:
        batch = decode(message.body)
        entry |= {"campaignId": batch.campaign_id, "batchId": batch.batch_id,
                  "recipients": len(batch.phones), "valid": True}  # fmt: skip
    except UndecodableMessage as exc:
        entry |= {"valid": False, "problem": str(exc), "body": message.body[:200]}
    return entry


def list_dead(dlq: BatchQueue, limit: int) -> list[dict[str, Any]]:
    """Peek: receive, describe, and make every message visible again at once."""
    seen: dict[str, ReceivedMessage] = {}
    receipts: list[str] = []
    while len(seen) < limit:
        batch = dlq.receive(min(10, limit - len(seen)), wait_s=1, visibility_timeout_s=30)
        new = [m for m in batch if m.message_id not in seen]
        receipts.extend(m.receipt_handle for m in batch)
        if not new:
            break
        for message in new:
            seen[message.message_id] = message
    if receipts:
        dlq.change_visibility(receipts, 0)
    return [describe(m) for m in seen.values()]


def redrive(dlq: BatchQueue, main: SendQueue, limit: int) -> dict[str, int]:
    """Move messages back to the main queue; a message leaves the DLQ only after its copy was
    sent. A crash in between leaves a duplicate, which the claim step makes harmless."""
    moved = 0
    while moved < limit:
        batch = dlq.receive(
            min(10, limit - moved), wait_s=1, visibility_timeout_s=REDRIVE_VISIBILITY_S
        )
        if not batch:
            break
        for message in batch:
            main.send([message.body])
            dlq.delete([message.receipt_handle])
            moved += 1
    return {"redriven": moved}
