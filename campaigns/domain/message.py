"""The SQS batch message: one versioned JSON codec shared by producer and consumer."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from campaigns.domain.errors import CampaignError
from campaigns.domain.models import CAMPAIGN_ID_RE

MESSAGE_VERSION = 1
# The batch message carries at most 25 recipients (the seed's batch size, DynamoDB's BatchWrite).
MAX_BATCH_SIZE = 25
PHONE_DIGITS_MAX = 15  # E.164 allows at most 15 digits


class UndecodableMessage(CampaignError):
    """The body is not a batch message this code understands: never act on it."""


class BatchMessage(BaseModel):
    """``{"version": 1, "campaignId": "cmp_…", "batchId": "…", "phones": ["9198…", …]}``."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid")

    version: Literal[1] = 1
    campaign_id: str = Field(alias="campaignId", pattern=CAMPAIGN_ID_RE.pattern)
    batch_id: str = Field(alias="batchId", min_length=1, max_length=128)
    phones: tuple[str, ...] = Field(min_length=1, max_length=MAX_BATCH_SIZE)

    @field_validator("phones")
    @classmethod
    def _e164_digits(cls, phones: tuple[str, ...]) -> tuple[str, ...]:
        for phone in phones:
            if not (phone.isascii() and phone.isdigit() and 7 <= len(phone) <= PHONE_DIGITS_MAX):
                raise ValueError("phones must be E.164 digits without '+'")
        if len(set(phones)) != len(phones):
            raise ValueError("phones must be distinct")
        return phones


def new_batch(campaign_id: str, phones: list[str] | tuple[str, ...]) -> BatchMessage:
    return BatchMessage.model_validate(
        {"campaignId": campaign_id, "batchId": uuid.uuid4().hex, "phones": tuple(phones)}
    )


def encode(message: BatchMessage) -> str:
    return message.model_dump_json(by_alias=True)


def decode(body: str) -> BatchMessage:
    """Parse and validate a body; anything else raises ``UndecodableMessage`` with one line."""
    try:
        return BatchMessage.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ())) or "body"
        raise UndecodableMessage(f"{where}: {first.get('msg', 'invalid')}") from None
