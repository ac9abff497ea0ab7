"""``/metrics`` (Prometheus), ``/healthz`` (the loop is alive) and ``/readyz`` (taking work)."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

LIVENESS_S = 120.0  # the loop must have turned within this long to be healthy


class HealthState:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._beat = time.monotonic()
        self.ready = False
        self.draining = False

    def beat(self) -> None:
        with self._lock:
            self._beat = time.monotonic()

    def alive(self) -> bool:
        with self._lock:
            return time.monotonic() - self._beat < LIVENESS_S


class HealthServer:
    def __init__(
        self,
        registry: CollectorRegistry,
        state: HealthState,
        port: int,
        host: str = "0.0.0.0",  # noqa: S104 (Prometheus and the kubelet probe from outside)
    ) -> None:
        handler = _handler(registry, state)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> HealthServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _handler(registry: CollectorRegistry, state: HealthState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._answer(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                ok = state.alive()
                self._answer(200 if ok else 503, b"ok\n" if ok else b"stalled\n")
            elif path == "/readyz":
                ok = state.ready and not state.draining
                self._answer(200 if ok else 503, b"ready\n" if ok else b"not ready\n")
            else:
                self._answer(404, b"not found\n")

        def _answer(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return None

    return Handler
