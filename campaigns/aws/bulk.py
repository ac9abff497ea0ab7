"""Bulk DynamoDB access for the producer: batched existence checks and writes (BatchGetItem
100 keys, BatchWriteItem 25 items, unprocessed entries retried)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from campaigns.aws.dynamo import (
    MAX_BATCH_GET,
    MAX_BATCH_WRITE,
    SUPPRESSION_PREFIX,
    USER_PREFIX,
    params_to_value,
    recipient_key,
    serialize,
    suppression_key,
    unavailable,
)
from campaigns.domain.errors import StoreUnavailable
from campaigns.domain.models import RecipientStatus, TemplateParam

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

UNPROCESSED_RETRIES = 8


class BulkRecipients:
    def __init__(self, client: DynamoDBClient, campaigns_table: str, recipients_table: str):
        self._db = client
        self._campaigns = campaigns_table
        self._recipients = recipients_table

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
            chunk = requests[start : start + MAX_BATCH_GET]
            pending: dict[str, Any] = {}
            for table, key in chunk:
                pending.setdefault(table, {"Keys": [], "ConsistentRead": True})["Keys"].append(key)
            for attempt in range(UNPROCESSED_RETRIES):
                try:
                    response = self._db.batch_get_item(RequestItems=pending)
                except (ClientError, BotoCoreError) as exc:
                    raise unavailable(exc, "BatchGetItem") from None
                for table, items in response.get("Responses", {}).items():
                    for item in items:
                        pk = str(item["PK"]["S"])
                        sk = str(item["SK"]["S"])
                        if table == self._recipients:
                            existing.add(sk.removeprefix(USER_PREFIX))
                        elif pk.startswith(SUPPRESSION_PREFIX):
                            suppressed.add(pk.removeprefix(SUPPRESSION_PREFIX))
                pending = dict(response.get("UnprocessedKeys") or {})
                if not pending:
                    break
                time.sleep(min(0.05 * 2**attempt, 2.0))
            if pending:
                raise StoreUnavailable("DynamoDB BatchGetItem left keys unprocessed")
        return existing, suppressed

    def write_pending(
        self, campaign_id: str, rows: Sequence[tuple[str, tuple[TemplateParam, ...]]]
    ) -> int:
        """Write new PENDING recipients (callers checked they do not exist) in batches of 25."""
        written = 0
        for start in range(0, len(rows), MAX_BATCH_WRITE):
            chunk = rows[start : start + MAX_BATCH_WRITE]
            requests: list[Any] = []
            for phone, params in chunk:
                values: dict[str, Any] = {
                    "phone": phone,
                    "status": RecipientStatus.PENDING.value,
                    "attempts": 0,
                }
                if params:
                    values["params"] = params_to_value(params)
                item = recipient_key(campaign_id, phone) | serialize(values)
                requests.append({"PutRequest": {"Item": item}})
            pending: dict[str, Any] = {self._recipients: requests}
            for attempt in range(UNPROCESSED_RETRIES):
                try:
                    response = self._db.batch_write_item(RequestItems=pending)
                except (ClientError, BotoCoreError) as exc:
                    raise unavailable(exc, "BatchWriteItem") from None
                pending = dict(response.get("UnprocessedItems") or {})
                if not pending:
                    break
                time.sleep(min(0.05 * 2**attempt, 2.0))
            if pending:
                raise StoreUnavailable("DynamoDB BatchWriteItem left items unprocessed")
            written += len(chunk)
        return written
