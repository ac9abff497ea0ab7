"""The API's metrics, on a registry of their own (a fresh one per app, so per test): request
counts and latency by route **template** (``/api/campaigns/{campaign_id}``), never an id."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

UNMATCHED = "unmatched"  # the route label of a request no route answered (a 404)
CONTENT_TYPE = CONTENT_TYPE_LATEST
# Seconds: a GET is milliseconds; an import or an execute-batch can take many seconds.
LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class ApiMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.requests = Counter(
            "campaign_api_requests_total",
            "HTTP requests answered, by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "campaign_api_request_duration_seconds",
            "Time to answer an HTTP request, by route template and method",
            ["route", "method"],
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )

    def observe(self, route: str, method: str, status: int, duration_s: float) -> None:
        self.requests.labels(route=route, method=method, status=str(status)).inc()
        self.duration.labels(route=route, method=method).observe(duration_s)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
