"""Meta's webhook payloads on the wire, built as Meta builds them: the envelope
(``object: whatsapp_business_account``, ``entry[].changes[]``), message statuses, inbound text
messages, ``user_preferences``, ``message_template_status_update``,
``phone_number_quality_update`` and ``account_update``; the business-scoped user id (BSUID)
of a number; and the ``X-Hub-Signature-256`` of a body.

Pure functions over dicts: ``sandbox.cloudapi.statusplan`` decides which statuses to send,
``sandbox.cloudapi.dispatcher`` posts them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from sandbox.cloudapi.replies import ERROR_TEXTS

SIGNATURE_HEADER = "X-Hub-Signature-256"
ERROR_CODES_HREF = "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"
BSUID_DIGITS = 16  # Meta: up to 128 alphanumerics after the country code; real ones are ~16-20
# Calling code → ISO country, for the BSUID's prefix (the longest matching code wins).
COUNTRY_OF_CALLING_CODE = {
    "1": "US", "20": "EG", "27": "ZA", "33": "FR", "34": "ES", "39": "IT", "44": "GB",
    "49": "DE", "52": "MX", "55": "BR", "62": "ID", "63": "PH", "90": "TR", "91": "IN",
    "92": "PK", "234": "NG", "254": "KE", "880": "BD", "966": "SA", "971": "AE",
}  # fmt: skip
UNKNOWN_COUNTRY = "ZZ"  # ISO 3166 user-assigned: a calling code outside the table above
# The titles Meta puts on delivery-side failures (statuses[].errors[].title).
FAILURE_TITLES = {
    131026: "Message undeliverable",
    131049: "This message was not delivered to maintain healthy ecosystem engagement.",
    131050: (
        "Unable to deliver the message. This recipient has chosen to stop receiving marketing"
        " messages on WhatsApp from your business"
    ),
    130472: "User's number is part of an experiment",
    132015: "Template is paused",
}


@dataclass(frozen=True)
class Business:
    """The business side of every payload: the WABA (``entry[].id``) and the phone number."""

    waba_id: str
    phone_number_id: str
    display_phone_number: str

    def metadata(self) -> dict[str, str]:
        return {
            "display_phone_number": self.display_phone_number,
            "phone_number_id": self.phone_number_id,
        }


def country_of(digits: str) -> str:
    for length in (3, 2, 1):
        country = COUNTRY_OF_CALLING_CODE.get(digits[:length])
        if country is not None:
            return country
    return UNKNOWN_COUNTRY


def bsuid_for(phone: str) -> str:
    """The number's business-scoped user id, like ``IN.1502576394655843``: stable per number."""
    digits = phone.removeprefix("+")
    hashed = int.from_bytes(hashlib.sha256(f"bsuid:{digits}".encode()).digest()[:8], "big")
    return f"{country_of(digits)}.{hashed % 10**BSUID_DIGITS:0{BSUID_DIGITS}d}"


def sign(body: bytes, app_secret: str) -> str:
    """The ``X-Hub-Signature-256`` value: ``sha256=`` + hex HMAC-SHA256 of the raw body."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def encode(payload: dict[str, Any]) -> bytes:
    """A payload as Meta sends it: compact JSON, UTF-8."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def envelope(waba_id: str, field: str, value: dict[str, Any]) -> dict[str, Any]:
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": waba_id, "changes": [{"value": value, "field": field}]}],
    }


# -- message statuses ------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipient:
    """Who a status is about: the number (withheld for "username" users) and the BSUID."""

    phone: str | None
    user_id: str


def status_item(
    *,
    wamid: str,
    status: str,
    timestamp_s: int,
    recipient: Recipient,
    callback_data: str | None,
    category: str,
    error_code: int | None = None,
) -> dict[str, Any]:
    """One ``statuses[]`` item: pricing on sent/delivered/read, errors on failed."""
    item: dict[str, Any] = {"id": wamid, "status": status, "timestamp": str(timestamp_s)}
    if recipient.phone is not None:
        item["recipient_id"] = recipient.phone
    item["recipient_user_id"] = recipient.user_id
    if callback_data is not None:
        item["biz_opaque_callback_data"] = callback_data
    if status == "failed":
        code = error_code if error_code is not None else 131026
        title = FAILURE_TITLES.get(code, ERROR_TEXTS.get(code, "Message failed to send"))
        item["errors"] = [
            {
                "code": code,
                "title": title,
                "message": title,
                "error_data": {"details": f"{title} (sandbox)"},
                "href": ERROR_CODES_HREF,
            }
        ]
        return item
    if status == "sent":
        item["conversation"] = {
            "id": hashlib.sha256(f"conversation:{wamid}".encode()).hexdigest()[:32],
            "expiration_timestamp": str(timestamp_s + 24 * 3600),
            "origin": {"type": category},
        }
    item["pricing"] = {
        "billable": True,
        "pricing_model": "PMP",
        "category": category,
        "type": "regular",
    }
    return item


def statuses_payload(business: Business, statuses: list[dict[str, Any]]) -> dict[str, Any]:
    """Several statuses of one phone number in one POST, as Meta batches them."""
    value = {
        "messaging_product": "whatsapp",
        "metadata": business.metadata(),
        "statuses": statuses,
    }
    return envelope(business.waba_id, "messages", value)


# -- on-demand events ------------------------------------------------------------------------


def _contact(recipient: Recipient, name: str) -> dict[str, Any]:
    contact: dict[str, Any] = {"profile": {"name": name}}
    if recipient.phone is not None:
        contact["wa_id"] = recipient.phone
    contact["user_id"] = recipient.user_id
    return contact


def user_preferences_payload(
    business: Business, recipient: Recipient, value: str, timestamp_s: int
) -> dict[str, Any]:
    """A user stops or resumes marketing messages (``value`` ``stop`` | ``resume``)."""
    detail = (
        "User requested to stop marketing messages"
        if value == "stop"
        else "User requested to resume marketing messages"
    )
    preference: dict[str, Any] = {}
    if recipient.phone is not None:
        preference["wa_id"] = recipient.phone
    preference |= {
        "user_id": recipient.user_id,
        "detail": detail,
        "category": "marketing_messages",
        "value": value,
        "timestamp": timestamp_s,
    }
    body = {
        "messaging_product": "whatsapp",
        "metadata": business.metadata(),
        "contacts": [_contact(recipient, "Sandbox User")],
        "user_preferences": [preference],
    }
    return envelope(business.waba_id, "user_preferences", body)


def inbound_text_payload(
    business: Business, recipient: Recipient, text: str, wamid: str, timestamp_s: int
) -> dict[str, Any]:
    """A text message from a user (``STOP``, say); a username user comes with only a BSUID."""
    message: dict[str, Any] = {}
    if recipient.phone is not None:
        message["from"] = recipient.phone
    message |= {
        "from_user_id": recipient.user_id,
        "id": wamid,
        "timestamp": str(timestamp_s),
        "text": {"body": text},
        "type": "text",
    }
    body = {
        "messaging_product": "whatsapp",
        "metadata": business.metadata(),
        "contacts": [_contact(recipient, "Sandbox User")],
        "messages": [message],
    }
    return envelope(business.waba_id, "messages", body)


def template_status_payload(
    business: Business,
    *,
    name: str,
    language: str,
    event: str,
    template_id: int,
    reason: str | None,
) -> dict[str, Any]:
    """``message_template_status_update``: a template APPROVED, PAUSED, DISABLED, REJECTED…"""
    value: dict[str, Any] = {
        "event": event,
        "message_template_id": template_id,
        "message_template_name": name,
        "message_template_language": language,
        "reason": reason if reason is not None else "NONE",
    }
    if event == "PAUSED":
        value["other_info"] = {
            "title": "FIRST_PAUSE",
            "description": "Your template has been paused for 3 hours due to low quality.",
        }
    return envelope(business.waba_id, "message_template_status_update", value)


def quality_payload(business: Business, *, event: str, current_limit: str) -> dict[str, Any]:
    """``phone_number_quality_update``: DOWNGRADE, FLAGGED, UPGRADE, UNFLAGGED, ONBOARDING."""
    value = {
        "display_phone_number": business.display_phone_number,
        "event": event,
        "current_limit": current_limit,
    }
    return envelope(business.waba_id, "phone_number_quality_update", value)


def account_payload(business: Business, *, event: str, detail: str | None) -> dict[str, Any]:
    """``account_update``: ACCOUNT_RESTRICTION, ACCOUNT_VIOLATION, DISABLED_UPDATE…"""
    value: dict[str, Any] = {"phone_number": business.display_phone_number, "event": event}
    if event == "ACCOUNT_RESTRICTION":
        value["restriction_info"] = [
            {"restriction_type": detail or "RESTRICTED_BIZ_INITIATED_MESSAGING"}
        ]
    elif event == "ACCOUNT_VIOLATION":
        value["violation_info"] = {"violation_type": detail or "SCAM"}
    elif event == "DISABLED_UPDATE":
        value["ban_info"] = {"waba_ban_state": detail or "DISABLE", "waba_ban_date": "sandbox"}
    return envelope(business.waba_id, "account_update", value)
