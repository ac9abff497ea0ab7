"""Create the tables, the batch queue, the receipts queue and their dead-letter queues if
missing (idempotent)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

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


def ensure_table(db: DynamoDBClient, name: str) -> bool:
    try:
        db.describe_table(TableName=name)
        return False
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise
    try:
        db.create_table(
            TableName=name,
            KeySchema=[
                {"AttributeName": "PK", "KeyType": "HASH"},
                {"AttributeName": "SK", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "PK", "AttributeType": "S"},
                {"AttributeName": "SK", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceInUseException":
            return False  # created by a racing init
        raise
    db.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    return True


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
            name
            for name in (settings.campaigns_table, settings.recipients_table)
            if ensure_table(db, name)
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
