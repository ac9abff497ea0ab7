"""Validation of a template send as Meta does it: the first problem found is the one named."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

TO_PATTERN = re.compile(r"\+?[1-9][0-9]{6,14}")  # E.164: at most 15 digits
MAX_CALLBACK_DATA_CHARS = 512  # Meta: biz_opaque_callback_data is capped at 512 characters

SEND_KEYS = {"messaging_product", "recipient_type", "to", "type", "template"}
SEND_KEYS |= {"biz_opaque_callback_data"}
TEMPLATE_KEYS = {"name", "language", "components", "namespace"}


@dataclass(frozen=True)
class SendRequest:
    to: str  # as sent
    template_name: str
    language: str
    components: list[dict[str, Any]]
    callback_data: str | None

    @property
    def digits(self) -> str:
        return self.to.removeprefix("+")


@dataclass(frozen=True)
class _Template:
    name: str
    language: str
    components: list[dict[str, Any]]


class InvalidSendError(Exception):
    def __init__(self, details: str) -> None:
        super().__init__(details)
        self.details = details


def parse_send(body: bytes) -> SendRequest:
    """Validate a template send as Meta does; ``InvalidSendError`` names the problem."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise InvalidSendError("Request body is not valid JSON") from exc
    if not isinstance(payload, dict):
        raise InvalidSendError("Request body must be a JSON object")
    to = _check_envelope(payload)
    template = _parse_template(payload.get("template"))
    callback = _check_callback_data(payload.get("biz_opaque_callback_data"))
    return SendRequest(to, template.name, template.language, template.components, callback)


def _check_envelope(payload: dict[str, Any]) -> str:
    """The top-level keys, in Meta's order of checking; returns ``to`` as sent."""
    unknown = sorted(set(payload) - SEND_KEYS)
    if unknown:
        raise InvalidSendError(f"Unexpected key(s): {', '.join(unknown)}")
    if payload.get("messaging_product") != "whatsapp":
        raise InvalidSendError("messaging_product must be 'whatsapp'")
    if payload.get("recipient_type", "individual") != "individual":
        raise InvalidSendError("recipient_type must be 'individual'")
    to = payload.get("to")
    if not isinstance(to, str) or TO_PATTERN.fullmatch(to) is None:
        raise InvalidSendError("to must be a phone number with country code")
    if payload.get("type") != "template":
        raise InvalidSendError("type must be 'template'")
    return to


def _parse_template(template: object) -> _Template:
    if not isinstance(template, dict):
        raise InvalidSendError("template must be an object")
    unknown = sorted(set(template) - TEMPLATE_KEYS)
    if unknown:
        raise InvalidSendError(f"Unexpected template key(s): {', '.join(unknown)}")
    name = template.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidSendError("template.name must be a non-empty string")
    language = template.get("language")
    code = language.get("code") if isinstance(language, dict) else None
    if not isinstance(code, str) or not code:
        raise InvalidSendError("template.language.code must be a non-empty string")
    components = template.get("components", [])
    if not isinstance(components, list) or not all(isinstance(c, dict) for c in components):
        raise InvalidSendError("template.components must be a list of objects")
    return _Template(name, code, components)


def _check_callback_data(callback: object) -> str | None:
    if callback is None:
        return None
    if not isinstance(callback, str) or len(callback) > MAX_CALLBACK_DATA_CHARS:
        raise InvalidSendError(
            f"biz_opaque_callback_data must be a string of at most {MAX_CALLBACK_DATA_CHARS} chars"
        )
    return callback
