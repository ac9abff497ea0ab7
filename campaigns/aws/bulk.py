"""Bulk DynamoDB access for the producer: batched existence checks and writes (BatchGetItem
100 keys, BatchWriteItem 25 items), the entries DynamoDB left unprocessed tried again under
``campaigns.aws.retrying.unprocessed_batches``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from campaigns.aws.dynamo import MAX_BATCH_GET, MAX_BATCH_WRITE, call
from campaigns.aws.items import (
    SUPPRESSION_PREFIX,
    USER_PREFIX,
    item_key,
    new_recipient_item,
    recipient_key,
    suppression_key,
)
from campaigns.aws.retrying import unprocessed_batches
from campaigns.domain.clock import SystemClock
from campaigns.domain.errors import StoreUnavailable
from campaigns.domain.models import TemplateParam
from campaigns.ports import Clock

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class BulkRecipients:
    def __init__(
        self,
        client: DynamoDBClient,
        campaigns_table: str,
        recipients_table: str,
        clock: Clock | None = None,
    ) -> None:
        self._db = client
        self._campaigns = campaigns_table
        self._recipients = recipients_table
        self._retry = unprocessed_batches(clock or SystemClock())

    def known(self, campaign_id: str, phones: Sequence[str]) -> tuple[set[str], set[str]]:
        """(phones already in the campaign, phones on the suppression list), consistently read."""
        keys: dict[str, list[Any]] = {
            self._recipients: [recipient_key(campaign_id, p) for p in phones],
            self._campaigns: [suppression_key(p) for p in phones],
        }
        existing: set[str] = set()
        suppressed: set[str] = set()
        requests = [(table, key) for table, table_keys in keys.items() for key in table_keys]
        for start in range(0, len(requests), MAX_BATCH_GET):
            pending: dict[str, Any] = {}
            for table, key in requests[start : start + MAX_BATCH_GET]:
                pending.setdefault(table, {"Keys": [], "ConsistentRead": True})["Keys"].append(key)
            if self._get_all(pending, existing, suppressed):
                raise StoreUnavailable("DynamoDB BatchGetItem left keys unprocessed")
        return existing, suppressed

    def write_pending(
        self, campaign_id: str, rows: Sequence[tuple[str, tuple[TemplateParam, ...]]]
    ) -> int:
        """Write new PENDING recipients (callers checked they do not exist) in batches of 25."""
        written = 0
        for start in range(0, len(rows), MAX_BATCH_WRITE):
            chunk = rows[start : start + MAX_BATCH_WRITE]
            requests: list[Any] = [
                {"PutRequest": {"Item": new_recipient_item(campaign_id, phone, params)}}
                for phone, params in chunk
            ]
            if self._write_all({self._recipients: requests}):
                raise StoreUnavailable("DynamoDB BatchWriteItem left items unprocessed")
            written += len(chunk)
        return written

    def _get_all(
        self, pending: dict[str, Any], existing: set[str], suppressed: set[str]
    ) -> dict[str, Any]:
        """One BatchGetItem, then its unprocessed keys again, adding the phones found to
        ``existing`` and ``suppressed``; what is left at the end."""

        def get_pending() -> dict[str, Any]:
            nonlocal pending
            response: Any = call(
                "BatchGetItem", lambda: self._db.batch_get_item(RequestItems=pending)
            )
            for table, items in response.get("Responses", {}).items():
                for item in items:
                    pk, sk = item_key(item)
                    if table == self._recipients:
                        existing.add(sk.removeprefix(USER_PREFIX))
                    elif pk.startswith(SUPPRESSION_PREFIX):
                        suppressed.add(pk.removeprefix(SUPPRESSION_PREFIX))
            pending = dict(response.get("UnprocessedKeys") or {})
            return pending

        left: dict[str, Any] = self._retry(get_pending)
        return left

    def _write_all(self, pending: dict[str, Any]) -> dict[str, Any]:
        """One BatchWriteItem, then its unprocessed items again; what is left at the end."""

        def write_pending() -> dict[str, Any]:
            nonlocal pending
            response: Any = call(
                "BatchWriteItem", lambda: self._db.batch_write_item(RequestItems=pending)
            )
            pending = dict(response.get("UnprocessedItems") or {})
            return pending

        left: dict[str, Any] = self._retry(write_pending)
        return left
