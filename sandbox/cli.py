"""``campaign-sandbox up`` (``make sandbox``): the local stack, left running to try things by hand.

Starts the AWS endpoint (moto) and the Cloud API emulator as their own processes, provisions
the tables, queue and DLQ with ``campaign-producer init``, starts the operator API with its
console (and ``--consumers N`` consumers, so a campaign started from the console sends), then
prints the ``export …`` lines another shell needs to use the CLI and run consumers against it,
the console's URL and the operator key. Runs until Ctrl-C or SIGTERM, then stops every process
it started: consumers and the API first (they drain against AWS), then the stack.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from campaigns.domain.errors import ConfigError
from campaigns.domain.exitcodes import EXIT_CONFIG, EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from campaigns.settings import Settings, load_settings
from sandbox.cloudapi import SandboxControl
from sandbox.cloudapi.webhookconfig import SANDBOX_APP_SECRET
from sandbox.stack import ApiProcess, LocalStack, StackError, _spawn

DEFAULT_API_PORT = 8081
DEFAULT_WORKDIR = Path(".sandbox")
OPERATOR_NAME = "operator"
POLL_S = 0.2
CONSUMER_READY_TIMEOUT_S = 30.0
INIT_TIMEOUT_S = 60.0
# Consumers drain within SHUTDOWN_TIMEOUT_S (25 s by default) after SIGTERM; SIGKILL after this.
STOP_TIMEOUT_S = 40.0
# Variables of the caller's shell that would point the children at real AWS (or break boto3).
UNSET = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "CAMPAIGN_QUEUE_URL")


class Stopping:
    """Set by SIGTERM/SIGINT (the handlers only set events): first = stop, second = hurry."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.hurry = threading.Event()

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        (self.hurry if self.stop.is_set() else self.stop).set()

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self)
        signal.signal(signal.SIGINT, self)


@dataclass
class Sandbox:
    """What ``up`` started and what it tells the operator."""

    workdir: Path
    stack: LocalStack
    exports: dict[str, str] = field(default_factory=dict)
    api: ApiProcess | None = None
    webhooks: subprocess.Popen[bytes] | None = None
    webhooks_url: str = ""
    consumers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    consumer_ports: list[int] = field(default_factory=list)
    operator_key: str | None = None
    provisioned: list[str] = field(default_factory=list)

    def children(self) -> dict[str, subprocess.Popen[bytes]]:
        names = ("AWS endpoint", "Cloud API emulator")
        named = dict(zip(names, self.stack.processes, strict=False))  # fewer while starting
        if self.api is not None and self.api.proc is not None:
            named["operator API"] = self.api.proc
        if self.webhooks is not None:
            named["webhook receiver"] = self.webhooks
        named |= {f"consumer {n}": proc for n, proc in enumerate(self.consumers, 1)}
        return named


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="campaign-sandbox", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser(
        "up",
        help="start the local stack, the API and its console; run until Ctrl-C",
        description="Start the local stack, the operator API and its console; print the "
        "export lines to use it from another shell; run until Ctrl-C or SIGTERM.",
    )
    up.add_argument(
        "--api-port",
        type=int,
        default=DEFAULT_API_PORT,
        help=f"the API's and console's port on 127.0.0.1 (default {DEFAULT_API_PORT}; 0 = free)",
    )
    up.add_argument(
        "--workdir",
        type=Path,
        default=DEFAULT_WORKDIR,
        help=f"logs and state files (default {DEFAULT_WORKDIR}/)",
    )
    up.add_argument(
        "--consumers",
        type=int,
        default=0,
        help="also run N consumers, so started campaigns send (default 0)",
    )
    up.add_argument(
        "--ready-file",
        type=Path,
        help="once everything is up, write the URLs, exports, key and pids here as JSON",
    )
    return parser


def _operator_keys(environ: Mapping[str, str]) -> tuple[str, str | None]:
    """OPERATOR_API_KEYS from the environment if set, else a generated ``operator:KEY``;
    the generated key (None when the caller brought their own)."""
    given = environ.get("OPERATOR_API_KEYS", "").strip()
    if given:
        return given, None
    key = secrets.token_urlsafe(32)
    return f"{OPERATOR_NAME}:{key}", key


def _exports(stack: LocalStack, settings: Settings, keys: str) -> dict[str, str]:
    """Everything another shell needs for the CLI, a consumer and the API on this stack."""
    return stack.env() | {
        "CAMPAIGNS_TABLE": settings.campaigns_table,
        "RECIPIENTS_TABLE": settings.recipients_table,
        "CAMPAIGN_QUEUE_NAME": settings.campaign_queue_name,
        "OPERATOR_API_KEYS": keys,
        # The emulator signs its status webhooks with this; the receiver checks it.
        "META_APP_SECRET": SANDBOX_APP_SECRET,
        "META_WEBHOOK_VERIFY_TOKEN": "sandbox-verify-token",
    }


def _child_env(exports: Mapping[str, str], **extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k not in UNSET}
    return base | dict(exports) | extra


def _init(env: Mapping[str, str], workdir: Path) -> list[str]:
    """``campaign-producer init`` against the stack: the tables, queue and DLQ it created."""
    done = subprocess.run(
        [sys.executable, "-m", "producer", "init", "--json"],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=INIT_TIMEOUT_S,
        check=False,
    )
    (workdir / "init.log").write_text(done.stderr)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise StackError(f"campaign-producer init exited with {done.returncode}: {last}")
    created: list[str] = json.loads(done.stdout).get("created", [])
    return created


def _consumer_port(log: Path, proc: subprocess.Popen[bytes], stopping: Stopping) -> int:
    """The metrics port from the consumer's ``consumer.configured`` line (bounded wait)."""
    deadline = time.monotonic() + CONSUMER_READY_TIMEOUT_S
    while time.monotonic() < deadline and not stopping.stop.is_set():
        for raw in log.read_text(errors="replace").splitlines():
            if '"consumer.configured"' in raw:
                return int(json.loads(raw)["metrics_port"])
        if proc.poll() is not None:
            raise StackError(f"consumer exited with {proc.returncode}: see {log}")
        time.sleep(POLL_S)
    raise StackError(f"a consumer did not start within {CONSUMER_READY_TIMEOUT_S:.0f} s: see {log}")


def _start_consumers(sandbox: Sandbox, count: int, stopping: Stopping) -> None:
    env = _child_env(sandbox.exports, LOG_FORMAT="json", METRICS_PORT="0")
    env.setdefault("POLL_WAIT_S", "2")  # a short long-poll: Ctrl-C stops them promptly
    logs = [sandbox.workdir / f"consumer-{n}.log" for n in range(1, count + 1)]
    for log in logs:
        with log.open("wb") as out:
            sandbox.consumers.append(
                subprocess.Popen(
                    [sys.executable, "-m", "consumer"], env=env, stdout=out, stderr=out
                )
            )
    for log, proc in zip(logs, sandbox.consumers, strict=True):
        sandbox.consumer_ports.append(_consumer_port(log, proc, stopping))


def start(
    sandbox: Sandbox, args: argparse.Namespace, settings: Settings, stopping: Stopping
) -> None:
    """Everything up, in order, into ``sandbox`` (the caller stops it, also if this raises)."""
    sandbox.stack.start()
    keys, sandbox.operator_key = _operator_keys(os.environ)
    sandbox.exports = _exports(sandbox.stack, settings, keys)
    sandbox.provisioned = _init(_child_env(sandbox.exports), sandbox.workdir)
    sandbox.api = ApiProcess(sandbox.workdir, _child_env(sandbox.exports), port=args.api_port)
    sandbox.api.start()
    _start_receiver(sandbox)
    _start_consumers(sandbox, args.consumers, stopping)


def _start_receiver(sandbox: Sandbox) -> None:
    """campaign-webhooks, and the emulator told to post its signed status webhooks there."""
    args = ["-m", "webhooks", "--port", "0", "--metrics-port", "0"]
    workdir = sandbox.workdir
    sandbox.webhooks, url = _spawn(
        args, workdir / "webhooks.ready", workdir / "webhooks.log", _child_env(sandbox.exports)
    )
    sandbox.webhooks_url = f"{url}/webhooks/whatsapp"
    SandboxControl(sandbox.stack.cloudapi_url).configure_webhooks(
        url=sandbox.webhooks_url, app_secret=SANDBOX_APP_SECRET
    )


def stop(sandbox: Sandbox, stopping: Stopping) -> None:
    """Consumers and the API first (their drain still talks to AWS), then the stack; each
    group gets SIGTERM and STOP_TIMEOUT_S (a second Ctrl-C cuts it short), then SIGKILL."""
    stack = sandbox.stack.processes
    first = [proc for proc in sandbox.children().values() if proc not in stack]
    for group in (first, list(sandbox.stack.processes)):
        for proc in group:
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while any(p.poll() is None for p in group):
            if stopping.hurry.is_set() or time.monotonic() > deadline:
                for proc in group:
                    if proc.poll() is None:
                        proc.kill()
            time.sleep(POLL_S / 2)
        for proc in group:
            proc.wait(timeout=5)
    sandbox.stack.stop()  # forgets the (now reaped) processes


def _ready(sandbox: Sandbox) -> dict[str, Any]:
    api_url = sandbox.api.url if sandbox.api is not None else ""
    return {
        "awsUrl": sandbox.stack.aws_url,
        "cloudapiUrl": sandbox.stack.cloudapi_url,
        "apiUrl": api_url,
        "consoleUrl": f"{api_url}/",
        "webhooksUrl": sandbox.webhooks_url,
        "operatorKey": sandbox.operator_key,
        "exports": sandbox.exports,
        "unset": list(UNSET),
        "consumerMetricsPorts": sandbox.consumer_ports,
        "pids": {name: proc.pid for name, proc in sandbox.children().items()},
    }


def banner(sandbox: Sandbox) -> str:
    ready = _ready(sandbox)
    lines = [
        f"campaign-sandbox: the local stack is up (logs in {sandbox.workdir}/)",
        f"  AWS endpoint (moto)    {ready['awsUrl']}",
        f"  Cloud API emulator     {ready['cloudapiUrl']}",
        f"  operator API           {ready['apiUrl']}   (OpenAPI: {ready['apiUrl']}/docs)",
        f"  webhook receiver       {ready['webhooksUrl']}   (the emulator posts signed statuses)",
    ]
    for n, port in enumerate(sandbox.consumer_ports, 1):
        lines.append(f"  consumer {n}             metrics on http://127.0.0.1:{port}/metrics")
    created = ", ".join(sandbox.provisioned) or "already there"
    lines += [f"  provisioned            {created}", ""]
    lines.append("# In another shell, to use campaign-producer or run campaign-consumer here:")
    for name, value in sandbox.exports.items():
        if name == "OPERATOR_API_KEYS" and sandbox.operator_key is None:
            lines.append("# OPERATOR_API_KEYS: yours, from this shell's environment (not shown)")
            continue
        lines.append(f"export {name}={shlex.quote(value)}")
    lines += [f"unset {' '.join(UNSET)}", ""]
    lines.append(f"Console:       {ready['consoleUrl']}")
    if sandbox.operator_key is not None:
        lines.append(f"Operator key:  {sandbox.operator_key}   (name {OPERATOR_NAME!r})")
        lines.append(
            f'  curl -H "Authorization: Bearer {sandbox.operator_key}" {ready["apiUrl"]}'
            "/api/campaigns"
        )
    else:
        lines.append("Operator key:  one of your OPERATOR_API_KEYS")
    lines += ["", "Ctrl-C (or SIGTERM) stops everything."]
    return "\n".join(lines)


def _write_ready(path: Path, sandbox: Sandbox) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(_ready(sandbox), indent=2) + "\n")
    partial.chmod(0o600)  # it holds the operator key
    os.replace(partial, path)  # readers never see a half-written file


def serve(sandbox: Sandbox, stopping: Stopping) -> int:
    """Until a signal (exit 0) or a child's death (exit 1, naming it)."""
    children = sandbox.children()
    while not stopping.stop.wait(POLL_S):
        for name, proc in children.items():
            if proc.poll() is not None:
                print(
                    f"campaign-sandbox: the {name} exited with {proc.returncode} "
                    f"(logs in {sandbox.workdir}/); stopping everything",
                    file=sys.stderr,
                )
                return EXIT_FAILURE
    return EXIT_OK


def up(args: argparse.Namespace) -> int:
    if args.consumers < 0 or not 0 <= args.api_port <= 65535:
        print("campaign-sandbox: --consumers must be >= 0, --api-port 0..65535", file=sys.stderr)
        return EXIT_USAGE
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"campaign-sandbox: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    stopping = Stopping()
    stopping.install()
    workdir: Path = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    sandbox = Sandbox(workdir, LocalStack(workdir))
    try:
        start(sandbox, args, settings, stopping)
        print(banner(sandbox), flush=True)
        if args.ready_file is not None:
            _write_ready(args.ready_file, sandbox)
        code = serve(sandbox, stopping)
    except StackError as exc:
        if not stopping.stop.is_set():
            print(f"campaign-sandbox: {exc}", file=sys.stderr)
        code = EXIT_OK if stopping.stop.is_set() else EXIT_FAILURE
    finally:
        stop(sandbox, stopping)
    print("campaign-sandbox: stopped; no process left running", file=sys.stderr, flush=True)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "up":
        return up(args)
    return EXIT_USAGE  # pragma: no cover (argparse requires a command)


if __name__ == "__main__":
    sys.exit(main())
