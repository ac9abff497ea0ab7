"""Meta's WhatsApp webhook payloads: pydantic models at the boundary, typed events inside.

One body is ``{"object": "whatsapp_business_account", "entry": [{"id": <WABA id>, "changes":
[{"field": …, "value": {…}}]}]}``. ``parse`` turns it into frozen event dataclasses, one per
item (a status, an inbound message, a contact, a preference, an account event). Unknown fields
of an item are ignored, an item that does not have the shape it must have is skipped (counted,
with a short reason), and nothing in a JSON body can make it raise; a body that is not JSON
raises ``UndecodableReceipt`` (the consumer leaves it for the DLQ). The events themselves are
in ``campaigns.domain.webhook_events``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from campaigns.domain.webhook_events import (
    PHONE_DIGITS_MAX,
    PHONE_DIGITS_MIN,
    AccountEvent,
    CapabilityEvent,
    ContactSeen,
    Event,
    InboundMessage,
    ParsedReceipt,
    PreferenceEvent,
    QualityEvent,
    Skipped,
    StatusEvent,
    TemplateStatusEvent,
    UndecodableReceipt,
)

WEBHOOK_OBJECT = "whatsapp_business_account"
# A BSUID: two-letter ISO country code, a period, up to 128 alphanumerics (WHATSAPP.md); a
# parent BSUID has ``ENT.`` in between. Anything else is not used as a link key.
_BSUID_RE = re.compile(r"^[A-Z]{2}\.(ENT\.)?[A-Za-z0-9]{1,128}$")
# Meta's messaging-limit tiers as ``max_daily_conversations_per_business`` spells them.
_TIERS = {
    "TIER_50": 50,
    "TIER_250": 250,
    "TIER_1K": 1_000,
    "TIER_2K": 2_000,
    "TIER_10K": 10_000,
    "TIER_100K": 100_000,
    "TIER_UNLIMITED": -1,
}
UNLIMITED = -1  # Meta's value for "no messaging limit"


# -- the payload models (pydantic, the boundary) ---------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


def _epoch_s(value: object) -> float:
    """Meta's timestamps are epoch seconds as a string; numbers are accepted too."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError("timestamp must be epoch seconds")
    try:
        seconds = float(value)
    except (ValueError, OverflowError):
        raise ValueError("timestamp must be epoch seconds") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError("timestamp must be epoch seconds")
    return seconds


def _optional_epoch_s(value: object) -> float | None:
    return None if value is None else _epoch_s(value)


def _phone_or_none(value: object) -> str | None:
    """E.164 digits (a leading '+' dropped), or None when absent or not a phone number."""
    if not isinstance(value, str):
        return None
    digits = value.removeprefix("+")
    if not (digits.isascii() and digits.isdigit()):
        return None
    return digits if PHONE_DIGITS_MIN <= len(digits) <= PHONE_DIGITS_MAX else None


def _strict_phone(value: object) -> str | None:
    """Where the phone is the key (a contact, a preference): present means usable."""
    if value is None:
        return None
    phone = _phone_or_none(value)
    if phone is None:
        raise ValueError("phone must be 7 to 15 digits")
    return phone


def _bsuid_or_none(value: object) -> str | None:
    """A BSUID, or None when absent or not shaped like one (never a link key then)."""
    return value if isinstance(value, str) and _BSUID_RE.match(value) else None


def _id_text(value: object) -> str | None:
    """Meta sends ids as numbers or strings; keep them as text."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | str):
        return str(value)
    raise ValueError("id must be a number or a string")


def _limit(value: object) -> int | None:
    """A messaging limit as a number (2000; -1 unlimited) or a tier (``TIER_2K``)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        if value.upper() in _TIERS:
            return _TIERS[value.upper()]
        if value.isascii() and value.removeprefix("-").isdigit():
            return int(value)
    raise ValueError("messaging limit must be a number or a TIER_… value")


_Epoch = Annotated[float, BeforeValidator(_epoch_s)]
_OptionalEpoch = Annotated[float | None, BeforeValidator(_optional_epoch_s)]
_LenientPhone = Annotated[str | None, BeforeValidator(_phone_or_none)]
_Phone = Annotated[str | None, BeforeValidator(_strict_phone)]
_Bsuid = Annotated[str | None, BeforeValidator(_bsuid_or_none)]
_IdText = Annotated[str | None, BeforeValidator(_id_text)]
_Limit = Annotated[int | None, BeforeValidator(_limit)]


class _Error(_Model):
    code: int


class _Pricing(_Model):
    billable: bool | None = None
    pricing_model: str | None = None
    category: str | None = None


class _Status(_Model):
    id: str = Field(min_length=1)
    status: Literal["sent", "delivered", "read", "failed"]
    timestamp: _Epoch
    # The wamid and our callback data are the keys: an unusable phone or BSUID is dropped,
    # not a reason to lose the status.
    recipient_id: _LenientPhone = None
    recipient_user_id: _Bsuid = None
    biz_opaque_callback_data: str | None = None
    errors: tuple[_Error, ...] = ()
    pricing: _Pricing | None = None

    def event(self) -> StatusEvent:
        return StatusEvent(
            message_id=self.id,
            status=self.status,
            at_s=self.timestamp,
            phone=self.recipient_id,
            user_id=self.recipient_user_id,
            callback_data=self.biz_opaque_callback_data,
            error_codes=tuple(error.code for error in self.errors),
            pricing_category=self.pricing.category if self.pricing else None,
            billable=self.pricing.billable if self.pricing else None,
        )


class _Text(_Model):
    body: str


class _Message(_Model):
    id: str = Field(min_length=1)
    type: str
    sender: _LenientPhone = Field(default=None, alias="from")
    from_user_id: _Bsuid = None
    user_id: _Bsuid = None
    timestamp: _OptionalEpoch = None
    text: _Text | None = None

    def event(self) -> InboundMessage:
        return InboundMessage(
            message_id=self.id,
            phone=self.sender,
            user_id=self.from_user_id or self.user_id,
            type=self.type,
            text=self.text.body if self.text else None,
            at_s=self.timestamp,
        )


class _Contact(_Model):
    wa_id: _LenientPhone = None
    user_id: _Bsuid = None

    def event(self) -> ContactSeen | None:
        if self.wa_id is None or self.user_id is None:
            return None  # nothing to link
        return ContactSeen(phone=self.wa_id, user_id=self.user_id)


class _Preference(_Model):
    wa_id: _Phone = None
    user_id: _Bsuid = None
    category: str
    value: Literal["stop", "resume"]
    timestamp: _OptionalEpoch = None

    def event(self) -> PreferenceEvent:
        if self.wa_id is None and self.user_id is None:
            raise ValueError("user preference without wa_id or user_id")
        return PreferenceEvent(
            phone=self.wa_id,
            user_id=self.user_id,
            category=self.category,
            value=self.value,
            at_s=self.timestamp,
        )


class _TemplateStatus(_Model):
    event: str = Field(min_length=1)
    message_template_name: str = Field(min_length=1)
    message_template_language: str | None = None
    message_template_id: _IdText = None
    reason: str | None = None

    def account_event(self, _: str | None) -> TemplateStatusEvent:
        return TemplateStatusEvent(
            event=self.event.upper(),
            template_name=self.message_template_name,
            language=self.message_template_language,
            reason=self.reason,
            template_id=self.message_template_id,
        )


class _Quality(_Model):
    event: str = Field(min_length=1)
    display_phone_number: str | None = None
    current_limit: str | None = None
    old_limit: str | None = None

    def account_event(self, _: str | None) -> QualityEvent:
        return QualityEvent(
            event=self.event.upper(),
            display_phone_number=self.display_phone_number,
            current_limit=self.current_limit,
            old_limit=self.old_limit,
        )


class _ViolationInfo(_Model):
    violation_type: str | None = None


class _BanInfo(_Model):
    waba_ban_state: str | None = None


class _Restriction(_Model):
    restriction_type: str


class _Account(_Model):
    event: str = Field(min_length=1)
    violation_info: _ViolationInfo | None = None
    ban_info: _BanInfo | None = None
    restriction_info: tuple[_Restriction, ...] = ()

    def account_event(self, account_id: str | None) -> AccountEvent:
        return AccountEvent(
            event=self.event.upper(),
            account_id=account_id,
            violation_type=self.violation_info.violation_type if self.violation_info else None,
            ban_state=self.ban_info.waba_ban_state if self.ban_info else None,
            restrictions=tuple(r.restriction_type for r in self.restriction_info),
        )


class _Capability(_Model):
    max_daily_conversations_per_business: _Limit = None
    max_daily_conversation_per_phone: _Limit = None  # the older name (removed in 2026)
    max_phone_numbers_per_business: int | None = None
    max_phone_numbers_per_waba: int | None = None

    def account_event(self, _: str | None) -> CapabilityEvent:
        limit = self.max_daily_conversations_per_business
        if limit is None:
            limit = self.max_daily_conversation_per_phone
        phones = self.max_phone_numbers_per_business
        if phones is None:
            phones = self.max_phone_numbers_per_waba
        return CapabilityEvent(messaging_limit=limit, max_phone_numbers=phones)


# -- parsing ----------------------------------------------------------------------------------

_AccountModel = type[_TemplateStatus] | type[_Quality] | type[_Account] | type[_Capability]
_ACCOUNT_FIELDS: dict[str, _AccountModel] = {
    "message_template_status_update": _TemplateStatus,
    "phone_number_quality_update": _Quality,
    "account_update": _Account,
    "business_capability_update": _Capability,
}


def _status(item: object) -> Event | None:
    return _Status.model_validate(item).event()


def _message(item: object) -> Event | None:
    return _Message.model_validate(item).event()


def _contact(item: object) -> Event | None:
    return _Contact.model_validate(item).event()


def _preference(item: object) -> Event | None:
    return _Preference.model_validate(item).event()


# The lists of a ``messages`` change and how one of their items becomes an event.
_MESSAGE_LISTS: tuple[tuple[str, Callable[[object], Event | None]], ...] = (
    ("contacts", _contact),  # first: a link seen in the same body helps its opt-out
    ("statuses", _status),
    ("messages", _message),
)


class _Collector:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self.skipped: list[Skipped] = []

    def skip(self, where: str, reason: str) -> None:
        self.skipped.append(Skipped(where, reason))

    def item(self, where: str, build: Callable[[object], Event | None], raw: object) -> None:
        """Build one event; a ValidationError or ValueError skips the item with its reason."""
        try:
            event = build(raw)
        except ValidationError as exc:
            self.skip(where, f"malformed: {_first_error(exc)}")
            return
        except ValueError as exc:
            self.skip(where, f"malformed: {exc}")
            return
        if event is not None:
            self.events.append(event)


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    loc = ".".join(str(part) for part in first.get("loc", ())) or "item"
    return f"{loc}: {first.get('msg', 'invalid')}"[:200]


def _items(value: object) -> Iterator[tuple[int, object]]:
    if isinstance(value, list):
        yield from enumerate(value)


def parse(body: str | bytes) -> ParsedReceipt:
    """Every event of one webhook body (or one split part of it), in payload order."""
    try:
        payload: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise UndecodableReceipt(f"receipt body is not JSON: {str(exc)[:120]}") from None
    out = _Collector()
    if not isinstance(payload, dict):
        out.skip("body", "malformed: not a JSON object")
        return ParsedReceipt((), tuple(out.skipped))
    if payload.get("object") != WEBHOOK_OBJECT:
        out.skip("body", f"unhandled object: {str(payload.get('object'))[:60]}")
        return ParsedReceipt((), tuple(out.skipped))
    entries = payload.get("entry")
    if not isinstance(entries, list):
        out.skip("body", "malformed: entry must be a list")
    for i, entry in _items(entries):
        _entry(f"entry[{i}]", entry, out)
    return ParsedReceipt(tuple(out.events), tuple(out.skipped))


def _entry(where: str, entry: object, out: _Collector) -> None:
    if not isinstance(entry, dict) or not isinstance(entry.get("changes"), list):
        out.skip(where, "malformed: entry without a changes list")
        return
    account_id = _id_text(entry["id"]) if isinstance(entry.get("id"), int | str) else None
    for j, change in _items(entry["changes"]):
        _change(f"{where}.changes[{j}]", change, account_id, out)


def _change(where: str, change: object, account_id: str | None, out: _Collector) -> None:
    if not isinstance(change, dict) or not isinstance(change.get("value"), dict):
        out.skip(where, "malformed: change without a value object")
        return
    field, value = change.get("field"), change["value"]
    if field == "messages":
        _messages(where, value, out)
    elif field == "user_preferences":
        for k, item in _items(value.get("user_preferences")):
            out.item(f"{where}.user_preferences[{k}]", _preference, item)
    elif isinstance(field, str) and field in _ACCOUNT_FIELDS:
        try:
            out.events.append(
                _ACCOUNT_FIELDS[field].model_validate(value).account_event(account_id)
            )
        except ValidationError as exc:
            out.skip(where, f"malformed: {_first_error(exc)}")
    else:
        out.skip(where, f"unhandled field: {str(field)[:60]}")


def _messages(where: str, value: dict[str, Any], out: _Collector) -> None:
    for name, build in _MESSAGE_LISTS:
        for k, item in _items(value.get(name)):
            out.item(f"{where}.{name}[{k}]", build, item)
