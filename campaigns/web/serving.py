"""What every HTTP service here does to listen: a TCP socket made the right way, a loopback
URL to announce, a ready file written once uvicorn accepts connections, and SIGTERM/SIGINT
ending the process with exit 0 once in-flight requests are done."""

from __future__ import annotations

import json
import os
import signal
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

WILDCARDS = ("0.0.0.0", "::", "")  # noqa: S104 (names, to announce a loopback URL instead)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def listen(host: str, port: int) -> socket.socket:
    """A bound TCP socket (port 0: a free one); uvicorn listens on it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets whose proto says TCP;
    # without it every keep-alive answer waits ~40 ms for a delayed ACK (Nagle), measured here.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def url_of(host: str, sock: socket.socket) -> str:
    port = sock.getsockname()[1]
    shown = "127.0.0.1" if host in WILDCARDS else host
    return f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"


def announce(ready_file: Path | None, **fields: Any) -> None:
    """Write ``{"url": ..., ...}`` to the ready file: whole, then renamed, so no reader sees
    half of it."""
    if ready_file is not None:
        partial = ready_file.with_name(ready_file.name + ".partial")
        partial.write_text(json.dumps(fields) + "\n", encoding="utf-8")
        os.replace(partial, ready_file)


class ReadyServer(uvicorn.Server):
    """uvicorn's server, announcing itself once its sockets accept connections."""

    def __init__(self, config: uvicorn.Config, on_ready: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_ready = on_ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if not self.should_exit:
            self._on_ready()


@contextmanager
def stop_signals_remembered() -> Iterator[list[int]]:
    """The stop signals that arrive inside the block, remembered (not fatal). Installed
    before and after uvicorn's own handlers: uvicorn re-raises the signal that stopped it
    once it has shut down, and it lands here (exit 0) instead of killing the process. A
    signal before serving starts is in the list: the caller then never serves."""
    stopped: list[int] = []

    def remember(signum: int, frame: FrameType | None) -> None:
        stopped.append(signum)

    previous = {sig: signal.signal(sig, remember) for sig in STOP_SIGNALS}
    try:
        yield stopped
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class ByPort:
    """One ASGI app per listening port, for one uvicorn server on several sockets: a request
    goes to the app of the port it arrived on (the scope's ``server``), any other to
    ``default``; the lifespan goes to ``default``. Lets a service keep, say, ``/metrics`` off
    its public port without a second server."""

    def __init__(self, default: ASGIApp, by_port: dict[int, ASGIApp]) -> None:
        self.default = default
        self.by_port = by_port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        server = scope.get("server") if scope["type"] != "lifespan" else None
        port = server[1] if server and len(server) > 1 else None
        app = self.by_port.get(port, self.default) if isinstance(port, int) else self.default
        await app(scope, receive, send)
