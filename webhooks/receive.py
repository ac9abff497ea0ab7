"""One webhook POST, in order: the body read under its limit (413), the signature checked on
those bytes in constant time (401, before any parsing), the JSON parsed (400), the body queued
(503 when SQS does not take it), and only then 200. Each step's refusal is one log line without
the body, the header's value or the secret, and one ``outcome`` in the metrics."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse

from campaigns import logging as logs
from campaigns.domain.errors import QueueUnavailable
from webhooks import signature
from webhooks.body import BodyTooLarge, read_limited
from webhooks.metrics import Outcome, WebhookMetrics
from webhooks.outbox import Outbox
from webhooks.split import Unqueueable, batches, queue_bodies

SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}


def answer(status: int, error: str | None = None) -> JSONResponse:
    body: dict[str, Any] = (
        {"success": True} if error is None else {"success": False, "error": error}
    )
    return JSONResponse(body, status_code=status, headers=SECURITY_HEADERS)


class Refused(Exception):
    """A step said no: the status, the one-line error, the outcome."""

    def __init__(self, status: int, error: str, outcome: Outcome) -> None:
        super().__init__(error)
        self.status = status
        self.outcome = outcome


@dataclass
class Receiver:
    app_secret: str
    max_body_bytes: int
    outbox: Outbox
    metrics: WebhookMetrics

    async def __call__(self, request: Request) -> JSONResponse:
        started_s = time.perf_counter()
        try:
            queued = await self._receive(request)
        except Refused as refused:
            outcome, response = refused.outcome, answer(refused.status, str(refused))
        except Exception:
            logs.get_logger().exception("webhook.error")
            outcome, response = Outcome.ERROR, answer(500, "internal error (logged on the server)")
        else:
            self.metrics.queued.inc(queued)
            outcome, response = Outcome.OK, answer(200)
        self.metrics.observe(outcome, time.perf_counter() - started_s)
        return response

    async def _receive(self, request: Request) -> int:
        log = logs.get_logger()
        try:
            raw = await read_limited(request, self.max_body_bytes)
        except BodyTooLarge as exc:
            log.warning("webhook.too_large", limit_bytes=self.max_body_bytes)
            raise Refused(413, str(exc), Outcome.TOO_LARGE) from None
        except ClientDisconnect:
            raise Refused(400, "the client went away mid-body", Outcome.MALFORMED) from None
        verdict = signature.verify(self.app_secret, raw, request.headers.get(signature.HEADER))
        if verdict is not signature.Verdict.VALID:
            log.warning("webhook.bad_signature", reason=verdict.value, bytes=len(raw))
            raise Refused(401, f"{signature.HEADER}: {verdict.value}", Outcome.BAD_SIGNATURE)
        payload, text = _parsed(raw)
        try:
            bodies = queue_bodies(text, payload)
        except Unqueueable as exc:
            log.warning("webhook.unqueueable", reason=str(exc), bytes=len(raw))
            raise Refused(413, str(exc), Outcome.TOO_LARGE) from None
        try:
            sent = await run_in_threadpool(self.outbox.send, batches(bodies))
        except QueueUnavailable as exc:
            log.error("webhook.queue_failed", code=exc.code, messages=len(bodies))
            raise Refused(503, "the receipts queue is unavailable", Outcome.ERROR) from None
        log.debug("webhook.queued", messages=sent, bytes=len(raw))
        return sent


def _parsed(raw: bytes) -> tuple[dict[str, Any], str]:
    """The body as text and as a JSON object; anything else is a 400 (logged without it)."""
    try:
        text = raw.decode("utf-8")
        payload = json.loads(text)
    except (ValueError, RecursionError):  # not UTF-8, not JSON, nested too deep
        logs.get_logger().warning("webhook.malformed", reason="not JSON", bytes=len(raw))
        raise Refused(400, "malformed JSON body", Outcome.MALFORMED) from None
    if not isinstance(payload, dict):
        logs.get_logger().warning("webhook.malformed", reason="not an object", bytes=len(raw))
        raise Refused(400, "the body must be a JSON object", Outcome.MALFORMED)
    return payload, text
