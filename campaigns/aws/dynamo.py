"""DynamoDB item layout (kept exactly as existing deployments hold it) and low-level helpers."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from campaigns.domain.errors import StoreUnavailable
from campaigns.domain.models import (
    Campaign,
    CampaignStatus,
    Recipient,
    RecipientStatus,
    TemplateParam,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

METADATA = "METADATA"
CAMPAIGN_PREFIX = "CAMPAIGN#"
USER_PREFIX = "USER#"
COUNTER_PREFIX = "DAILY_COUNTER#"
SUPPRESSION_PREFIX = "SUPPRESSED#"

# DynamoDB quotas (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html)
MAX_BATCH_WRITE = 25  # items per BatchWriteItem
MAX_BATCH_GET = 100  # keys per BatchGetItem
MAX_TRANSACT_ITEMS = 100  # not used on the hot path: see docs/architecture.md

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

Item = dict[str, "AttributeValueTypeDef"]


def campaign_key(campaign_id: str) -> Item:
    return {"PK": {"S": CAMPAIGN_PREFIX + campaign_id}, "SK": {"S": METADATA}}


def recipient_key(campaign_id: str, phone: str) -> Item:
    return {"PK": {"S": CAMPAIGN_PREFIX + campaign_id}, "SK": {"S": USER_PREFIX + phone}}


def suppression_key(phone: str) -> Item:
    return {"PK": {"S": SUPPRESSION_PREFIX + phone}, "SK": {"S": METADATA}}


def counter_key(portfolio: str, day: str, shard: int = 0) -> Item:
    """The seed's ``DAILY_COUNTER#<date>`` for the default portfolio, else one per portfolio;
    cap shards past the first add ``#s<k>``."""
    pk = COUNTER_PREFIX + day if portfolio == "default" else f"{COUNTER_PREFIX}{portfolio}#{day}"
    if shard:
        pk += f"#s{shard}"
    return {"PK": {"S": pk}, "SK": {"S": METADATA}}


def serialize(values: Mapping[str, Any]) -> Item:
    return {name: _serializer.serialize(_to_dynamo(value)) for name, value in values.items()}


def deserialize(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _from_dynamo(_deserializer.deserialize(value)) for name, value in item.items()}


def _to_dynamo(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: _to_dynamo(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_dynamo(v) for v in value]
    return value


def _from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_dynamo(v) for v in value]
    return value


def is_conditional_failure(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def unavailable(exc: ClientError | BotoCoreError, what: str) -> StoreUnavailable:
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "Unknown")
        return StoreUnavailable(f"DynamoDB {what} failed: {code}")
    return StoreUnavailable(f"DynamoDB {what} failed: {type(exc).__name__}")


def campaign_from_item(item: Mapping[str, Any]) -> Campaign:
    data = deserialize(item)
    return Campaign(
        campaign_id=data["campaignId"],
        name=data.get("name", ""),
        template_name=data.get("templateName", ""),
        template_language=data.get("templateLanguage", "en_US"),
        status=CampaignStatus(data.get("status", "DRAFT")),
        total_recipients=int(data.get("totalRecipients", 0)),
        sent_count=int(data.get("sentCount", 0)),
        failed_count=int(data.get("failedCount", 0)),
        unknown_count=int(data.get("unknownCount", 0)),
        pause_reason=data.get("pauseReason"),
        parameter_format=data.get("parameterFormat", "POSITIONAL"),
        created_at=data.get("createdAt"),
        started_at=data.get("startedAt"),
        paused_at=data.get("pausedAt"),
        completed_at=data.get("completedAt"),
        cancelled_at=data.get("cancelledAt"),
    )


def params_from_value(value: Any) -> tuple[TemplateParam, ...]:
    """Read ``params`` liberally: a list of {name, value} maps (ours), a list of strings or a map
    (older writers)."""
    if not value:
        return ()
    if isinstance(value, dict):
        return tuple(TemplateParam(str(k), str(v)) for k, v in value.items())
    params: list[TemplateParam] = []
    for index, entry in enumerate(value):
        if isinstance(entry, dict):
            params.append(TemplateParam(str(entry.get("name", index + 1)), str(entry["value"])))
        else:
            params.append(TemplateParam(str(index + 1), str(entry)))
    return tuple(params)


def params_to_value(params: tuple[TemplateParam, ...]) -> list[dict[str, str]]:
    return [{"name": p.name, "value": p.value} for p in params]


def recipient_from_item(campaign_id: str, item: Mapping[str, Any]) -> Recipient:
    data = deserialize(item)
    phone = data.get("phone") or str(data["SK"]).removeprefix(USER_PREFIX)
    return Recipient(
        campaign_id=campaign_id,
        phone=phone,
        status=RecipientStatus(data.get("status", "PENDING")),
        attempts=int(data.get("attempts", 0)),
        halted_attempts=int(data.get("haltedAttempts", 0)),
        params=params_from_value(data.get("params")),
        lease_owner=data.get("leaseOwner"),
        lease_until=float(data["leaseUntil"]) if data.get("leaseUntil") is not None else None,
        message_id=data.get("messageId"),
        error_code=data.get("errorCode"),
        unknown_reason=data.get("unknownReason"),
    )
