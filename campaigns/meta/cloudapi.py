"""The WhatsApp Cloud API client: one template send, translated into outcomes and errors.

Ambiguity decides between retry and UNKNOWN: a failure to connect, or an answer carrying an
error, is safe to retry; a read timeout or a connection lost after the request was written
may have been accepted by Meta and is never resent (``AmbiguousSend``). So is a gateway's
502 or 504 without Meta's JSON error body: the gateway forwarded the request and lost (or
waited too long for) Meta's answer, which may have been an acceptance. Any other non-JSON
answer (an HTML 500 or 503, an empty 400) comes from the edge itself, before Meta decided:
retried. Meta's JSON error body decides by its code, whatever the status (docs/reliability.md).
"""

from __future__ import annotations

import email.utils
import time
from typing import Any

import requests
import urllib3.exceptions
from pydantic import BaseModel, ConfigDict, ValidationError

from campaigns.domain.errors import (
    AmbiguousSend,
    CampaignHalted,
    PairRateLimited,
    RecipientRejected,
    RetryableSendError,
    ThrottledSendError,
)
from campaigns.domain.models import SendAccepted, TemplateMessage
from campaigns.meta.errorcodes import Disposition, classify, pause_reason_text
from campaigns.settings import Settings

HTTP_OK = 200
# A gateway's answer about the upstream it forwarded to (RFC 9110 15.6.3, 15.6.5): without
# Meta's own error body, Meta may have accepted the request.
GATEWAY_STATUSES = frozenset({502, 504})
MAX_CALLBACK_DATA = 512  # Meta's limit on biz_opaque_callback_data


def template_body(message: TemplateMessage) -> dict[str, Any]:
    """The Cloud API request body for one template message."""
    template: dict[str, Any] = {
        "name": message.template_name,
        "language": {"code": message.language},
    }
    if message.params:
        parameters: list[dict[str, str]] = []
        for param in message.params:
            item = {"type": "text", "text": param.value}
            if message.named_params:
                item["parameter_name"] = param.name
            parameters.append(item)
        template["components"] = [{"type": "body", "parameters": parameters}]
    body: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "+" + message.to,
        "type": "template",
        "template": template,
    }
    if message.callback_data:
        body["biz_opaque_callback_data"] = message.callback_data[:MAX_CALLBACK_DATA]
    return body


class _MetaMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str
    message_status: str = "accepted"


class _MetaSuccess(BaseModel):
    model_config = ConfigDict(extra="ignore")
    messages: list[_MetaMessage]


class _MetaErrorBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    code: int
    message: str = ""


class _MetaError(BaseModel):
    model_config = ConfigDict(extra="ignore")
    error: _MetaErrorBody


def parse_retry_after(value: str | None, now_s: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    now = time.time() if now_s is None else now_s
    return max(when.timestamp() - now, 0.0)


def _connection_never_made(exc: requests.ConnectionError) -> bool:
    """True when the request cannot have reached the server: refused, DNS, connect timeout,
    a failed TLS handshake or proxy (both happen before a byte of the request is written)."""
    if isinstance(exc, requests.ConnectTimeout | requests.exceptions.SSLError):
        return True
    if isinstance(exc, requests.exceptions.ProxyError):
        return True
    reason: object = exc.args[0] if exc.args else None
    if isinstance(reason, urllib3.exceptions.MaxRetryError):
        reason = reason.reason
    return isinstance(
        reason, urllib3.exceptions.NewConnectionError | urllib3.exceptions.ConnectTimeoutError
    )


class CloudApiSender:
    """Sends template messages over one ``requests.Session`` (keep-alive, no urllib3 retries)."""

    def __init__(self, settings: Settings, session: requests.Session | None = None) -> None:
        self._url = settings.messages_url
        self._timeout = (settings.meta_connect_timeout_s, settings.meta_read_timeout_s)
        self._session = session or requests.Session()
        self._session.headers.update(
            {
                "Authorization": f"Bearer {settings.meta_access_token.get_secret_value()}",
                "Content-Type": "application/json",
                "User-Agent": "campaign-executor/0.1",
            }
        )

    def close(self) -> None:
        self._session.close()

    def send(self, message: TemplateMessage) -> SendAccepted:
        try:
            response = self._session.post(
                self._url, json=template_body(message), timeout=self._timeout
            )
        except requests.ConnectionError as exc:
            if _connection_never_made(exc):
                raise RetryableSendError("META_CONNECT", type(exc).__name__) from None
            # Reset or closed after the request was written: Meta may have accepted it.
            raise AmbiguousSend("META_NO_RESPONSE", type(exc).__name__) from None
        except requests.Timeout as exc:
            raise AmbiguousSend("META_TIMEOUT", type(exc).__name__) from None
        except requests.RequestException as exc:
            raise AmbiguousSend("META_NO_RESPONSE", type(exc).__name__) from None
        with response:
            return self._interpret(response)

    def _interpret(self, response: requests.Response) -> SendAccepted:
        status = response.status_code
        retry_after_s = parse_retry_after(response.headers.get("Retry-After"))
        if status == HTTP_OK:
            try:
                success = _MetaSuccess.model_validate_json(response.content)
                first = success.messages[0]
            except (ValidationError, IndexError):
                # 200 without a wamid: Meta may have accepted it; we cannot tell.
                raise AmbiguousSend(f"META_HTTP_{status}", "200 without a message id") from None
            return SendAccepted(message_id=first.id, message_status=first.message_status)
        try:
            error = _MetaError.model_validate_json(response.content).error
        except ValidationError:
            if status in GATEWAY_STATUSES:
                # Forwarded, answer lost: an acceptance is possible, so never resend.
                raise AmbiguousSend(
                    f"META_HTTP_{status}", "gateway error without Meta's answer"
                ) from None
            # The edge refused before forwarding (HTML 500/503, empty 400): safe to retry.
            raise RetryableSendError(
                f"META_HTTP_{status}", "non-JSON error body", retry_after_s
            ) from None
        code = f"META_{error.code}"
        verdict = classify(error.code, status)
        detail = error.message[:200]
        match verdict.disposition:
            case Disposition.THROTTLE:
                raise ThrottledSendError(code, detail, retry_after_s)
            case Disposition.PAIR_RATE:
                raise PairRateLimited(code, detail, retry_after_s)
            case Disposition.RETRY:
                raise RetryableSendError(code, detail, retry_after_s)
            case Disposition.PAUSE:
                assert verdict.pause_reason is not None
                raise CampaignHalted(
                    code, verdict.pause_reason.value, pause_reason_text(verdict.pause_reason, code)
                )
            case Disposition.FAIL_SUPPRESS:
                raise RecipientRejected(code, detail, suppress=True)
            case _:
                raise RecipientRejected(code, detail, classified=verdict.classified)
