"""The executor console: two server-rendered pages (``/signin``, ``/``) and their assets
(``/static``), all from this package. The pages are anonymous and carry no data: the script
reads and changes everything through the JSON API with ``fetch``, signed in by the session
cookie (``POST /api/session``) and sending its ``X-CSRF-Token`` on every state change.

Every page answers with a strict Content-Security-Policy (``default-src 'self'``): no inline
script, style or event handler, nothing from another origin (no CDN), no framing.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

HERE = Path(__file__).parent
TEMPLATES = Jinja2Templates(directory=HERE / "templates")

# What the browser may load and do on the console's pages: its own origin only.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "object-src 'none'",
    )
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _page(request: Request, template: str, title: str) -> HTMLResponse:
    # ``root`` is the prefix the app is mounted under (a proxy's root_path), for the script's
    # fetches and the asset links.
    root = str(request.scope.get("root_path", "")).rstrip("/")
    return TEMPLATES.TemplateResponse(
        request, template, {"root": root, "title": title}, headers=PAGE_HEADERS
    )


def install(app: FastAPI) -> None:
    """Mount the console's pages and assets on ``app`` (after the API's routes)."""
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.get("/", name="console", response_class=HTMLResponse, include_in_schema=False)
    def console(request: Request) -> HTMLResponse:
        """The executor console (signs in first if there is no session)."""
        return _page(request, "console.html", "Campaign Executor")

    @app.get("/signin", name="signin", response_class=HTMLResponse, include_in_schema=False)
    def signin(request: Request) -> HTMLResponse:
        """The sign-in form: an operator key traded for a session cookie."""
        return _page(request, "signin.html", "Sign in · Campaign Executor")
