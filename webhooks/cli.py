"""``campaign-webhooks`` (also ``python -m webhooks``): serve the receiver with uvicorn until
SIGTERM or Ctrl-C (in-flight requests finish, exit 0). Two sockets, one server: the public one
(``--port``, default ``WEBHOOK_PORT``) answers ``/webhooks/whatsapp``, ``/healthz`` and
``/readyz``; ``/metrics`` is served only on ``--metrics-port`` (``WEBHOOK_METRICS_PORT``), which
the Ingress never routes to: Prometheus scrapes it inside the cluster, as it scrapes the
consumer's, and no key has to be shared with it. ``--ready-file`` gets
``{"url": ..., "metricsUrl": ...}`` once both listen (``0``: a free port).
Bad configuration (no ``META_APP_SECRET`` or ``META_WEBHOOK_VERIFY_TOKEN``): one line naming
the variable, never its value, and exit 78."""

from __future__ import annotations

import argparse
import socket
import sys

import uvicorn

from campaigns import logging as logs
from campaigns.domain.errors import ConfigError
from campaigns.domain.exitcodes import EXIT_CONFIG, EXIT_UNAVAILABLE
from campaigns.settings import Settings, load_settings, require_webhook_secrets
from campaigns.web.args import port_number, service_parser
from campaigns.web.serving import (
    ByPort,
    ReadyServer,
    announce,
    listen,
    stop_signals_remembered,
    url_of,
)
from campaigns.wiring import build_receipts_queue
from webhooks.app import PATH, create_app, create_metrics_app
from webhooks.metrics import WebhookMetrics
from webhooks.outbox import QueueFactory

PROG = "campaign-webhooks"


def _parser() -> argparse.ArgumentParser:
    parser = service_parser(PROG, "Receive Meta's WhatsApp webhooks into SQS.")
    parser.add_argument(
        "--port", type=port_number, help="WEBHOOK_PORT by default; 0 picks a free port"
    )
    parser.add_argument(
        "--metrics-port",
        type=port_number,
        help="WEBHOOK_METRICS_PORT by default; 0 picks a free port",
    )
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, object] = {}
    if args.port is not None:
        overrides["webhook_port"] = args.port
    if args.metrics_port is not None:
        overrides["webhook_metrics_port"] = args.metrics_port
    settings = load_settings(**overrides)
    require_webhook_secrets(settings)
    if settings.webhook_port == settings.webhook_metrics_port != 0:
        raise ConfigError("invalid WEBHOOK_METRICS_PORT: must differ from WEBHOOK_PORT")
    return settings


def main(argv: list[str] | None = None, queue_factory: QueueFactory | None = None) -> int:
    args = _parser().parse_args(argv)
    with stop_signals_remembered() as stopped:
        try:
            settings = _settings(args)
        except ConfigError as exc:
            return _fail(str(exc), EXIT_CONFIG)
        factory = queue_factory or (lambda: build_receipts_queue(settings))
        return _serve(args, settings, factory, stopped)


def _serve(
    args: argparse.Namespace, settings: Settings, factory: QueueFactory, stopped: list[int]
) -> int:
    logs.configure(settings.log_format, settings.log_level)
    metrics = WebhookMetrics()
    app = create_app(settings, factory, metrics)
    sockets: list[socket.socket] = []
    try:
        for port in (settings.webhook_port, settings.webhook_metrics_port):
            sockets.append(listen(args.host, port))
    except OSError as exc:
        for sock in sockets:
            sock.close()
        return _fail(f"cannot listen on {args.host}: {exc.strerror or exc}", EXIT_UNAVAILABLE)
    public, private = sockets
    url, metrics_url = url_of(args.host, public), url_of(args.host, private)
    log = logs.get_logger()
    config = uvicorn.Config(
        ByPort(app, {private.getsockname()[1]: create_metrics_app(metrics)}),
        log_config=None,
        access_log=False,  # the metrics count requests; refusals are logged one line each
        server_header=False,
        timeout_graceful_shutdown=int(settings.shutdown_timeout_s),
    )

    def ready() -> None:
        announce(args.ready_file, url=url, metricsUrl=metrics_url)
        log.info(
            "webhooks.started",
            url=f"{url}{PATH}",
            metrics_url=f"{metrics_url}/metrics",
            queue=settings.campaign_receipts_queue_name,
        )

    try:
        if not stopped:  # stopped while starting: never serve
            ReadyServer(config, ready).run(sockets=sockets)
    finally:
        for sock in sockets:
            sock.close()
    log.info("webhooks.stopped", url=url)
    return 0


def _fail(message: str, code: int) -> int:
    print(f"{PROG}: {message}", file=sys.stderr)
    return code
