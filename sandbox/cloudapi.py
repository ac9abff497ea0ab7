"""A local stand-in for Meta's WhatsApp Cloud API send endpoint, with scripted faults.

Embed it (``with CloudApiEmulator() as api: ... api.url``) or run it as its own process::

    python -m sandbox.cloudapi --port 0 --token T --seed 1 [--rules-file rules.json]

It validates template sends like Meta does, answers with Meta's success and error JSON, records
what it accepted, and misbehaves on purpose as told by ``FaultRule``s (see ``sandbox.faults``).
Control endpoints under ``/_sandbox/`` let tests and other processes inspect and steer it.
"""

from __future__ import annotations

import argparse
import contextlib
import hmac
import itertools
import json
import os
import re
import secrets
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Literal
from urllib.parse import urlsplit

import requests

from sandbox.faults import FaultRule, RuleBook

__all__ = ["AcceptedMessage", "CloudApiEmulator", "FaultRule", "SandboxControl", "main"]

SEND_PATH = re.compile(r"/(v\d+\.\d+)/([^/]+)/messages")
TO_PATTERN = re.compile(r"\+?[1-9][0-9]{6,14}")  # E.164: at most 15 digits
MAX_CALLBACK_DATA_CHARS = 512  # Meta: biz_opaque_callback_data is capped at 512 characters
MAX_BODY_BYTES = 1 << 20
CONTROL_TIMEOUT_S = 5.0
SANDBOX_TOKEN = "sandbox-token"  # noqa: S105 - a local placeholder, not a secret
STOP_GRACE_S = 2.0  # how long stop() waits for open connections to close
STAT_NAMES = ("requests", "accepted", "errors", "hangs", "resets", "html")

_SEND_KEYS = {"messaging_product", "recipient_type", "to", "type", "template"}
_SEND_KEYS |= {"biz_opaque_callback_data"}
_TEMPLATE_KEYS = {"name", "language", "components", "namespace"}
_CONTROL_ROUTES = {
    "/_sandbox/messages": "GET",
    "/_sandbox/stats": "GET",
    "/_sandbox/rules": "PUT",
    "/_sandbox/reset": "POST",
}
ERROR_TEXTS = {
    0: "AuthException",
    1: "API Unknown",
    2: "API Service",
    3: "API Method",
    4: "API Too Many Calls",
    10: "Permission Denied",
    100: "Invalid parameter",
    190: "Invalid OAuth access token",
    368: "Temporarily blocked for policies violations",
    80007: "Rate limit issues",
    130429: "Rate limit hit",
    131000: "Something went wrong",
    131016: "Service unavailable",
    131026: "Message undeliverable",
    131047: "Re-engagement message",
    131048: "Spam rate limit hit",
    131049: "Meta chose not to deliver",
    131050: "User has stopped marketing messages",
    131056: "(Business Account, Consumer Account) pair rate limit hit",
    132000: "Number of parameters does not match the expected number of params",
    132001: "Template name does not exist in the translation",
    133004: "Server temporarily unavailable",
}
_wamid_seq = itertools.count(1)  # makes wamids unique across the process


def error_status(code: int) -> int:
    """The HTTP status Meta pairs with an error code (logic must key on the code, not this)."""
    if code in (0, 190):
        return 401
    if code in (3, 10) or 200 <= code <= 299:
        return 403
    if code == 131016:
        return 503
    if code in (1, 2, 131000, 133004):
        return 500
    return 400


@dataclass(frozen=True)
class AcceptedMessage:
    """One send the emulator accepted (answered 200, or accepted before losing the answer)."""

    wamid: str
    to: str  # digits only, no '+'
    phone_number_id: str
    template_name: str
    language: str
    components: list[dict[str, Any]]
    biz_opaque_callback_data: str | None
    accepted_at: float  # time.time()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AcceptedMessage:
        callback = d.get("biz_opaque_callback_data")
        return cls(
            wamid=str(d["wamid"]),
            to=str(d["to"]),
            phone_number_id=str(d["phone_number_id"]),
            template_name=str(d["template_name"]),
            language=str(d["language"]),
            components=list(d["components"]),
            biz_opaque_callback_data=None if callback is None else str(callback),
            accepted_at=float(d["accepted_at"]),
        )


@dataclass(frozen=True)
class _SendRequest:
    to: str  # as sent
    template_name: str
    language: str
    components: list[dict[str, Any]]
    callback_data: str | None

    @property
    def digits(self) -> str:
        return self.to.removeprefix("+")


@dataclass(frozen=True)
class _Reply:
    """What the handler does with one request: answer, or hang / reset without answering."""

    status: int = 200
    body: bytes = b""
    content_type: str | None = "application/json"
    headers: tuple[tuple[str, str], ...] = ()
    close: bool = False
    delay_s: float = 0.0
    action: Literal["answer", "hang", "reset"] = "answer"
    hang_s: float = 0.0


class _InvalidSendError(Exception):
    def __init__(self, details: str) -> None:
        super().__init__(details)
        self.details = details


def _json_reply(status: int, payload: object, **kwargs: Any) -> _Reply:
    return _Reply(status=status, body=json.dumps(payload).encode(), **kwargs)


def _error_reply(code: int, details: str, status: int | None = None, **kwargs: Any) -> _Reply:
    error = {
        "message": f"(#{code}) {ERROR_TEXTS.get(code, 'Sandbox fault')}",
        "type": "OAuthException",
        "code": code,
        "error_data": {"messaging_product": "whatsapp", "details": details},
        "fbtrace_id": secrets.token_urlsafe(12),
    }
    return _json_reply(status or error_status(code), {"error": error}, **kwargs)


def _html_reply(status: int) -> _Reply:
    title = f"{status} {HTTPStatus(status).phrase}"
    body = f"<html><body><h1>{title}</h1></body></html>".encode()
    return _Reply(status=status, body=body, content_type="text/html; charset=utf-8")


def _parse_send(body: bytes) -> _SendRequest:
    """Validate a template send as Meta does; ``_InvalidSendError`` names the problem."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise _InvalidSendError("Request body is not valid JSON") from exc
    if not isinstance(payload, dict):
        raise _InvalidSendError("Request body must be a JSON object")
    unknown = sorted(set(payload) - _SEND_KEYS)
    if unknown:
        raise _InvalidSendError(f"Unexpected key(s): {', '.join(unknown)}")
    if payload.get("messaging_product") != "whatsapp":
        raise _InvalidSendError("messaging_product must be 'whatsapp'")
    if payload.get("recipient_type", "individual") != "individual":
        raise _InvalidSendError("recipient_type must be 'individual'")
    to = payload.get("to")
    if not isinstance(to, str) or TO_PATTERN.fullmatch(to) is None:
        raise _InvalidSendError("to must be a phone number with country code")
    if payload.get("type") != "template":
        raise _InvalidSendError("type must be 'template'")
    template = payload.get("template")
    if not isinstance(template, dict):
        raise _InvalidSendError("template must be an object")
    unknown = sorted(set(template) - _TEMPLATE_KEYS)
    if unknown:
        raise _InvalidSendError(f"Unexpected template key(s): {', '.join(unknown)}")
    name = template.get("name")
    if not isinstance(name, str) or not name:
        raise _InvalidSendError("template.name must be a non-empty string")
    language = template.get("language")
    code = language.get("code") if isinstance(language, dict) else None
    if not isinstance(code, str) or not code:
        raise _InvalidSendError("template.language.code must be a non-empty string")
    components = template.get("components", [])
    if not isinstance(components, list) or not all(isinstance(c, dict) for c in components):
        raise _InvalidSendError("template.components must be a list of objects")
    callback = payload.get("biz_opaque_callback_data")
    if callback is not None and (
        not isinstance(callback, str) or len(callback) > MAX_CALLBACK_DATA_CHARS
    ):
        raise _InvalidSendError(
            f"biz_opaque_callback_data must be a string of at most {MAX_CALLBACK_DATA_CHARS} chars"
        )
    return _SendRequest(to, name, code, components, callback)


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
    ) -> None:
        if max_rate_per_s is not None and not max_rate_per_s > 0:
            raise ValueError("max_rate_per_s must be positive")
        if pair_interval_s is not None and not pair_interval_s >= 0:
            raise ValueError("pair_interval_s must not be negative")
        self._access_token = access_token
        self._address = (host, port)
        self._seed = seed
        self._max_rate_per_s = max_rate_per_s
        self._pair_interval_s = pair_interval_s
        self._lock = threading.Lock()
        self._connections_closed = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._rulebook = RuleBook(rules, seed)
        self._accepted: list[AcceptedMessage] = []
        self._stats = dict.fromkeys(STAT_NAMES, 0)
        self._window: deque[float] = deque()  # monotonic times of recent send requests
        self._last_accept: dict[str, float] = {}  # digits -> monotonic time
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

    # -- state -----------------------------------------------------------------------------

    def accepted(self) -> list[AcceptedMessage]:
        with self._lock:
            return list(self._accepted)

    def set_rules(self, rules: Sequence[FaultRule]) -> None:
        """Replace the rules; their firing counts and the seeded RNG start afresh."""
        rulebook = RuleBook(rules, self._seed)
        with self._lock:
            self._rulebook = rulebook

    def reset(self) -> None:
        """Forget accepted messages, stats, rules and rate-limit history."""
        with self._lock:
            self._accepted.clear()
            self._stats = dict.fromkeys(STAT_NAMES, 0)
            self._rulebook = RuleBook((), self._seed)
            self._window.clear()
            self._last_accept.clear()

    def stats(self) -> dict[str, int]:
        with self._lock:
            return dict(self._stats)

    # -- request handling (called from handler threads) ------------------------------------

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

    def _handle_send(self, phone_number_id: str, authorization: str | None, body: bytes) -> _Reply:
        with self._lock:
            self._stats["requests"] += 1
            reply = self._decide_send(phone_number_id, authorization, body, time.monotonic())
            if reply.action == "hang":
                self._stats["hangs"] += 1
            elif reply.action == "reset":
                self._stats["resets"] += 1
            elif reply.content_type is not None and reply.content_type.startswith("text/html"):
                self._stats["html"] += 1
            elif reply.status >= 400:
                self._stats["errors"] += 1
        return reply

    def _decide_send(
        self, phone_number_id: str, authorization: str | None, body: bytes, now: float
    ) -> _Reply:
        """Token, throughput, body, fault rules, pair rate, accept: in that order. Lock held."""
        expected = f"Bearer {self._access_token}".encode()
        if not hmac.compare_digest((authorization or "").encode(), expected):
            return _error_reply(190, "Invalid or missing access token")
        if self._max_rate_per_s is not None:
            self._window.append(now)
            while self._window[0] <= now - 1.0:
                self._window.popleft()
            if len(self._window) > self._max_rate_per_s:
                return _error_reply(130429, "Throughput limit of this phone number exceeded")
        try:
            send = _parse_send(body)
        except _InvalidSendError as exc:
            return _error_reply(100, exc.details)
        decision = self._rulebook.decide(send.digits)
        rule = decision.rule
        if rule is None:
            last = self._last_accept.get(send.digits)
            interval_s = self._pair_interval_s
            if interval_s is not None and last is not None and now - last < interval_s:
                details = "Too many messages sent to this recipient"
                return _error_reply(131056, details, delay_s=decision.delay_s)
            return replace(self._accept(phone_number_id, send, now), delay_s=decision.delay_s)
        if rule.hang_s is not None or rule.reset:
            if rule.after_accept:
                self._accept(phone_number_id, send, now)
            action: Literal["hang", "reset"] = "hang" if rule.hang_s is not None else "reset"
            return _Reply(action=action, hang_s=rule.hang_s or 0.0, delay_s=decision.delay_s)
        if rule.html:
            reply = _html_reply(rule.http_status or 502)
        elif rule.empty:
            reply = _Reply(status=rule.http_status or 400, content_type=None)
        else:
            assert rule.code is not None  # a terminal rule without hang/reset/html/empty
            reply = _error_reply(rule.code, "Injected by a sandbox fault rule", rule.http_status)
        return replace(reply, delay_s=decision.delay_s)

    def _accept(self, phone_number_id: str, send: _SendRequest, now: float) -> _Reply:
        wamid = f"wamid.SBX{next(_wamid_seq):010d}{secrets.token_hex(8)}"
        message = AcceptedMessage(
            wamid=wamid,
            to=send.digits,
            phone_number_id=phone_number_id,
            template_name=send.template_name,
            language=send.language,
            components=send.components,
            biz_opaque_callback_data=send.callback_data,
            accepted_at=time.time(),
        )
        self._accepted.append(message)
        self._stats["accepted"] += 1
        self._last_accept[send.digits] = now
        return _json_reply(
            200,
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": send.to, "wa_id": send.digits}],
                "messages": [{"id": wamid, "message_status": "accepted"}],
            },
        )

    def _handle_control(self, method: str, path: str, body: bytes) -> _Reply:
        expected = _CONTROL_ROUTES.get(path)
        if expected is None:
            return _error_reply(100, f"Unknown path {path}", 404)
        if method != expected:
            return _error_reply(
                100, f"Use {expected} on {path}", 405, headers=(("Allow", expected),)
            )
        if path == "/_sandbox/messages":
            return _json_reply(200, {"messages": [m.to_dict() for m in self.accepted()]})
        if path == "/_sandbox/stats":
            return _json_reply(200, self.stats())
        if path == "/_sandbox/reset":
            self.reset()
            return _json_reply(200, {"reset": True})
        try:
            payload = json.loads(body)
            raw_rules = payload["rules"] if isinstance(payload, dict) else None
            if not isinstance(raw_rules, list):
                raise ValueError('expected {"rules": [...]}')
            rules = [FaultRule.from_dict(r) for r in raw_rules]
        except (ValueError, TypeError, KeyError, RecursionError) as exc:
            return _error_reply(100, f"Bad rules: {exc}")
        self.set_rules(rules)
        return _json_reply(200, {"rules": len(rules)})


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
        send = SEND_PATH.fullmatch(path)
        if send is not None and method == "POST":
            auth = self.headers.get("Authorization")
            reply = self._emulator._handle_send(send.group(2), auth, body)
        elif send is not None:
            details = f"Use POST on {path}"
            reply = _error_reply(100, details, 405, headers=(("Allow", "POST"),))
        elif path.startswith("/_sandbox/"):
            reply = self._emulator._handle_control(method, path, body)
        else:
            reply = _error_reply(100, f"Unknown path {path}", 404)
        self._answer(reply)

    def _read_body(self) -> bytes | None:
        """The request body, or None after answering a request whose body cannot be read."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self._answer(_error_reply(100, "Send a Content-Length", 411, close=True))
            return None
        raw_length = self.headers.get("Content-Length", "0")
        length = int(raw_length) if raw_length.isdigit() else -1
        if length < 0 or length > MAX_BODY_BYTES:
            self._answer(_error_reply(100, "Bad or too large Content-Length", 413, close=True))
            return None
        return self.rfile.read(length)

    def _answer(self, reply: _Reply) -> None:
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


class SandboxControl:
    """Client for the ``/_sandbox/`` control endpoints of a running emulator."""

    def __init__(self, url: str, *, timeout_s: float = CONTROL_TIMEOUT_S) -> None:
        self._url = url.rstrip("/")
        self._timeout_s = timeout_s

    def messages(self) -> list[AcceptedMessage]:
        payload = self._call("GET", "/_sandbox/messages")
        return [AcceptedMessage.from_dict(m) for m in payload["messages"]]

    def set_rules(self, rules: Sequence[FaultRule | Mapping[str, Any]]) -> None:
        """Replace the rules; raises ``ValueError`` on a rule this side or the server refuses."""
        checked = [r if isinstance(r, FaultRule) else FaultRule.from_dict(r) for r in rules]
        self._call("PUT", "/_sandbox/rules", {"rules": [r.to_dict() for r in checked]})

    def reset(self) -> None:
        self._call("POST", "/_sandbox/reset")

    def stats(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in self._call("GET", "/_sandbox/stats").items()}

    def _call(self, method: str, path: str, body: object = None) -> dict[str, Any]:
        url = self._url + path
        with requests.request(method, url, json=body, timeout=self._timeout_s) as response:
            if response.status_code == 400:
                raise ValueError(response.json()["error"]["error_data"]["details"])
            response.raise_for_status()
            payload = response.json()
        if not isinstance(payload, dict):
            raise ValueError(f"unexpected answer from {url}: {payload!r}")
        return payload


def _load_rules(path: str) -> list[FaultRule]:
    """Rules from a JSON file holding either a list of rules or ``{"rules": [...]}``."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    raw_rules = data.get("rules") if isinstance(data, dict) else data
    if not isinstance(raw_rules, list):
        raise ValueError('expected a list of rules or {"rules": [...]}')
    return [FaultRule.from_dict(r) for r in raw_rules]


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.cloudapi", description="Local WhatsApp Cloud API emulator."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--token", default=SANDBOX_TOKEN, help="the accepted access token")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fault-rule RNG")
    parser.add_argument("--rules-file", help="JSON list of fault rules")
    parser.add_argument("--ready-file", help='also write {"url": ...} here once listening')
    parser.add_argument("--max-rate-per-s", type=float, help="answer 130429 above this rate")
    parser.add_argument("--pair-interval-s", type=float, help="answer 131056 within this gap")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM or SIGINT; print one ``{"url": ...}`` line once listening."""
    args = _build_parser().parse_args(argv)
    try:
        rules = _load_rules(args.rules_file) if args.rules_file else []
        emulator = CloudApiEmulator(
            access_token=args.token,
            host=args.host,
            port=args.port,
            seed=args.seed,
            rules=rules,
            max_rate_per_s=args.max_rate_per_s,
            pair_interval_s=args.pair_interval_s,
        )
    except (OSError, ValueError) as exc:
        print(f"sandbox.cloudapi: {exc}", file=sys.stderr)
        return 2
    stop_requested = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop_requested.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        emulator.start()
        ready = json.dumps({"url": emulator.url})
        if args.ready_file:  # written first: whoever saw the stdout line can read it too
            ready_path = Path(args.ready_file)
            partial = ready_path.with_name(ready_path.name + ".partial")
            partial.write_text(ready + "\n", encoding="utf-8")
            os.replace(partial, ready_path)  # readers never see a half-written file
        print(ready, flush=True)
        while not stop_requested.wait(0.5):
            pass
    except OSError as exc:
        print(f"sandbox.cloudapi: {exc}", file=sys.stderr)
        return 2
    finally:
        emulator.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


if __name__ == "__main__":
    sys.exit(main())
