"""Every failure as ``{"success": false, "error": "<one line>"}`` with its status; never a
traceback. The operator core's exceptions map by class, like the CLI's exit codes
(``producer/cli.py``: ``_exit_code``), most specific first."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from campaigns import logging as logs
from campaigns.domain.errors import (
    CampaignError,
    CampaignNotFound,
    ConfigError,
    ImportLocked,
    InvalidInput,
    InvalidTransition,
    QueueUnavailable,
    StoreUnavailable,
)
from campaigns.operator.csvfile import FileProblem

# The core's exception → the HTTP status; the first matching class wins.
STATUS_OF: tuple[tuple[type[CampaignError], int], ...] = (
    (CampaignNotFound, 404),  # before InvalidInput, its parent
    (ImportLocked, 409),  # another populate holds the campaign
    (FileProblem, 400),  # the uploaded file is not a usable CSV: a bad body
    (InvalidInput, 422),  # a malformed id, field or parameter
    (InvalidTransition, 409),
    (StoreUnavailable, 503),
    (QueueUnavailable, 503),
    (ConfigError, 503),  # e.g. execute-batch on a server without Cloud API credentials
)
GENERIC_500 = "internal error (logged on the server)"
_REASONS = {404: "not found", 405: "method not allowed"}


def status_of(exc: CampaignError) -> int:
    return next((status for cls, status in STATUS_OF if isinstance(exc, cls)), 500)


def one_line(text: str) -> str:
    return " ".join(text.split()) or "error"


def failure(request: Request | None, status: int, message: str, **headers: str) -> JSONResponse:
    """The error body; the message is remembered for the audit line."""
    line = one_line(message)
    if request is not None:
        request.state.error = line
    return JSONResponse({"success": False, "error": line}, status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> tuple[int, str]:
    """400 when the body is missing or not JSON (or not an object); 422 for a bad field.
    Names the field, never echoes its value (it may be a key)."""
    first: dict[str, Any] = exc.errors()[0] if exc.errors() else {}
    kind = str(first.get("type", ""))
    loc = [str(part) for part in first.get("loc", ())]
    where = loc[0] if loc else ""
    field = ".".join(loc[1:])
    if kind == "json_invalid":
        return 400, "malformed JSON body"
    if where == "body" and not field:  # no body, or a list, string, number...
        return 400, "the body must be a JSON object"
    message = str(first.get("msg", "invalid value"))
    return 422, f"{field or where}: {message}" if field or where else message


def install(app: FastAPI) -> None:
    """Register the handlers (``CatchAll`` is added by ``create_app``, in its place among the
    middleware)."""

    @app.exception_handler(CampaignError)
    async def _campaign_error(request: Request, exc: CampaignError) -> JSONResponse:
        return failure(request, status_of(exc), str(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        status, message = _validation_message(exc)
        return failure(request, status, message)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else ""
        if detail in ("Not Found", "Method Not Allowed", ""):
            detail = _REASONS.get(exc.status_code, detail or "error")
        return failure(request, exc.status_code, detail, **(exc.headers or {}))


class CatchAll:
    """Anything unexpected becomes a 500 with a generic line; the exception is logged with its
    traceback (``api.error``), never returned. Once a (streamed) response has started nothing
    can be said any more: the error is logged and re-raised so the server drops the connection
    rather than end a truncated body as if it were complete."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_tracking)
        except Exception:
            logs.get_logger().exception(
                "api.error", method=scope.get("method"), path=scope.get("path")
            )
            if started:
                raise
            scope.setdefault("state", {})["error"] = GENERIC_500
            response = JSONResponse({"success": False, "error": GENERIC_500}, status_code=500)
            await response(scope, receive, send)
