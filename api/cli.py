"""``campaign-api``: serve the operator API and its console with uvicorn until SIGTERM or
Ctrl-C (both stop it cleanly: in-flight requests finish, exit 0). ``--ready-file`` gets
``{"url": ...}`` once it listens (``--port 0``: a free port), as ``sandbox/cloudapi`` does.
Bad configuration: one line and exit 78."""

from __future__ import annotations

import argparse
import sys

import uvicorn

from api.app import Build, create_app
from campaigns import logging as logs
from campaigns.domain.errors import CampaignError, ConfigError
from campaigns.domain.exitcodes import EXIT_CONFIG, EXIT_FAILURE, EXIT_UNAVAILABLE
from campaigns.settings import load_settings
from campaigns.web.args import port_number, service_parser
from campaigns.web.serving import ReadyServer, announce, listen, stop_signals_remembered, url_of
from campaigns.wiring import build_operator

PROG = "campaign-api"
DEFAULT_PORT = 8081


def _parser() -> argparse.ArgumentParser:
    parser = service_parser(PROG, "The operator API and its executor console.")
    parser.add_argument(
        "--port", type=port_number, default=DEFAULT_PORT, help="0 picks a free port"
    )
    return parser


def main(argv: list[str] | None = None, build: Build = build_operator) -> int:
    args = _parser().parse_args(argv)
    with stop_signals_remembered() as stopped:
        try:
            return _serve(args, build, stopped)
        except ConfigError as exc:
            return _fail(str(exc), EXIT_CONFIG)
        except CampaignError as exc:
            return _fail(str(exc), EXIT_FAILURE)


def _serve(args: argparse.Namespace, build: Build, stopped: list[int]) -> int:
    settings = load_settings()
    logs.configure(settings.log_format, settings.log_level)
    app = create_app(settings, build)
    try:
        sock = listen(args.host, args.port)
    except OSError as exc:
        return _fail(
            f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", EXIT_UNAVAILABLE
        )
    url = url_of(args.host, sock)
    log = logs.get_logger()
    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,  # the metrics count requests; api.audit records every change
        server_header=False,
        timeout_graceful_shutdown=int(settings.shutdown_timeout_s),
    )

    def ready() -> None:
        announce(args.ready_file, url=url)
        log.info("api.started", url=url, operators=len(settings.operator_keys))

    if stopped:  # stopped while starting: never serve
        sock.close()
        return 0
    with sock:
        ReadyServer(config, ready).run(sockets=[sock])
    log.info("api.stopped", url=url)
    return 0


def _fail(message: str, code: int) -> int:
    print(f"{PROG}: {message}", file=sys.stderr)
    return code
