"""A campaign's recipients for operators: one page at a time, or the whole list as CSV."""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from campaigns.domain.clock import iso_utc
from campaigns.domain.errors import InvalidInput
from campaigns.domain.meanings import error_meaning
from campaigns.domain.models import Recipient, RecipientStatus
from campaigns.operator.cursors import decode_cursor, encode_cursor

if TYPE_CHECKING:
    from campaigns.operator.commands import Producer

MAX_PAGE = 500
EXPORT_PAGE = 500  # rows per CSV chunk
COLUMNS = (
    "phone",
    "status",
    "attempts",
    "errorCode",
    "errorMeaning",
    "messageId",
    "unknownReason",
    "finishedAt",
)


def row(recipient: Recipient) -> dict[str, Any]:
    return {
        "phone": recipient.phone,
        "status": recipient.status.value,
        "attempts": recipient.attempts,
        "errorCode": recipient.error_code,
        "errorMeaning": error_meaning(recipient.error_code),
        "messageId": recipient.message_id,
        "unknownReason": recipient.unknown_reason,
        "finishedAt": None if recipient.finished_at is None else iso_utc(recipient.finished_at),
    }


def _after(cursor: str | None) -> str | None:
    if cursor is None:
        return None
    (phone,) = decode_cursor(cursor, 1)
    if not phone.isdigit():
        raise InvalidInput("invalid cursor")
    return phone


def page(
    op: Producer,
    campaign_id: str,
    status: RecipientStatus | None,
    limit: int,
    cursor: str | None,
) -> dict[str, Any]:
    """Up to ``limit`` recipients in key order after ``cursor``; ``nextCursor`` is None on the
    last page."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}")
    after = _after(cursor)
    op.get(campaign_id)
    found = op.store.iter_recipients(campaign_id, status, after=after)
    taken = list(itertools.islice(found, limit + 1))  # one more: is there a next page?
    rows = [row(r) for r in taken[:limit]]
    more = len(taken) > limit
    return {
        "success": True,
        "campaignId": campaign_id,
        "recipients": rows,
        "nextCursor": encode_cursor(taken[limit - 1].phone) if more else None,
    }


def export(op: Producer, campaign_id: str, status: RecipientStatus | None) -> Iterator[str]:
    """Checks the campaign now (raises at call time), then yields the CSV lazily."""
    op.get(campaign_id)
    return _csv_chunks(op, campaign_id, status)


def _csv_chunks(op: Producer, campaign_id: str, status: RecipientStatus | None) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    yield _take(buffer)
    recipients = op.store.iter_recipients(campaign_id, status)
    while chunk := list(itertools.islice(recipients, EXPORT_PAGE)):
        for recipient in chunk:
            values = row(recipient)
            writer.writerow(["" if values[c] is None else values[c] for c in COLUMNS])
        yield _take(buffer)


def _take(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text
