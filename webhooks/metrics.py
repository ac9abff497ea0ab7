"""The receiver's metrics, on a registry of their own (a fresh one per app, so per test).
``outcome`` is one of ``OUTCOMES``; no phone, wamid or body ever becomes a label."""

from __future__ import annotations

from enum import StrEnum

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST
# Seconds: a verified body is one SQS SendMessage (milliseconds); retries reach seconds.
LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Outcome(StrEnum):
    OK = "ok"  # verified and queued: answered 200
    BAD_SIGNATURE = "bad_signature"  # 401, nothing queued
    MALFORMED = "malformed"  # signed, but not a JSON object: 400
    TOO_LARGE = "too_large"  # over WEBHOOK_MAX_BODY_BYTES: 413
    ERROR = "error"  # the queue refused or failed: 503 (or 500), Meta retries


class WebhookMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.requests = Counter(
            "campaign_webhook_requests_total",
            "Webhook POSTs answered, by outcome",
            ["outcome"],
            registry=self.registry,
        )
        for outcome in Outcome:  # every series exists from the start (alerts on rate())
            self.requests.labels(outcome=outcome.value)
        self.duration = Histogram(
            "campaign_webhook_request_seconds",
            "Time to answer a webhook POST (verify, queue), by outcome",
            ["outcome"],
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.queued = Counter(
            "campaign_webhook_queued_messages_total",
            "Messages sent to the receipts queue (a large body is split into several)",
            registry=self.registry,
        )
        self.queue_ready = Gauge(
            "campaign_webhook_queue_ready",
            "1 when the receipts queue answered the last send or check, else 0",
            registry=self.registry,
        )

    def observe(self, outcome: Outcome, duration_s: float) -> None:
        self.requests.labels(outcome=outcome.value).inc()
        self.duration.labels(outcome=outcome.value).observe(duration_s)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
