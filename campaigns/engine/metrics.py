"""Prometheus metrics. Names are a contract: dashboards and alerts depend on them.

Base units, ``_total`` counters, and never a phone number or message id as a label.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

SEND_BUCKETS_S = (0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0, 30.0)
RECEIPT_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class EngineMetrics:
    """All of the engine's metrics, registered on one registry (a fresh one per test)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.sent = Counter(
            "campaign_messages_sent", "Template messages accepted by the Cloud API.", registry=r
        )
        self.failed = Counter(
            "campaign_messages_failed",
            "Recipients failed, by Meta error code (META_<code> or META_HTTP_<status>).",
            ["error_code"],
            registry=r,
        )
        self.unknown = Counter(
            "campaign_messages_unknown",
            "Recipients whose send outcome cannot be known (never resent automatically).",
            registry=r,
        )
        self.retries = Counter(
            "campaign_send_retries",
            "Send attempts that will be retried, by error code.",
            ["error_code"],
            registry=r,
        )
        self.pauses = Counter(
            "campaign_pauses", "Campaigns paused by the engine, by reason.", ["reason"], registry=r
        )
        self.batches = Counter(
            "campaign_batches_processed",
            "Batch messages processed, by outcome.",
            ["outcome"],
            registry=r,
        )
        self.send_duration = Histogram(
            "campaign_send_duration_seconds",
            "Duration of one Cloud API send request.",
            buckets=SEND_BUCKETS_S,
            registry=r,
        )
        self.cap_used = Gauge(
            "campaign_cap_used",
            "Messaging-limit units used in the moving 24 h window (this portfolio).",
            registry=r,
        )
        self.cap_limit = Gauge(
            "campaign_cap_limit",
            "The configured messaging limit (DAILY_CAP; 0 = none).",
            registry=r,
        )
        self.batches_in_flight = Gauge(
            "campaign_batches_in_flight", "Batch messages being processed now.", registry=r
        )
        self.draining = Gauge(
            "campaign_consumer_draining", "1 while the consumer is shutting down.", registry=r
        )
        self.send_rate_limit = Gauge(
            "campaign_send_rate_limit_per_second",
            "The pacing rate right now (lower than configured after throttling).",
            registry=r,
        )
        self.receive_errors = Counter(
            "campaign_queue_receive_errors", "Failed SQS receive calls.", registry=r
        )
        # -- delivery receipts (status webhooks, through the receipts queue) --------------
        self.deliveries = Counter(
            "campaign_deliveries",
            "Delivery reports that moved a recipient's deliveryStatus, by the status reached.",
            ["status"],
            registry=r,
        )
        self.receipts_applied = Counter(
            "campaign_receipts_applied",
            "Webhook events applied, by kind (status, message, contact, preference, template, "
            "quality, account, capability).",
            ["kind"],
            registry=r,
        )
        self.receipts_skipped = Counter(
            "campaign_receipt_items_skipped",
            "Webhook items not applied, by kind (malformed, unhandled field, …).",
            ["kind"],
            registry=r,
        )
        self.receipts_unmatched = Counter(
            "campaign_receipts_unmatched",
            "Statuses for no recipient of ours (no usable callback data, wamid not found).",
            registry=r,
        )
        self.receipts_poison = Counter(
            "campaign_receipts_poison",
            "Receipt messages that are not JSON (left for the receipts DLQ).",
            registry=r,
        )
        self.delivery_failures = Counter(
            "campaign_delivery_failures",
            "Recipients whose delivery failed after acceptance, by Meta's error code "
            "(META_<code>; NONE when the status named none).",
            ["error_code"],
            registry=r,
        )
        self.refund_failures = Counter(
            "campaign_refund_failures",
            "Refunds of a cap unit that failed through their retries (the unit stays charged).",
            registry=r,
        )
        self.held = Counter(
            "campaign_messages_held",
            "Sends Meta accepted as held_for_quality_assessment (template pacing).",
            registry=r,
        )
        self.unknown_resolved = Counter(
            "campaign_unknown_resolved",
            "UNKNOWN recipients proven SENT by a status webhook.",
            registry=r,
        )
        self.suppressions = Counter(
            "campaign_suppressions",
            "Numbers added to the suppression list from webhooks, by reason.",
            ["reason"],
            registry=r,
        )
        self.receipt_apply_duration = Histogram(
            "campaign_receipt_apply_seconds",
            "Time to apply one receipts-queue message (every event in it).",
            buckets=RECEIPT_BUCKETS_S,
            registry=r,
        )
        self.messaging_limit = Gauge(
            "campaign_messaging_limit",
            "The portfolio's messaging limit Meta last reported (-1: unlimited).",
            registry=r,
        )
