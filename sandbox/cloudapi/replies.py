"""Meta's answers on the wire: the error texts and statuses, the success and error JSON, the
HTML page of Meta's edge, and ``Reply``, what the HTTP handler does with one request."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Literal

ERROR_TEXTS = {
    0: "AuthException",
    1: "API Unknown",
    2: "API Service",
    3: "API Method",
    4: "API Too Many Calls",
    10: "Permission Denied",
    100: "Invalid parameter",
    190: "Invalid OAuth access token",
    368: "Temporarily blocked for policies violations",
    80007: "Rate limit issues",
    130429: "Rate limit hit",
    131000: "Something went wrong",
    131016: "Service unavailable",
    131026: "Message undeliverable",
    131047: "Re-engagement message",
    131048: "Spam rate limit hit",
    131049: "Meta chose not to deliver",
    131050: "User has stopped marketing messages",
    131056: "(Business Account, Consumer Account) pair rate limit hit",
    132000: "Number of parameters does not match the expected number of params",
    132001: "Template name does not exist in the translation",
    133004: "Server temporarily unavailable",
}


def error_status(code: int) -> int:
    """The HTTP status Meta pairs with an error code (logic must key on the code, not this)."""
    if code in (0, 190):
        return 401
    if code in (3, 10) or 200 <= code <= 299:
        return 403
    if code == 131016:
        return 503
    if code in (1, 2, 131000, 133004):
        return 500
    return 400


@dataclass(frozen=True)
class Reply:
    """What the handler does with one request: answer, or hang / reset without answering."""

    status: int = 200
    body: bytes = b""
    content_type: str | None = "application/json"
    headers: tuple[tuple[str, str], ...] = ()
    close: bool = False
    delay_s: float = 0.0
    action: Literal["answer", "hang", "reset"] = "answer"
    hang_s: float = 0.0


def json_reply(status: int, payload: object, **kwargs: Any) -> Reply:
    return Reply(status=status, body=json.dumps(payload).encode(), **kwargs)


def error_reply(code: int, details: str, status: int | None = None, **kwargs: Any) -> Reply:
    error = {
        "message": f"(#{code}) {ERROR_TEXTS.get(code, 'Sandbox fault')}",
        "type": "OAuthException",
        "code": code,
        "error_data": {"messaging_product": "whatsapp", "details": details},
        "fbtrace_id": secrets.token_urlsafe(12),
    }
    return json_reply(status or error_status(code), {"error": error}, **kwargs)


def html_reply(status: int) -> Reply:
    title = f"{status} {HTTPStatus(status).phrase}"
    body = f"<html><body><h1>{title}</h1></body></html>".encode()
    return Reply(status=status, body=body, content_type="text/html; charset=utf-8")
