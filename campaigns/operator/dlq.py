"""Looking at and redriving the dead-letter queue.

A message is *poison* when redriving it cannot help: its body does not decode, or its campaign
is not in the store. Nothing shown ever carries a raw phone number (masked as in the logs).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from campaigns.domain.message import UndecodableMessage, decode
from campaigns.domain.phones import mask_text
from campaigns.ports import BatchQueue, OperatorStore, ReceivedMessage, SendQueue

PEEK_VISIBILITY_S = 30
REDRIVE_VISIBILITY_S = 60
MAX_RECEIVE = 10  # SQS ReceiveMessage MaxNumberOfMessages
BODY_SHOWN = 200  # characters of an undecodable body shown


class PoisonCheck:
    """Says why a message is poison (None: it is not); one store read per campaign."""

    def __init__(self, store: OperatorStore) -> None:
        self._store = store
        self._exists: dict[str, bool] = {}

    def problem(self, body: str) -> str | None:
        try:
            batch = decode(body)
        except UndecodableMessage as exc:
            return mask_text(str(exc))
        if batch.campaign_id not in self._exists:
            found = self._store.get_campaign(batch.campaign_id)
            self._exists[batch.campaign_id] = found is not None
        if not self._exists[batch.campaign_id]:
            return f"campaign {batch.campaign_id} does not exist"
        return None


def describe(message: ReceivedMessage, poison: PoisonCheck) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "messageId": message.message_id,
        "receiveCount": message.receive_count,
    }
    problem = poison.problem(message.body)
    try:
        batch = decode(message.body)
    except UndecodableMessage:
        return entry | {
            "valid": False,
            "poison": True,
            "problem": problem,
            "body": mask_text(message.body[:BODY_SHOWN]),
        }
    entry |= {"campaignId": batch.campaign_id, "batchId": batch.batch_id,
              "recipients": len(batch.phones), "valid": True,
              "poison": problem is not None}  # fmt: skip
    if problem is not None:
        entry["problem"] = problem
    return entry


def _receive_each(
    dlq: BatchQueue, limit: int, visibility_s: int, handle: Callable[[ReceivedMessage], bool]
) -> list[str]:
    """Receive up to ``limit`` distinct messages and ``handle`` each (True: it was consumed);
    returns the receipts of those kept. Stops when a receive brings nothing new."""
    seen: set[str] = set()
    kept: list[str] = []
    while len(seen) < limit:
        batch = dlq.receive(min(MAX_RECEIVE, limit - len(seen)), wait_s=1,
                            visibility_timeout_s=visibility_s)  # fmt: skip
        new = [m for m in batch if m.message_id not in seen]
        kept.extend(m.receipt_handle for m in batch if m.message_id in seen)
        if not new:
            break
        for message in new:
            seen.add(message.message_id)
            if not handle(message):
                kept.append(message.receipt_handle)
    return kept


def list_dead(dlq: BatchQueue, store: OperatorStore, limit: int) -> list[dict[str, Any]]:
    """Peek: receive, describe, and make every message visible again at once."""
    poison = PoisonCheck(store)
    entries: list[dict[str, Any]] = []

    def peek(message: ReceivedMessage) -> bool:
        entries.append(describe(message, poison))
        return False

    kept = _receive_each(dlq, limit, PEEK_VISIBILITY_S, peek)
    if kept:
        dlq.change_visibility(kept, 0)
    return entries


def redrive(
    dlq: BatchQueue,
    main: SendQueue,
    store: OperatorStore,
    limit: int,
    *,
    include_poison: bool = False,
) -> dict[str, int]:
    """Move messages back to the main queue; a message leaves the DLQ only after its copy was
    sent. A crash in between leaves a duplicate, which the claim step makes harmless. Poison is
    left in the DLQ (visible again at once) unless ``include_poison``."""
    poison = PoisonCheck(store)
    counts = {"redriven": 0, "skippedPoison": 0}

    def move(message: ReceivedMessage) -> bool:
        if not include_poison and poison.problem(message.body) is not None:
            counts["skippedPoison"] += 1
            return False
        main.send([message.body])
        dlq.delete([message.receipt_handle])
        counts["redriven"] += 1
        return True

    kept = _receive_each(dlq, limit, REDRIVE_VISIBILITY_S, move)
    if kept:
        dlq.change_visibility(kept, 0)
    return counts
