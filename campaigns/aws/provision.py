"""Create the tables (and the recipients table's GSI), the batch queue, the receipts queue and
their dead-letter queues if missing (idempotent)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from campaigns.aws.items import MESSAGE_ID
from campaigns.aws.items import MESSAGE_ID_INDEX as MESSAGE_ID_INDEX_NAME
from campaigns.domain.errors import StoreUnavailable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sqs import SQSClient

from campaigns.settings import Settings

MAX_RECEIVE_COUNT = 5  # a message received this often without deletion goes to the DLQ
DLQ_RETENTION_S = 14 * 24 * 3600  # SQS's maximum retention: time to look at poison
# A receipts message is one webhook body: applying it is a few DynamoDB writes.
RECEIPTS_VISIBILITY_TIMEOUT_S = 60
# Meta retries an unacknowledged webhook for 7 days; a queued one waits at least as long.
RECEIPTS_RETENTION_S = 7 * 24 * 3600


@dataclass(frozen=True)
class Provisioned:
    campaigns_table: str
    recipients_table: str
    queue_url: str
    dlq_url: str
    created: tuple[str, ...]
    receipts_queue_url: str
    receipts_dlq_url: str


# The recipients table's sparse GSI on messageId (campaigns.aws.deliveries.find_by_message_id).
MESSAGE_ID_INDEX: Any = {
    "IndexName": MESSAGE_ID_INDEX_NAME,
    "KeySchema": [{"AttributeName": MESSAGE_ID, "KeyType": "HASH"}],
    "Projection": {"ProjectionType": "KEYS_ONLY"},
}
_KEY_ATTRIBUTES: Any = [
    {"AttributeName": "PK", "AttributeType": "S"},
    {"AttributeName": "SK", "AttributeType": "S"},
]


def ensure_table(db: DynamoDBClient, name: str, indexes: Sequence[Any] = ()) -> list[str]:
    """Create the table with its GSIs if it is missing; add the GSIs an existing table lacks
    (UpdateTable: DynamoDB backfills them in the background, the index is queryable once
    ACTIVE). Returns what was created: the table's name, or ``<table>/<index>`` per index."""
    try:
        existing = db.describe_table(TableName=name)["Table"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise
    else:
        return _ensure_indexes(db, name, existing, indexes)
    request: Any = {
        "TableName": name,
        "KeySchema": [
            {"AttributeName": "PK", "KeyType": "HASH"},
            {"AttributeName": "SK", "KeyType": "RANGE"},
        ],
        "AttributeDefinitions": _KEY_ATTRIBUTES + _index_attributes(indexes),
        "BillingMode": "PAY_PER_REQUEST",
    }
    if indexes:
        request["GlobalSecondaryIndexes"] = list(indexes)
    try:
        db.create_table(**request)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceInUseException":
            return []  # created by a racing init
        raise
    db.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    return [name]


def _index_attributes(indexes: Sequence[Any]) -> list[Any]:
    names = sorted({k["AttributeName"] for index in indexes for k in index["KeySchema"]})
    return [{"AttributeName": n, "AttributeType": "S"} for n in names]


def _ensure_indexes(db: DynamoDBClient, name: str, table: Any, indexes: Sequence[Any]) -> list[str]:
    present = {index["IndexName"] for index in table.get("GlobalSecondaryIndexes", [])}
    added: list[str] = []
    for index in indexes:
        if index["IndexName"] in present:
            continue
        try:
            db.update_table(
                TableName=name,
                AttributeDefinitions=_index_attributes([index]),
                GlobalSecondaryIndexUpdates=[{"Create": index}],
            )
        except ClientError as exc:
            # A racing init is adding it (or the table is still being updated).
            if exc.response.get("Error", {}).get("Code") in ("ResourceInUseException",):
                continue
            raise
        added.append(f"{name}/{index['IndexName']}")
    return added


def _queue_url(sqs: SQSClient, name: str) -> str | None:
    try:
        return sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except ClientError as exc:
        if "NonExistentQueue" in exc.response.get("Error", {}).get("Code", ""):
            return None
        raise


def _ensure_queue_with_dlq(
    sqs: SQSClient, name: str, dlq_name: str, attributes: dict[str, str], created: list[str]
) -> tuple[str, str]:
    """The queue ``name`` redriving to ``dlq_name`` after ``MAX_RECEIVE_COUNT`` receives; an
    existing queue gets the redrive policy again (nothing else of it is changed)."""
    dlq_url = _queue_url(sqs, dlq_name)
    if dlq_url is None:
        dlq_url = sqs.create_queue(
            QueueName=dlq_name,
            Attributes={"MessageRetentionPeriod": str(DLQ_RETENTION_S)},
        )["QueueUrl"]
        created.append(dlq_name)
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT})
    queue_url = _queue_url(sqs, name)
    if queue_url is None:
        full: Any = {**attributes, "RedrivePolicy": redrive}
        queue_url = sqs.create_queue(QueueName=name, Attributes=full)["QueueUrl"]
        created.append(name)
    else:
        sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"RedrivePolicy": redrive})
    return queue_url, dlq_url


def ensure_queues(sqs: SQSClient, settings: Settings) -> tuple[str, str, list[str]]:
    created: list[str] = []
    queue_url, dlq_url = _ensure_queue_with_dlq(
        sqs,
        settings.campaign_queue_name,
        settings.dlq_name,
        {
            "VisibilityTimeout": str(settings.visibility_timeout_s),
            "ReceiveMessageWaitTimeSeconds": "20",
        },
        created,
    )
    return queue_url, dlq_url, created


def ensure_receipts_queues(sqs: SQSClient, settings: Settings) -> tuple[str, str, list[str]]:
    """The webhook receiver's queue: bodies Meta posted, waiting for the consumer's receipts
    loop. Kept as long as Meta would retry (its own retention is its redelivery window)."""
    created: list[str] = []
    queue_url, dlq_url = _ensure_queue_with_dlq(
        sqs,
        settings.campaign_receipts_queue_name,
        settings.receipts_dlq_name,
        {
            "VisibilityTimeout": str(RECEIPTS_VISIBILITY_TIMEOUT_S),
            "ReceiveMessageWaitTimeSeconds": "20",
            "MessageRetentionPeriod": str(RECEIPTS_RETENTION_S),
        },
        created,
    )
    return queue_url, dlq_url, created


def provision(db: DynamoDBClient, sqs: SQSClient, settings: Settings) -> Provisioned:
    try:
        created = [
            *ensure_table(db, settings.campaigns_table),
            *ensure_table(db, settings.recipients_table, [MESSAGE_ID_INDEX]),
        ]
        queue_url, dlq_url, created_queues = ensure_queues(sqs, settings)
        receipts_url, receipts_dlq_url, created_receipts = ensure_receipts_queues(sqs, settings)
    except (ClientError, BotoCoreError) as exc:
        raise StoreUnavailable(f"provisioning failed: {exc}") from None
    return Provisioned(
        campaigns_table=settings.campaigns_table,
        recipients_table=settings.recipients_table,
        queue_url=queue_url,
        dlq_url=dlq_url,
        created=tuple(created + created_queues + created_receipts),
        receipts_queue_url=receipts_url,
        receipts_dlq_url=receipts_dlq_url,
    )
