"""``campaign-api``: serve the operator API and its console with uvicorn until SIGTERM or
Ctrl-C (both stop it cleanly: in-flight requests finish, exit 0). ``--ready-file`` gets
``{"url": ...}`` once it listens (``--port 0``: a free port), as ``sandbox/cloudapi`` does.
Bad configuration: one line and exit 78."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn

import uvicorn

from api.app import Build, create_app
from campaigns import logging as logs
from campaigns.domain.errors import CampaignError, ConfigError
from campaigns.domain.exitcodes import EXIT_CONFIG, EXIT_FAILURE, EXIT_UNAVAILABLE, EXIT_USAGE
from campaigns.settings import load_settings
from campaigns.web.serving import ReadyServer, announce, listen, stop_signals_remembered, url_of
from campaigns.wiring import build_operator

PROG = "campaign-api"
DEFAULT_PORT = 8081


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        print(f"{PROG}: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0-65535, got {text!r}")
    return int(text)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="The operator API and its executor console.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=_port, default=DEFAULT_PORT, help="0 picks a free port")
    parser.add_argument("--ready-file", type=Path, help='write {"url": ...} here once listening')
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
