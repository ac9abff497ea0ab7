"""The SQS batch message codec shared by producer and consumer."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from campaigns.domain.message import UndecodableMessage, decode, encode, new_batch
from campaigns.domain.models import new_campaign_id

CAMPAIGN_ID = "cmp_2f1d3c4b-5a69-4788-9a0b-1c2d3e4f5a6b"
PHONES = [f"9198765432{i:02d}" for i in range(25)]


def body(**overrides: Any) -> str:
    values: dict[str, Any] = {
        "version": 1,
        "campaignId": CAMPAIGN_ID,
        "batchId": "batch-0001",
        "phones": ["919876543210", "14155550123"],
    }
    return json.dumps(values | overrides)


def test_a_batch_survives_the_round_trip() -> None:
    batch = new_batch(new_campaign_id(), PHONES)

    decoded = decode(encode(batch))

    assert decoded == batch
    assert decoded.phones == tuple(PHONES)


def test_the_wire_format_is_the_documented_json() -> None:
    batch = new_batch(CAMPAIGN_ID, ["919876543210"])

    wire = json.loads(encode(batch))

    assert wire == {
        "version": 1,
        "campaignId": CAMPAIGN_ID,
        "batchId": batch.batch_id,
        "phones": ["919876543210"],
    }


def test_a_documented_body_decodes() -> None:
    batch = decode(body())

    assert (batch.version, batch.campaign_id, batch.batch_id) == (1, CAMPAIGN_ID, "batch-0001")
    assert batch.phones == ("919876543210", "14155550123")


def test_each_batch_gets_its_own_id() -> None:
    first, second = new_batch(CAMPAIGN_ID, PHONES[:1]), new_batch(CAMPAIGN_ID, PHONES[:1])

    assert first.batch_id != second.batch_id


def test_a_batch_message_is_immutable() -> None:
    batch = decode(body())

    with pytest.raises(ValidationError):
        batch.batch_id = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("raw", "where"),
    [
        (body(version=2), "version"),
        (body(version="1"), "version"),
        (body(phones=[*PHONES, "919876543299"]), "phones"),
        (body(phones=[]), "phones"),
        (body(phones=["+919876543210"]), "phones"),
        (body(phones=["91987654321O"]), "phones"),
        (body(phones=["123456"]), "phones"),
        (body(phones=["1234567890123456"]), "phones"),
        (body(phones=["٩١٩٨٧٦٥٤٣٢١٠"]), "phones"),  # non-ASCII digits
        (body(phones=["919876543210", "919876543210"]), "phones"),
        (body(priority="high"), "priority"),
        (body(campaignId="cmp_123"), "campaignId"),
        (body(batchId=""), "batchId"),
        (json.dumps({"version": 1, "batchId": "b", "phones": ["919876543210"]}), "campaignId"),
        ("not json at all", "body"),
        ("", "body"),
        ("[1, 2, 3]", "body"),
    ],
)
def test_a_body_that_is_not_a_valid_batch_is_undecodable_with_one_line(
    raw: str, where: str
) -> None:
    with pytest.raises(UndecodableMessage) as raised:
        decode(raw)

    text = str(raised.value)
    assert "\n" not in text
    assert text.startswith(where)


def test_a_batch_of_more_than_25_phones_cannot_even_be_built() -> None:
    with pytest.raises(ValidationError):
        new_batch(CAMPAIGN_ID, [*PHONES, "919876543299"])
