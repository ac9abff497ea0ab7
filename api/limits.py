"""Bodies other than the CSV upload (create, control, confirm, sign-in: a few hundred bytes)
may be ``JSON_BODY_LIMIT_BYTES`` long: a larger ``Content-Length`` is answered 413 before a
byte is read, and a body without one is cut off as soon as it crosses the limit. The upload
route streams its body to disk under its own limit (``api.upload``)."""

from __future__ import annotations

import re

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

JSON_BODY_LIMIT_BYTES = 64 * 1024
UPLOAD_PATH = re.compile(r"^/api/campaigns/[^/]+/populate$")
TOO_LARGE = f"body too large: the limit is {JSON_BODY_LIMIT_BYTES} bytes"


class BodyLimit:
    def __init__(self, app: ASGIApp, limit_bytes: int = JSON_BODY_LIMIT_BYTES) -> None:
        self.app = app
        self.limit_bytes = limit_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or UPLOAD_PATH.match(str(scope.get("path", ""))):
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.limit_bytes:
            scope.setdefault("state", {})["error"] = TOO_LARGE
            await JSONResponse({"success": False, "error": TOO_LARGE}, 413)(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit_bytes:
                raise HTTPException(413, TOO_LARGE)  # the route's handler answers it
            return message

        await self.app(scope, limited, send)
