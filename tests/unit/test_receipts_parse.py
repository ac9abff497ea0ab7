"""The webhook parser: Meta's payload shapes in, typed events out; nothing in JSON crashes it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from campaigns.domain.webhook_events import (
    AccountEvent,
    CapabilityEvent,
    ContactSeen,
    InboundMessage,
    PreferenceEvent,
    QualityEvent,
    StatusEvent,
    TemplateStatusEvent,
    UndecodableReceipt,
    callback_target,
)
from campaigns.domain.webhooks import parse

CAMPAIGN_ID = "cmp_2f1d3c4b-5a69-4788-9a0b-1c2d3e4f5a6b"
PHONE = "919876543210"
BSUID = "IN.1502576394655843"


def body(field: str, value: dict[str, Any], **entry: Any) -> str:
    return json.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [
                {"id": "102290129340398", **entry, "changes": [{"field": field, "value": value}]}
            ],
        }
    )


def messages(**value: Any) -> str:
    return body(
        "messages",
        {
            "messaging_product": "whatsapp",
            "metadata": {
                "display_phone_number": "15550783881",
                "phone_number_id": "106540352242922",
            },
            **value,
        },
    )


def status(**fields: Any) -> dict[str, Any]:
    return {
        "id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJDQjZCMzlEQUE4OTJBMTE4RTUA",
        "status": "delivered",
        "timestamp": "1750263773",
        "recipient_id": PHONE,
        "biz_opaque_callback_data": f"{CAMPAIGN_ID}:{PHONE}",
        "pricing": {
            "billable": True,
            "pricing_model": "PMP",
            "category": "marketing",
            "type": "regular",
        },
        "conversation": {"id": "x", "origin": {"type": "marketing"}},  # an unknown field: ignored
        **fields,
    }


def test_a_delivered_status_becomes_a_status_event() -> None:
    parsed = parse(messages(statuses=[status()]))

    assert parsed.skipped == ()
    assert parsed.events == (
        StatusEvent(
            message_id=status()["id"],
            status="delivered",
            at_s=1750263773.0,
            phone=PHONE,
            user_id=None,
            callback_data=f"{CAMPAIGN_ID}:{PHONE}",
            error_codes=(),
            pricing_category="marketing",
            billable=True,
        ),
    )


def test_a_failed_status_carries_its_error_codes() -> None:
    failed = status(status="failed", errors=[{"code": 131050, "title": "opted out"}])
    del failed["pricing"]

    (event,) = parse(messages(statuses=[failed])).events

    assert isinstance(event, StatusEvent)
    assert (event.status, event.error_codes, event.pricing_category) == ("failed", (131050,), None)


def test_a_status_with_only_a_bsuid_keeps_the_bsuid_and_no_phone() -> None:
    only_bsuid = status(recipient_user_id=BSUID)
    del only_bsuid["recipient_id"]

    (event,) = parse(messages(statuses=[only_bsuid])).events

    assert isinstance(event, StatusEvent)
    assert (event.phone, event.user_id) == (None, BSUID)


def test_an_unusable_phone_or_bsuid_on_a_status_is_dropped_not_the_status() -> None:
    (event,) = parse(
        messages(statuses=[status(recipient_id="group-1", recipient_user_id="??")])
    ).events

    assert isinstance(event, StatusEvent)
    assert (event.phone, event.user_id) == (None, None)


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"status": "played"}, "status"),
        ({"timestamp": "yesterday"}, "timestamp"),
        ({"timestamp": "nan"}, "timestamp"),
        ({"id": ""}, "id"),
        ({"id": 7}, "id"),
        ({"errors": [{"title": "no code"}]}, "errors"),
    ],
)
def test_a_malformed_status_is_skipped_with_a_reason_and_its_neighbours_kept(
    fields: dict[str, Any], reason: str
) -> None:
    parsed = parse(messages(statuses=[status(**fields), status(status="read")]))

    assert [type(e) for e in parsed.events] == [StatusEvent]
    (skipped,) = parsed.skipped
    assert skipped.where == "entry[0].changes[0].statuses[0]"
    assert skipped.kind == "malformed"
    assert reason in skipped.reason


def test_an_inbound_text_and_its_contact_become_a_message_and_a_link() -> None:
    parsed = parse(
        messages(
            contacts=[{"profile": {"name": "Asha"}, "wa_id": PHONE, "user_id": BSUID}],
            messages=[
                {
                    "from": PHONE,
                    "from_user_id": BSUID,
                    "id": "wamid.in1",
                    "timestamp": "1750263800",
                    "type": "text",
                    "text": {"body": " stop "},
                }
            ],
        )
    )

    assert parsed.events == (
        ContactSeen(phone=PHONE, user_id=BSUID),
        InboundMessage(
            message_id="wamid.in1",
            phone=PHONE,
            user_id=BSUID,
            type="text",
            text=" stop ",
            at_s=1750263800.0,
        ),
    )


def test_an_inbound_message_of_a_username_user_has_only_the_bsuid() -> None:
    parsed = parse(
        messages(
            contacts=[{"profile": {"name": "@asha"}, "user_id": BSUID}],
            messages=[{"from_user_id": BSUID, "id": "wamid.in2", "type": "image", "image": {}}],
        )
    )

    (event,) = parsed.events  # a contact without a phone links nothing
    assert event == InboundMessage("wamid.in2", None, BSUID, "image", None, None)


def test_user_preferences_stop_and_resume() -> None:
    parsed = parse(
        body(
            "user_preferences",
            {
                "user_preferences": [
                    {
                        "wa_id": PHONE,
                        "detail": "User requested to stop marketing messages",
                        "category": "marketing_messages",
                        "value": "stop",
                        "timestamp": 1731705721,
                    },
                    {"user_id": BSUID, "category": "marketing_messages", "value": "resume"},
                    {"category": "marketing_messages", "value": "stop"},
                    {"wa_id": PHONE, "category": "marketing_messages", "value": "maybe"},
                ]
            },
        )
    )

    assert parsed.events == (
        PreferenceEvent(PHONE, None, "marketing_messages", "stop", 1731705721.0),
        PreferenceEvent(None, BSUID, "marketing_messages", "resume", None),
    )
    assert [s.where for s in parsed.skipped] == [
        "entry[0].changes[0].user_preferences[2]",
        "entry[0].changes[0].user_preferences[3]",
    ]


def test_a_template_status_update() -> None:
    parsed = parse(
        body(
            "message_template_status_update",
            {
                "event": "PAUSED",
                "message_template_id": 1689556908129832,
                "message_template_name": "order_update",
                "message_template_language": "en_US",
                "reason": "NONE",
                "other_info": {"title": "FIRST_PAUSE", "description": "paused for 3 hours"},
            },
        )
    )

    assert parsed.events == (
        TemplateStatusEvent("PAUSED", "order_update", "en_US", "NONE", "1689556908129832"),
    )


def test_quality_account_and_capability_updates() -> None:
    quality = parse(
        body(
            "phone_number_quality_update",
            {
                "display_phone_number": "15550783881",
                "event": "DOWNGRADE",
                "current_limit": "TIER_1K",
            },
        )
    )
    account = parse(
        body(
            "account_update",
            {
                "event": "ACCOUNT_RESTRICTION",
                "restriction_info": [
                    {"restriction_type": "RESTRICTED_BIZ_INITIATED_MESSAGING", "expiration": 1}
                ],
            },
        )
    )
    capability = parse(
        body("business_capability_update", {"max_daily_conversations_per_business": "TIER_10K"})
    )
    older = parse(body("business_capability_update", {"max_daily_conversation_per_phone": -1}))

    assert quality.events == (QualityEvent("DOWNGRADE", "15550783881", "TIER_1K", None),)
    assert account.events == (
        AccountEvent(
            "ACCOUNT_RESTRICTION",
            "102290129340398",
            None,
            None,
            ("RESTRICTED_BIZ_INITIATED_MESSAGING",),
        ),
    )
    assert capability.events == (CapabilityEvent(10_000, None),)
    assert older.events == (CapabilityEvent(-1, None),)


def test_an_unhandled_field_is_skipped_as_unhandled() -> None:
    parsed = parse(body("history", {"history": []}))

    assert parsed.events == ()
    assert [s.kind for s in parsed.skipped] == ["unhandled field"]


def test_a_body_of_another_object_is_skipped_whole() -> None:
    parsed = parse(json.dumps({"object": "page", "entry": []}))

    assert parsed.events == ()
    assert [s.kind for s in parsed.skipped] == ["unhandled object"]


@pytest.mark.parametrize("raw", ["", "{", "not json", b"\xff\xfe"])
def test_a_body_that_is_not_json_is_undecodable(raw: str | bytes) -> None:
    with pytest.raises(UndecodableReceipt):
        parse(raw)


def test_a_split_part_parses_like_the_whole() -> None:
    whole = json.loads(messages(statuses=[status(), status(status="read")]))
    change = whole["entry"][0]["changes"][0]
    part = {
        "object": whole["object"],
        "entry": [{"id": whole["entry"][0]["id"], "changes": [change]}],
    }

    assert parse(json.dumps(part)).events == parse(json.dumps(whole)).events


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=30,
)
# Arbitrary JSON in the places the parser looks, so the shapes get exercised, not only rejected.
FIELDS = st.sampled_from(
    [
        "messages",
        "user_preferences",
        "message_template_status_update",
        "phone_number_quality_update",
        "account_update",
        "business_capability_update",
        "other",
    ]
)
KEYS = st.sampled_from(
    [
        "statuses",
        "messages",
        "contacts",
        "user_preferences",
        "id",
        "status",
        "timestamp",
        "recipient_id",
        "recipient_user_id",
        "errors",
        "pricing",
        "event",
        "from",
        "text",
        "wa_id",
        "user_id",
        "value",
        "category",
        "message_template_name",
        "max_daily_conversations_per_business",
    ]
)
shaped_values = st.dictionaries(KEYS, json_values | st.lists(st.dictionaries(KEYS, json_values)))


@settings(max_examples=300, deadline=None)
@given(anything=json_values)
def test_arbitrary_json_never_crashes_the_parser(anything: object) -> None:
    parsed = parse(json.dumps(anything))

    assert isinstance(parsed.events, tuple)


@settings(max_examples=300, deadline=None)
@given(field=FIELDS, value=shaped_values, entry_id=json_values)
def test_arbitrary_json_in_the_payload_shape_never_crashes_the_parser(
    field: str, value: dict[str, Any], entry_id: object
) -> None:
    raw = json.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [{"id": entry_id, "changes": [{"field": field, "value": value}, value]}],
        }
    )

    parsed = parse(raw)

    assert all(s.reason for s in parsed.skipped)


@pytest.mark.parametrize(
    ("data", "target"),
    [
        (f"{CAMPAIGN_ID}:{PHONE}", (CAMPAIGN_ID, PHONE)),
        (None, None),
        ("", None),
        (f"{CAMPAIGN_ID}:+{PHONE}", None),
        (f"{CAMPAIGN_ID}:{PHONE}:x", None),
        (f"cmp_nope:{PHONE}", None),
        (f"{CAMPAIGN_ID}:123", None),
        ("someone-else's data", None),
    ],
)
def test_callback_data_is_read_strictly(data: str | None, target: tuple[str, str] | None) -> None:
    assert callback_target(data) == target
