"""The item layout: keys and the codecs of campaign and recipient items.

Kept exactly as existing deployments hold it (docs/architecture.md, "Data model"). Each codec
reads and writes through one attribute map; the wire values themselves are the edge's
(``campaigns.aws.dynamo``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final

from campaigns.aws.dynamo import Item, deserialize, serialize, text
from campaigns.domain.models import (
    Campaign,
    CampaignStatus,
    DeliveryStatus,
    Recipient,
    RecipientStatus,
    TemplateParam,
)
from campaigns.domain.tallies import is_tally

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

METADATA = "METADATA"
CAMPAIGN_PREFIX = "CAMPAIGN#"
USER_PREFIX = "USER#"
SHARD_PREFIX = "COUNTER#"  # campaign counter shards: PK = CAMPAIGN#<id>, SK = COUNTER#<k>
COUNTER_PREFIX = "DAILY_COUNTER#"
SUPPRESSION_PREFIX = "SUPPRESSED#"
# The BSUID -> phone link in the campaigns table: PK = BSUID#<user id>, SK = LINK.
USER_LINK_PREFIX = "BSUID#"
USER_LINK = "LINK"
# The sparse GSI of the recipients table on ``messageId`` (only sent recipients hold one),
# KEYS_ONLY: the table's PK/SK are all a lookup needs. Eventually consistent, like every GSI.
MESSAGE_ID_INDEX = "messageId-index"
MESSAGE_ID = "messageId"


# -- keys -------------------------------------------------------------------------------------


def _key(pk: str, sk: str = METADATA) -> Item:
    return {"PK": text(pk), "SK": text(sk)}


def campaign_key(campaign_id: str) -> Item:
    return _key(CAMPAIGN_PREFIX + campaign_id)


def campaign_partition(campaign_id: str) -> AttributeValueTypeDef:
    """The value of ``PK`` shared by a campaign's metadata, counter shards and recipients."""
    return text(CAMPAIGN_PREFIX + campaign_id)


def shard_key(campaign_id: str, shard: int) -> Item:
    return _key(CAMPAIGN_PREFIX + campaign_id, f"{SHARD_PREFIX}{shard}")


def delivery_shard_key(campaign_id: str, shard: int) -> Item:
    """The delivery counters' own shards (``COUNTER#D<k>``, summed on read like the others):
    never METADATA nor a send-counter shard, so a delivery transaction never holds an item the
    batch threads ADD to (DynamoDB would refuse their writes with TransactionConflict)."""
    return _key(CAMPAIGN_PREFIX + campaign_id, f"{SHARD_PREFIX}D{shard}")


def recipient_key(campaign_id: str, phone: str) -> Item:
    return _key(CAMPAIGN_PREFIX + campaign_id, USER_PREFIX + phone)


def suppression_key(phone: str) -> Item:
    return _key(SUPPRESSION_PREFIX + phone)


def user_link_key(user_id: str) -> Item:
    return _key(USER_LINK_PREFIX + user_id, USER_LINK)


def recipient_of_key(item: Mapping[str, Any]) -> tuple[str, str] | None:
    """(campaign_id, phone) of a recipient item's keys (None if they are not a recipient's)."""
    pk, sk = item_key(item)
    if not (pk.startswith(CAMPAIGN_PREFIX) and sk.startswith(USER_PREFIX)):
        return None
    return pk.removeprefix(CAMPAIGN_PREFIX), sk.removeprefix(USER_PREFIX)


def counter_bucket(portfolio: str, day: str, shard: int = 0) -> str:
    """The seed's ``DAILY_COUNTER#<date>`` for the default portfolio, else one per portfolio;
    cap shards past the first add ``#s<k>``."""
    pk = COUNTER_PREFIX + day if portfolio == "default" else f"{COUNTER_PREFIX}{portfolio}#{day}"
    return f"{pk}#s{shard}" if shard else pk


def counter_key(portfolio: str, day: str, shard: int = 0) -> Item:
    return bucket_key(counter_bucket(portfolio, day, shard))


def bucket_key(bucket: str) -> Item:
    """The key of a cap counter item from its ``PK`` (a ``Reservation.bucket``)."""
    return _key(bucket)


def item_key(item: Mapping[str, Any]) -> tuple[str, str]:
    """``(PK, SK)`` of a raw item."""
    return str(item["PK"]["S"]), str(item["SK"]["S"])


# -- codecs: one attribute map each, read and written through it ------------------------------


@dataclass(frozen=True)
class _Attribute:
    name: str  # the DynamoDB attribute
    default: Any = None  # what a missing attribute reads as
    created: bool = True  # a new item holds it (later updates write the others)


# Campaign field -> its attribute. The counters start at 0 on a new item and are read as ints;
# the counters' ADDs and the transitions' SETs write the same names.
CAMPAIGN_ATTRIBUTES: Final[Mapping[str, _Attribute]] = {
    "campaign_id": _Attribute("campaignId"),
    "name": _Attribute("name", ""),
    "template_name": _Attribute("templateName", ""),
    "template_language": _Attribute("templateLanguage", "en_US"),
    "parameter_format": _Attribute("parameterFormat", "POSITIONAL"),
    "status": _Attribute("status", CampaignStatus.DRAFT.value),
    "total_recipients": _Attribute("totalRecipients", 0),
    "sent_count": _Attribute("sentCount", 0),
    "failed_count": _Attribute("failedCount", 0),
    "unknown_count": _Attribute("unknownCount", 0),
    # The status webhooks' counters: created by their first ADD (older items lack them: 0).
    "delivered_count": _Attribute("deliveredCount", 0, created=False),
    "read_count": _Attribute("readCount", 0, created=False),
    "delivery_failed_count": _Attribute("deliveryFailedCount", 0, created=False),
    "held_count": _Attribute("heldCount", 0, created=False),
    "created_at": _Attribute("createdAt"),
    "pause_reason": _Attribute("pauseReason", created=False),
    "started_at": _Attribute("startedAt", created=False),
    "paused_at": _Attribute("pausedAt", created=False),
    "completed_at": _Attribute("completedAt", created=False),
    "cancelled_at": _Attribute("cancelledAt", created=False),
    # Older items lack it: 0 (campaigns.aws.campaign_records, COMPLETE's condition).
    "pending_generation": _Attribute("pendingGeneration", 0, created=False),
}
CAMPAIGN_COUNTERS: Final = (
    "total_recipients",
    "sent_count",
    "failed_count",
    "unknown_count",
    "delivered_count",
    "read_count",
    "delivery_failed_count",
    "held_count",
)
# Written on every new campaign item for the seed's readers; never read back.
_CAMPAIGN_CONSTANTS: Final = {"channel": "WHATSAPP", "audienceType": "CSV"}


def campaign_attribute(field_name: str) -> str:
    return CAMPAIGN_ATTRIBUTES[field_name].name


def new_campaign_item(campaign: Campaign) -> Item:
    """The metadata item ``create_campaign`` puts: its counters at 0, no transition stamps."""
    values = {
        attribute.name: 0 if field_name in CAMPAIGN_COUNTERS else _encoded(campaign, field_name)
        for field_name, attribute in CAMPAIGN_ATTRIBUTES.items()
        if attribute.created
    }
    return campaign_key(campaign.campaign_id) | serialize(values | _CAMPAIGN_CONSTANTS)


def campaign_from_item(item: Mapping[str, Any]) -> Campaign:
    data = deserialize(item)
    values = {
        field_name: data.get(attribute.name, attribute.default)
        for field_name, attribute in CAMPAIGN_ATTRIBUTES.items()
    }
    values["campaign_id"] = data[CAMPAIGN_ATTRIBUTES["campaign_id"].name]  # required
    values["status"] = CampaignStatus(values["status"])
    for counter in CAMPAIGN_COUNTERS:
        values[counter] = int(values[counter])
    values["tallies"] = {name: count for name, count in tallies_of(data).items() if count}
    return Campaign(**values)


def tallies_of(data: Mapping[str, Any]) -> dict[str, int]:
    """The tally attributes (``deliveryFailed:<code>``, ``billed:<category>:<cc>``) of one
    deserialised campaign or counter-shard item."""
    return {name: int(value) for name, value in data.items() if is_tally(name)}


def counter_attribute(name: str) -> str:
    """The attribute a delivery count is ADDed to: a ``Campaign`` counter field's attribute, or
    the tally key itself (``campaigns.domain.tallies`` checked its parts)."""
    return name if is_tally(name) else campaign_attribute(name)


# Recipient field -> its attribute. A new item holds phone, status, attempts and params; the
# lease state machine's updates write the others under the same names.
RECIPIENT_ATTRIBUTES: Final[Mapping[str, _Attribute]] = {
    "phone": _Attribute("phone"),
    "status": _Attribute("status", RecipientStatus.PENDING.value),
    "attempts": _Attribute("attempts", 0),
    "halted_attempts": _Attribute("haltedAttempts", 0, created=False),
    "params": _Attribute("params", ()),
    "lease_owner": _Attribute("leaseOwner", created=False),
    "lease_until": _Attribute("leaseUntil", created=False),
    "message_id": _Attribute("messageId", created=False),
    "error_code": _Attribute("errorCode", created=False),
    "unknown_reason": _Attribute("unknownReason", created=False),
    "finished_at": _Attribute("finishedAt", created=False),  # epoch s; older items lack it
    # Written by the status webhooks (campaigns.aws.deliveries); older items lack them.
    "delivery_status": _Attribute("deliveryStatus", created=False),
    "delivered_at": _Attribute("deliveredAt", created=False),  # epoch s
    "read_at": _Attribute("readAt", created=False),  # epoch s
    "delivery_error_code": _Attribute("deliveryErrorCode", created=False),
    "user_id": _Attribute("userId", created=False),  # the BSUID
    "pricing_category": _Attribute("pricingCategory", created=False),
}
_RECIPIENT_STAMPS: Final = ("lease_until", "finished_at", "delivered_at", "read_at")


def recipient_attribute(field_name: str) -> str:
    return RECIPIENT_ATTRIBUTES[field_name].name


def new_recipient_item(campaign_id: str, phone: str, params: tuple[TemplateParam, ...]) -> Item:
    """A PENDING recipient as the producer writes it (``params`` only when there are some)."""
    recipient = Recipient(campaign_id, phone, RecipientStatus.PENDING, params=params)
    values = {
        attribute.name: _encoded(recipient, field_name)
        for field_name, attribute in RECIPIENT_ATTRIBUTES.items()
        if attribute.created and (field_name != "params" or params)
    }
    return recipient_key(campaign_id, phone) | serialize(values)


def recipient_from_item(campaign_id: str, item: Mapping[str, Any]) -> Recipient:
    data = deserialize(item)
    values = {
        field_name: data.get(attribute.name, attribute.default)
        for field_name, attribute in RECIPIENT_ATTRIBUTES.items()
    }
    # Older items may lack ``phone``: the sort key holds it too.
    values["phone"] = values["phone"] or str(data["SK"]).removeprefix(USER_PREFIX)
    values["status"] = RecipientStatus(values["status"])
    values["attempts"] = int(values["attempts"])
    values["halted_attempts"] = int(values["halted_attempts"])
    values["params"] = params_from_value(values["params"])
    if values["delivery_status"] is not None:
        values["delivery_status"] = DeliveryStatus(values["delivery_status"])
    for stamp in _RECIPIENT_STAMPS:
        if values[stamp] is not None:
            values[stamp] = float(values[stamp])
    return Recipient(campaign_id=campaign_id, **values)


def _encoded(record: Campaign | Recipient, field_name: str) -> Any:
    return encoded_value(field_name, getattr(record, field_name))


def encoded_value(field_name: str, value: Any) -> Any:
    """A field's value as its attribute holds it (before ``serialize``)."""
    if isinstance(value, StrEnum):
        return value.value
    if field_name == "params":
        return params_to_value(value)
    return value


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
