"""Phone numbers: normalisation to E.164 digits and masking for logs."""

from __future__ import annotations

import re

import phonenumbers

from campaigns.domain.errors import InvalidInput

DEFAULT_REGION = "IN"
# A run of digits as long as a phone number (E.164: at most 15), with an optional '+'.
_PHONE_LIKE = re.compile(r"\+?(?<!\d)\d{7,15}(?!\d)")


class InvalidPhone(InvalidInput):
    """One CSV value that is not a valid phone number; ``reason`` says why."""

    def __init__(self, value: str, reason: str) -> None:
        super().__init__(f"{reason}: {value!r}")
        self.value = value
        self.reason = reason


def normalise(raw: str, default_region: str = DEFAULT_REGION) -> str:
    """Return E.164 digits without '+' (``919876543210``) or raise ``InvalidPhone``."""
    value = raw.strip()
    if not value:
        raise InvalidPhone(raw, "empty value")
    if value.startswith("00"):
        value = "+" + value[2:]
    try:
        parsed = phonenumbers.parse(value, default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(
            raw, f"not a phone number ({exc.args[0] if exc.args else exc})"
        ) from None
    if not phonenumbers.is_possible_number(parsed):
        raise InvalidPhone(raw, "impossible number length")
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidPhone(raw, "not a valid number for its region")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)[1:]


def calling_code(phone: str) -> str:
    """The country calling code of E.164 digits (``447700900123`` → ``44``); ``0`` when the
    digits are not a number phonenumbers can read (never raised: it only labels a count)."""
    try:
        return str(phonenumbers.parse("+" + phone.lstrip("+")).country_code)
    except phonenumbers.NumberParseException:
        return "0"


def mask(phone: str) -> str:
    """``919876543210`` → ``9198******10``: enough to correlate, not enough to dial."""
    digits = phone.lstrip("+")
    if len(digits) <= 6:
        return "*" * len(digits)
    return digits[:4] + "*" * (len(digits) - 6) + digits[-2:]


def mask_text(text: str) -> str:
    """Every phone-like run of digits in free text (a message body) masked like ``mask``."""
    return _PHONE_LIKE.sub(lambda found: mask(found.group()), text)
