"""The webhook part of the control API (``/_sandbox/webhooks…``, ``/_sandbox/delivery-rules``):
show and change the delivery options, replace the delivery rules, and send the webhooks Meta
sends on its own — a user stopping or resuming marketing messages, an inbound text message, a
template paused or disabled, the number's quality, the account — on demand."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable
from typing import Any

from sandbox.cloudapi.deliveryrules import DeliveryRule
from sandbox.cloudapi.dispatcher import WebhookDispatcher
from sandbox.cloudapi.payloads import (
    Business,
    Recipient,
    account_payload,
    bsuid_for,
    inbound_text_payload,
    quality_payload,
    template_status_payload,
    user_preferences_payload,
)
from sandbox.cloudapi.replies import Reply, error_reply, json_reply

DEFAULT_PHONE_NUMBER_ID = "100000000000001"  # the sandbox stack's META_PHONE_NUMBER_ID
TEMPLATE_EVENTS = frozenset(
    {"APPROVED", "PAUSED", "DISABLED", "REJECTED", "FLAGGED", "REINSTATED", "PENDING_DELETION"}
)
QUALITY_EVENTS = frozenset({"DOWNGRADE", "FLAGGED", "UPGRADE", "UNFLAGGED", "ONBOARDING"})
ACCOUNT_EVENTS = frozenset(
    {
        "ACCOUNT_RESTRICTION",
        "ACCOUNT_VIOLATION",
        "DISABLED_UPDATE",
        "VERIFIED_ACCOUNT",
        "ACCOUNT_DELETED",
        "PARTNER_REMOVED",
    }
)
MAX_TEXT_CHARS = 4096  # Meta: a text message body is at most 4,096 characters

Route = tuple[str, Callable[[bytes], Reply]]


class BadControlRequest(ValueError):
    pass


def _object(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body or b"{}")
    except (ValueError, RecursionError) as exc:
        raise BadControlRequest("body is not valid JSON") from exc
    if not isinstance(payload, dict):
        raise BadControlRequest("body must be a JSON object")
    return payload


def _text(payload: dict[str, Any], key: str, default: str | None = None) -> str:
    value = payload.get(key, default)
    if not isinstance(value, str) or not value:
        raise BadControlRequest(f"{key} must be a non-empty string")
    return value


def _choice(payload: dict[str, Any], key: str, allowed: frozenset[str]) -> str:
    value = _text(payload, key)
    if value not in allowed:
        raise BadControlRequest(f"{key} must be one of {', '.join(sorted(allowed))}")
    return value


def _recipient(payload: dict[str, Any]) -> Recipient:
    """``phone`` and/or ``user_id`` (a BSUID); ``withhold_phone`` sends the BSUID alone."""
    phone, user_id = payload.get("phone"), payload.get("user_id")
    if phone is None and user_id is None:
        raise BadControlRequest("give phone or user_id")
    if phone is not None:
        if not isinstance(phone, str) or not phone.removeprefix("+").isdigit():
            raise BadControlRequest("phone must be digits with country code")
        phone = phone.removeprefix("+")
    if user_id is not None and (not isinstance(user_id, str) or "." not in user_id):
        raise BadControlRequest("user_id must be a BSUID like IN.1502576394655843")
    withhold = payload.get("withhold_phone", False)
    if not isinstance(withhold, bool):
        raise BadControlRequest("withhold_phone must be true or false")
    bsuid = user_id if user_id is not None else bsuid_for(str(phone))
    return Recipient(None if withhold else phone, bsuid)


class WebhookControl:
    """The handlers; ``set_delivery_rules`` is the emulator core's."""

    def __init__(
        self,
        dispatcher: WebhookDispatcher,
        set_delivery_rules: Callable[[list[DeliveryRule]], None],
    ) -> None:
        self._dispatcher = dispatcher
        self._set_delivery_rules = set_delivery_rules

    def routes(self) -> dict[str, Route]:
        events = {
            "user-preferences": self._user_preferences,
            "inbound": self._inbound,
            "template-status": self._template_status,
            "quality": self._quality,
            "account": self._account,
        }
        routes: dict[str, Route] = {
            "/_sandbox/webhooks": ("GET", self._show),
            "/_sandbox/webhooks/config": ("PUT", self._configure),
            "/_sandbox/delivery-rules": ("PUT", self._replace_rules),
        }
        for name, build in events.items():
            routes[f"/_sandbox/webhooks/{name}"] = ("POST", self._event(build))
        return routes

    def _show(self, body: bytes) -> Reply:
        return json_reply(200, self._dispatcher.snapshot())

    def _configure(self, body: bytes) -> Reply:
        try:
            config = self._dispatcher.config.updated(_object(body))
        except ValueError as exc:
            return error_reply(100, f"Bad webhook options: {exc}")
        self._dispatcher.configure(config)
        return json_reply(200, {"config": config.to_public()})

    def _replace_rules(self, body: bytes) -> Reply:
        try:
            raw_rules = _object(body).get("rules")
            if not isinstance(raw_rules, list):
                raise ValueError('expected {"rules": [...]}')
            rules = [DeliveryRule.from_dict(r) for r in raw_rules]
        except (ValueError, TypeError) as exc:
            return error_reply(100, f"Bad delivery rules: {exc}")
        self._set_delivery_rules(rules)
        return json_reply(200, {"rules": len(rules)})

    def _event(
        self, build: Callable[[Business, dict[str, Any]], tuple[str, dict[str, Any]]]
    ) -> Callable[[bytes], Reply]:
        def handle(body: bytes) -> Reply:
            config = self._dispatcher.config
            if not config.enabled:
                return error_reply(100, "No webhook url is configured", 409)
            try:
                request = _object(body)
                phone_number_id = _text(request, "phone_number_id", DEFAULT_PHONE_NUMBER_ID)
                business = Business(config.waba_id, phone_number_id, config.display_phone_number)
                kind, payload = build(business, request)
            except BadControlRequest as exc:
                return error_reply(100, str(exc))
            if not self._dispatcher.schedule_event(kind, payload):
                return error_reply(100, "The webhook queue is full: dropped", 503)
            return json_reply(202, {"queued": True, "kind": kind, "payload": payload})

        return handle

    @staticmethod
    def _user_preferences(business: Business, request: dict[str, Any]) -> tuple[str, Any]:
        value = _choice(request, "value", frozenset({"stop", "resume"}))
        payload = user_preferences_payload(business, _recipient(request), value, int(time.time()))
        return "user_preferences", payload

    @staticmethod
    def _inbound(business: Business, request: dict[str, Any]) -> tuple[str, Any]:
        text = _text(request, "text")
        if len(text) > MAX_TEXT_CHARS:
            raise BadControlRequest(f"text is longer than {MAX_TEXT_CHARS} characters")
        wamid = f"wamid.SBXIN{secrets.token_hex(12)}"
        payload = inbound_text_payload(business, _recipient(request), text, wamid, int(time.time()))
        return "messages", payload

    @staticmethod
    def _template_status(business: Business, request: dict[str, Any]) -> tuple[str, Any]:
        name, language = _text(request, "name"), _text(request, "language")
        event = _choice(request, "event", TEMPLATE_EVENTS)
        reason = request.get("reason")
        if reason is not None and not isinstance(reason, str):
            raise BadControlRequest("reason must be a string")
        digest = hashlib.sha256(f"template:{name}:{language}".encode()).digest()
        template_id = int.from_bytes(digest[:6], "big")
        payload = template_status_payload(
            business,
            name=name,
            language=language,
            event=event,
            template_id=template_id,
            reason=reason,
        )
        return "message_template_status_update", payload

    @staticmethod
    def _quality(business: Business, request: dict[str, Any]) -> tuple[str, Any]:
        event = _choice(request, "event", QUALITY_EVENTS)
        current_limit = _text(request, "current_limit", "TIER_250")
        payload = quality_payload(business, event=event, current_limit=current_limit)
        return "phone_number_quality_update", payload

    @staticmethod
    def _account(business: Business, request: dict[str, Any]) -> tuple[str, Any]:
        event = _choice(request, "event", ACCOUNT_EVENTS)
        detail = request.get("detail")
        if detail is not None and not isinstance(detail, str):
            raise BadControlRequest("detail must be a string")
        return "account_update", account_payload(business, event=event, detail=detail)
