"""Reading a campaign's recipients: page by page, or counted by status."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from campaigns.aws.dynamo import Table, text
from campaigns.aws.items import (
    USER_PREFIX,
    campaign_partition,
    recipient_from_item,
    recipient_key,
)
from campaigns.domain.models import Recipient, RecipientStatus, StatusCounts


class RecipientReads:
    """The recipient reads of ``campaigns.ports.Store`` on the recipients table."""

    def __init__(self, table: Table) -> None:
        self._table = table

    def iter_recipients(
        self,
        campaign_id: str,
        status: RecipientStatus | None = None,
        page_size: int = 500,
        *,
        after: str | None = None,
    ) -> Iterator[Recipient]:
        """Yield the campaign's recipients page by page (constant memory), in sort-key order;
        with ``after``, starting strictly after that phone's key (it need not exist)."""
        request: dict[str, Any] = {
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :u)",
            "ExpressionAttributeValues": {
                ":pk": campaign_partition(campaign_id),
                ":u": text(USER_PREFIX),
            },
            "ConsistentRead": True,
            "Limit": page_size,
        }
        if status is not None:
            request["FilterExpression"] = "#s = :st"
            request["ExpressionAttributeNames"] = {"#s": "status"}
            request["ExpressionAttributeValues"][":st"] = text(status.value)
        if after is not None:
            request["ExclusiveStartKey"] = recipient_key(campaign_id, after)
        for item in self._table.query_items(**request):
            yield recipient_from_item(campaign_id, item)

    def count_statuses(self, campaign_id: str) -> StatusCounts:
        counts: dict[RecipientStatus, int] = {}
        for recipient in self.iter_recipients(campaign_id):
            counts[recipient.status] = counts.get(recipient.status, 0) + 1
        return StatusCounts(counts)
