"""The embedded AWS endpoint: moto's server on a loopback port, DynamoDB requests serialised.

moto is not thread-safe (concurrent requests failed here with ``RuntimeError: dictionary
changed size during iteration``), while real DynamoDB applies each conditional write
atomically: without the lock a race test would measure moto, not this code. SQS requests
(long polls) are not serialised. moto may deliver one SQS message to two concurrent
receivers; real SQS is at-least-once too, and the claim step makes that harmless.

Run as a process: ``python -m sandbox.aws --port 0`` prints ``{"url": ...}`` once listening.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from types import FrameType
from typing import Any

from moto.moto_server.werkzeug_app import (  # moto's own server application
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server

from sandbox.ddbfaults import FaultDecider, FaultPlan

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


CHAOS_PATH = "/_chaos/dynamodb"


class SerialisedDynamoDB:
    """WSGI middleware: one DynamoDB request at a time, everything else passes through.

    It can also inject DynamoDB faults (``sandbox.ddbfaults``): ``PUT /_chaos/dynamodb`` with
    a fault plan as JSON, ``GET`` for the plan and what was injected."""

    def __init__(self, app: WSGIApp, faults: FaultDecider | None = None) -> None:
        self._app = app
        self._lock = threading.Lock()
        self.faults = faults or FaultDecider()
        self.dynamodb_requests = 0

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == CHAOS_PATH:
            return self._control(environ, start_response)
        target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
        if not target.startswith("DynamoDB_"):
            return self._app(environ, start_response)
        fault = self.faults.decide(target.split(".", 1)[-1])
        with self._lock:
            self.dynamodb_requests += 1
            if fault is not None and not fault.after:
                return _answer(start_response, fault.http_status, fault.body())
            captured: list[Any] = []

            def capture(status: str, headers: list[Any], exc_info: Any = None) -> Any:
                captured.append((status, headers))
                return lambda data: None

            result = self._app(environ, capture if fault else start_response)
            try:
                body = b"".join(result)  # the whole response is produced under the lock
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        if fault is not None:  # the write took effect; its answer is lost
            return _answer(start_response, fault.http_status, fault.body())
        return [body]

    def _control(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") == "PUT":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            try:
                plan = FaultPlan.from_dict(json.loads(environ["wsgi.input"].read(length) or b"{}"))
            except (ValueError, TypeError) as exc:
                return _answer(start_response, 400, json.dumps({"error": str(exc)}).encode())
            self.faults.set_plan(plan)
        state = {"plan": self.faults.plan.to_dict(), "injected": self.faults.injected}
        return _answer(start_response, 200, json.dumps(state).encode())


def _answer(start_response: StartResponse, status: int, body: bytes) -> list[bytes]:
    reason = {200: "OK", 400: "Bad Request", 500: "Internal Server Error"}.get(status, "Error")
    start_response(
        f"{status} {reason}",
        [("Content-Type", "application/x-amz-json-1.0"), ("Content-Length", str(len(body)))],
    )
    return [body]


def build_app() -> SerialisedDynamoDB:
    return SerialisedDynamoDB(DomainDispatcherApplication(create_backend_app))


class MotoServer:
    """moto's server in a thread of this process (tests) — see ``main`` for a process."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        class QuietHandler(MotoRequestHandler):
            def log_request(self, *args: Any, **kwargs: Any) -> None:
                return None

        self.app = build_app()
        self._server: BaseWSGIServer = make_server(
            host, port, self.app, threaded=True, request_handler=QuietHandler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self._server.host}:{self._server.port}"

    def start(self) -> MotoServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.aws", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ready-file", type=Path)
    args = parser.parse_args(argv)
    server = MotoServer(args.host, args.port)
    stopping = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    server.start()
    line = json.dumps({"url": server.url})
    if args.ready_file:
        args.ready_file.write_text(line)
    print(line, flush=True)
    stopping.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
