"""The emulator's HTTP plumbing: ``CloudApiEmulator`` serves ``EmulatorCore``'s replies from a
threading HTTP server in a daemon thread, and carries out the hangs, resets and delays the
replies ask for; it starts and stops the core's webhook dispatcher with the server."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import struct
import sys
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from sandbox.cloudapi.decisions import SANDBOX_TOKEN, EmulatorCore
from sandbox.cloudapi.deliveryrules import DeliveryRule
from sandbox.cloudapi.records import AcceptedMessage
from sandbox.cloudapi.replies import Reply, error_reply
from sandbox.cloudapi.webhookconfig import WebhookConfig
from sandbox.faults import FaultRule

MAX_BODY_BYTES = 1 << 20
STOP_GRACE_S = 2.0  # how long stop() waits for open connections to close


class CloudApiEmulator:
    """The emulated Cloud API: an HTTP server in a daemon thread, plus its recorded state."""

    def __init__(
        self,
        *,
        access_token: str = SANDBOX_TOKEN,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 0,
        rules: Sequence[FaultRule] = (),
        max_rate_per_s: float | None = None,
        pair_interval_s: float | None = None,
        webhooks: WebhookConfig | None = None,
        delivery_rules: Sequence[DeliveryRule] = (),
    ) -> None:
        self.core = EmulatorCore(
            access_token=access_token,
            seed=seed,
            rules=rules,
            max_rate_per_s=max_rate_per_s,
            pair_interval_s=pair_interval_s,
            webhooks=webhooks,
            delivery_rules=delivery_rules,
        )
        self._address = (host, port)
        self._lock = threading.Lock()
        self._connections_closed = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._url: str | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Bind, listen and serve in a daemon thread; returns once the socket is listening."""
        if self._server is not None:
            raise RuntimeError("emulator already started")
        self._stopping.clear()
        server = _Server(self._address, self)
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="sandbox-cloudapi",
            daemon=True,
        )
        thread.start()
        self.core.webhooks.start()
        self._server, self._thread = server, thread
        host, port = server.server_address[:2]
        self._url = f"http://{host!s}:{port}"

    def stop(self) -> None:
        """Stop serving, wake hung requests, close every socket; idempotent."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._server = self._thread = None
        self._stopping.set()
        server.shutdown()
        with self._lock:
            for connection in self._connections:
                with contextlib.suppress(OSError):  # already closed by its handler
                    connection.shutdown(socket.SHUT_RDWR)
            self._connections_closed.wait_for(lambda: not self._connections, STOP_GRACE_S)
        server.server_close()
        thread.join()
        self.core.webhooks.stop()

    def __enter__(self) -> CloudApiEmulator:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL like ``http://127.0.0.1:40123``; clients append ``/v25.0/<id>/messages``."""
        if self._url is None:
            raise RuntimeError("emulator not started")
        return self._url

    # -- state (kept by the core) ----------------------------------------------------------

    def accepted(self) -> list[AcceptedMessage]:
        return self.core.accepted()

    def set_rules(self, rules: Sequence[FaultRule]) -> None:
        """Replace the rules; their firing counts and the seeded RNG start afresh."""
        self.core.set_rules(rules)

    def reset(self) -> None:
        """Forget accepted messages, stats, rules and rate-limit history."""
        self.core.reset()

    def stats(self) -> dict[str, int]:
        return self.core.stats()

    def set_delivery_rules(self, rules: Sequence[DeliveryRule]) -> None:
        self.core.set_delivery_rules(rules)

    def configure_webhooks(self, config: WebhookConfig) -> None:
        """Deliver with ``config`` from the next POST on."""
        self.core.webhooks.configure(config)

    def webhooks(self) -> dict[str, Any]:
        """The delivery's options (no secret), stats, pending count and recent POSTs."""
        return self.core.webhooks.snapshot()

    # -- called from handler threads -------------------------------------------------------

    def _track(self, connection: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)
                self._connections_closed.notify_all()

    def _wait(self, seconds: float) -> None:
        """Sleep, but wake up at once when the emulator stops."""
        self._stopping.wait(seconds)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], emulator: CloudApiEmulator) -> None:
        self.emulator = emulator
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # Skip HTTPServer.server_bind: its reverse DNS lookup of the host can stall start-up.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return  # the client went away (or stop() shut the socket): nothing to report
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "SandboxCloudApi/1.0"

    def version_string(self) -> str:
        return self.server_version

    @property
    def _emulator(self) -> CloudApiEmulator:
        assert isinstance(self.server, _Server)
        return self.server.emulator

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes: without this, Nagle's algorithm meets the
        # client's delayed ACK and every answer waits ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._emulator._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self._emulator._track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: no per-request lines on stderr (and so never a token)."""

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def _dispatch(self, method: str) -> None:
        body = self._read_body()
        if body is None:
            return
        path = urlsplit(self.path).path
        auth = self.headers.get("Authorization")
        self._answer(self._emulator.core.answer(method, path, auth, body))

    def _read_body(self) -> bytes | None:
        """The request body, or None after answering a request whose body cannot be read."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self._answer(error_reply(100, "Send a Content-Length", 411, close=True))
            return None
        raw_length = self.headers.get("Content-Length", "0")
        length = int(raw_length) if raw_length.isdigit() else -1
        if length < 0 or length > MAX_BODY_BYTES:
            self._answer(error_reply(100, "Bad or too large Content-Length", 413, close=True))
            return None
        return self.rfile.read(length)

    def _answer(self, reply: Reply) -> None:
        if reply.delay_s > 0:
            self._emulator._wait(reply.delay_s)
        if reply.action == "hang":
            self._emulator._wait(reply.hang_s)
            self.close_connection = True  # close without ever answering
            return
        if reply.action == "reset":
            self._reset_connection()
            return
        self.send_response(reply.status)
        if reply.content_type is not None:
            self.send_header("Content-Type", reply.content_type)
        for name, value in reply.headers:
            self.send_header(name, value)
        if reply.close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    def _reset_connection(self) -> None:
        """Close abruptly: SO_LINGER 0 makes the kernel send RST instead of FIN."""
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()  # drop the makefile reference so close() really closes the socket
        self.connection.close()
