"""``campaign-api``: serve the operator API and its console with uvicorn until SIGTERM or
Ctrl-C (both stop it cleanly: in-flight requests finish, exit 0). ``--ready-file`` gets
``{"url": ...}`` once it listens (``--port 0``: a free port), as ``sandbox/cloudapi`` does.
Bad configuration: one line and exit 78."""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import NoReturn

import uvicorn

from api.app import Build, create_app
from campaigns import logging as logs
from campaigns.domain.errors import CampaignError, ConfigError
from campaigns.domain.exitcodes import EXIT_CONFIG, EXIT_FAILURE, EXIT_UNAVAILABLE, EXIT_USAGE
from campaigns.settings import load_settings
from campaigns.wiring import build_operator

PROG = "campaign-api"
DEFAULT_PORT = 8081
WILDCARDS = ("0.0.0.0", "::", "")  # noqa: S104 (names, to announce a loopback URL instead)


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


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _url(host: str, sock: socket.socket) -> str:
    port = sock.getsockname()[1]
    shown = "127.0.0.1" if host in WILDCARDS else host
    return f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"


def _announce(url: str, ready_file: Path | None) -> None:
    if ready_file is not None:  # written whole, then renamed: no reader sees half of it
        partial = ready_file.with_name(ready_file.name + ".partial")
        partial.write_text(json.dumps({"url": url}) + "\n", encoding="utf-8")
        os.replace(partial, ready_file)


class _Server(uvicorn.Server):
    """uvicorn's server, announcing itself once its socket accepts connections."""

    def __init__(self, config: uvicorn.Config, on_ready: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_ready = on_ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if not self.should_exit:
            self._on_ready()


def main(argv: list[str] | None = None, build: Build = build_operator) -> int:
    args = _parser().parse_args(argv)
    stopped: list[int] = []

    def remember(signum: int, frame: FrameType | None) -> None:
        # Before and after uvicorn's own handlers: uvicorn re-raises the signal that stopped
        # it once it has shut down, and it lands here (exit 0) instead of killing us.
        stopped.append(signum)

    previous = {sig: signal.signal(sig, remember) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return _serve(args, build, stopped)
    except ConfigError as exc:
        return _fail(str(exc), EXIT_CONFIG)
    except CampaignError as exc:
        return _fail(str(exc), EXIT_FAILURE)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _serve(args: argparse.Namespace, build: Build, stopped: list[int]) -> int:
    settings = load_settings()
    logs.configure(settings.log_format, settings.log_level)
    app = create_app(settings, build)
    try:
        sock = _listen(args.host, args.port)
    except OSError as exc:
        return _fail(
            f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", EXIT_UNAVAILABLE
        )
    url = _url(args.host, sock)
    log = logs.get_logger()
    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,  # the metrics count requests; api.audit records every change
        server_header=False,
        timeout_graceful_shutdown=int(settings.shutdown_timeout_s),
    )

    def ready() -> None:
        _announce(url, args.ready_file)
        log.info("api.started", url=url, operators=len(settings.operator_keys))

    if stopped:  # stopped while starting: never serve
        sock.close()
        return 0
    with sock:
        _Server(config, ready).run(sockets=[sock])
    log.info("api.stopped", url=url)
    return 0


def _fail(message: str, code: int) -> int:
    print(f"{PROG}: {message}", file=sys.stderr)
    return code
