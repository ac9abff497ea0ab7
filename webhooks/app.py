"""The webhook receiver: Meta's WhatsApp webhooks in, the receipts queue out.

Design: **a 2xx means durably queued.** A POST is answered only after its signature was
checked on the raw bytes and SQS accepted every message carrying the body (``SendMessageBatch``
returned them as successful; SQS stores a message redundantly before it says so). Nothing is
applied here: the consumer's receipts loop (``campaign-consumer``) takes the messages off
``CAMPAIGN_RECEIPTS_QUEUE_NAME`` and deletes each only after its writes committed, and a
message that keeps failing lands in ``<name>-dlq`` after five receives. If SQS does not take
the body (unreachable, throttled past the retries, a missing queue), the answer is 503 and
Meta sends it again (for up to 7 days), so no payload answered 2xx is lost and no payload
refused is dropped silently. A retried body may be queued twice (or some parts of a split
body twice): applying is idempotent (statuses are monotonic, counters move once), so a
duplicate changes nothing.

The receiver keeps no state of its own: run as many as the traffic needs behind one URL.
Endpoints: ``GET|POST /webhooks/whatsapp`` (the handshake, the payloads), ``/healthz`` (the
process answers) and ``/readyz`` (SQS answered within the last few seconds) for probes; the
metrics are served by ``create_metrics_app`` on a port of their own (``WEBHOOK_METRICS_PORT``),
never on the public one (see ``webhooks.cli``).
"""

from __future__ import annotations

import hmac

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.exceptions import HTTPException
from starlette.routing import Route

from campaigns import logging as logs
from campaigns.settings import Settings, require_webhook_secrets
from webhooks.metrics import CONTENT_TYPE, WebhookMetrics
from webhooks.outbox import Outbox, QueueFactory
from webhooks.receive import SECURITY_HEADERS, Receiver, answer

PATH = "/webhooks/whatsapp"
TITLE = "campaign-executor webhook receiver"
_REASONS = {404: "not found", 405: "method not allowed"}


def create_app(
    settings: Settings, queue_factory: QueueFactory, metrics: WebhookMetrics | None = None
) -> FastAPI:
    """Refuses (``ConfigError``) without ``META_APP_SECRET`` and ``META_WEBHOOK_VERIFY_TOKEN``.
    ``queue_factory`` builds the receipts queue (``campaigns.wiring.build_receipts_queue``; an
    in-memory one in tests) on first use."""
    require_webhook_secrets(settings)
    metrics = metrics or WebhookMetrics()
    outbox = Outbox(queue_factory, on_state=lambda ok: metrics.queue_ready.set(1 if ok else 0))
    app = FastAPI(title=TITLE, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.metrics = metrics
    app.state.outbox = outbox
    receiver = Receiver(
        app_secret=settings.meta_app_secret.get_secret_value(),
        max_body_bytes=settings.webhook_max_body_bytes,
        outbox=outbox,
        metrics=metrics,
    )
    app.add_api_route(PATH, receiver, methods=["POST"], name="receive", include_in_schema=False)
    _handshake(app, settings.meta_webhook_verify_token.get_secret_value())
    _operations(app, outbox)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        return answer(exc.status_code, _REASONS.get(exc.status_code, "error"))

    return app


def _handshake(app: FastAPI, verify_token: str) -> None:
    expected = verify_token.encode()

    @app.get(PATH, name="handshake", include_in_schema=False)
    def handshake(request: Request) -> Response:
        """Meta's subscription check: the challenge back, as text, when the token matches."""
        query = request.query_params
        mode, token = query.get("hub.mode"), query.get("hub.verify_token", "")
        challenge = query.get("hub.challenge", "")
        matches = hmac.compare_digest(token.encode(), expected)
        if mode == "subscribe" and matches and challenge:
            logs.get_logger().info("webhook.subscribed")
            return PlainTextResponse(challenge, headers=SECURITY_HEADERS)
        reason = "mode" if mode != "subscribe" else "token" if not matches else "challenge"
        logs.get_logger().warning("webhook.handshake_refused", reason=reason)
        return answer(403, "verification failed")


def _operations(app: FastAPI, outbox: Outbox) -> None:
    @app.get("/healthz", name="healthz", include_in_schema=False)
    def healthz() -> JSONResponse:
        """Liveness: the process answers (it checks no AWS service)."""
        return JSONResponse({"status": "ok"}, headers=SECURITY_HEADERS)

    @app.get("/readyz", name="readyz", include_in_schema=False)
    def readyz() -> JSONResponse:
        """Readiness: SQS took the last send or answered a check within a few seconds."""
        if outbox.ready():
            return JSONResponse({"status": "ready"}, headers=SECURITY_HEADERS)
        return answer(503, "the receipts queue is unreachable")


def create_metrics_app(metrics: WebhookMetrics) -> FastAPI:
    """``/metrics`` alone, for the metrics port (Prometheus scrapes it inside the cluster)."""

    async def prometheus(request: Request) -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE, headers=SECURITY_HEADERS)

    app = FastAPI(
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        routes=[Route("/metrics", prometheus, methods=["GET"])],
    )

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        return answer(exc.status_code, _REASONS.get(exc.status_code, "error"))

    return app
