"""The middleware every request passes: ``Cache-Control: no-store`` on the API's answers,
the metrics by route template, and one ``api.audit`` line per state-changing call (who, what,
which campaign, the status and the outcome; never a key)."""

from __future__ import annotations

import time
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import UNSAFE_METHODS
from api.metrics import UNMATCHED, ApiMetrics
from campaigns import logging as logs

NO_STORE_PREFIXES = ("/api/", "/metrics")


def route_template(scope: Scope) -> str | None:
    """The matched route's path with its placeholders (FastAPI and Starlette put the route in
    the scope while routing); ``None`` when no route matched."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else None


def outcome_of(status: int) -> str:
    if status < 400:
        return "ok"
    return "refused" if status < 500 else "failed"


class Observe:
    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started_s = time.perf_counter()
        status = 500  # if the app fails before answering at all
        no_store = str(scope.get("path", "")).startswith(NO_STORE_PREFIXES)

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = MutableHeaders(scope=message)
                headers["X-Content-Type-Options"] = "nosniff"
                if no_store:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            template = route_template(scope)
            method = str(scope.get("method", ""))
            self.metrics.observe(
                template or UNMATCHED, method, status, time.perf_counter() - started_s
            )
            if method in UNSAFE_METHODS and method in getattr(scope.get("route"), "methods", ()):
                _audit(scope, status)  # a call that reached its route (not a 404 or 405)


def _audit(scope: Scope, status: int) -> None:
    state: dict[str, Any] = scope.get("state") or {}
    route = scope.get("route")
    params: dict[str, Any] = scope.get("path_params") or {}
    fields: dict[str, Any] = {
        "operator": state.get("operator"),
        "action": state.get("audit_action") or getattr(route, "name", None),
        "campaign_id": state.get("campaign_id") or params.get("campaign_id"),
        "status": status,
        "outcome": outcome_of(status),
    }
    if "error" in state:
        fields["error"] = state["error"]
    logs.get_logger().info("api.audit", **fields)
