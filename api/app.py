"""The app factory: the operator core (built once, from the settings) behind the JSON API,
then the console. ``build`` makes the core: the real adapters by default, in-memory ones in
tests (as ``producer.cli.main``'s ``build``)."""

from __future__ import annotations

from collections.abc import Callable

import swagger_ui_bundle
from fastapi import FastAPI, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.staticfiles import StaticFiles

from api import auth, console, errors, routes
from api.auth import Signed
from api.limits import BodyLimit
from api.metrics import CONTENT_TYPE, ApiMetrics
from api.observe import Observe
from api.schemas import Health
from campaigns.operator.commands import Producer
from campaigns.settings import Settings, require_operator_keys
from campaigns.wiring import build_operator

Build = Callable[[Settings], Producer]  # settings -> the operator core on its adapters

TITLE = "campaign-executor operator API"
DOCS_ASSETS = "/docs/assets"  # Swagger UI's script and style, served from swagger-ui-bundle
VERSION = "1"


def create_app(settings: Settings, build: Build = build_operator) -> FastAPI:
    """Refuses (``ConfigError``) without ``OPERATOR_API_KEYS``. CORS is off: no middleware
    answers another origin, so a browser keeps other sites' scripts out of the answers."""
    keys = require_operator_keys(settings)
    app = FastAPI(title=TITLE, version=VERSION, docs_url=None, redoc_url=None)
    app.state.settings = settings
    app.state.producer = build(settings)
    _ = app.state.producer.prices  # PRICES_FILE read now: a bad table refuses to start
    app.state.keyring = auth.KeyRing(keys, settings.api_session_ttl_s)
    metrics = ApiMetrics()
    app.state.metrics = metrics
    errors.install(app)
    app.include_router(auth.router)
    app.include_router(routes.router)
    _operations(app, metrics)
    # The outermost last: Observe sees CatchAll's 500 (and counts it, audits it).
    app.add_middleware(BodyLimit)
    app.add_middleware(errors.CatchAll)
    app.add_middleware(Observe, metrics=metrics)
    console.install(app)
    return app


def _operations(app: FastAPI, metrics: ApiMetrics) -> None:
    @app.get("/healthz", name="healthz", response_model=Health, tags=["operations"])
    def healthz() -> Health:
        """Liveness: the process answers (it checks no AWS service)."""
        return Health()

    @app.get("/metrics", name="metrics", tags=["operations"], response_class=Response)
    def prometheus(_: Signed) -> Response:
        """Prometheus text: requests and latency by route template (behind the key)."""
        return Response(metrics.exposition(), media_type=CONTENT_TYPE)

    app.mount(
        DOCS_ASSETS,
        StaticFiles(directory=swagger_ui_bundle.swagger_ui_path),
        name="docs-assets",
    )

    @app.get("/docs", include_in_schema=False)
    def docs() -> Response:
        """Swagger UI over ``/openapi.json``, its script and style served by this app (from the
        swagger-ui-bundle package): no CDN, so the page works where the API has no internet."""
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{TITLE}: docs",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
        )
