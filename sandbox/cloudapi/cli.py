"""The emulator as its own process: ``python -m sandbox.cloudapi`` serves until SIGTERM or
SIGINT and announces its URL on stdout (and in ``--ready-file``) once listening."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from sandbox.cloudapi.decisions import SANDBOX_TOKEN
from sandbox.cloudapi.server import CloudApiEmulator
from sandbox.faults import FaultRule

PROG = "sandbox.cloudapi"
POLL_S = 0.5  # how often the main thread looks for a stop request


def _load_rules(path: str) -> list[FaultRule]:
    """Rules from a JSON file holding either a list of rules or ``{"rules": [...]}``."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    raw_rules = data.get("rules") if isinstance(data, dict) else data
    if not isinstance(raw_rules, list):
        raise ValueError('expected a list of rules or {"rules": [...]}')
    return [FaultRule.from_dict(r) for r in raw_rules]


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"python -m {PROG}", description="Local WhatsApp Cloud API emulator."
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


def _announce(url: str, ready_file: str | None) -> None:
    ready = json.dumps({"url": url})
    if ready_file:  # written first: whoever saw the stdout line can read it too
        ready_path = Path(ready_file)
        partial = ready_path.with_name(ready_path.name + ".partial")
        partial.write_text(ready + "\n", encoding="utf-8")
        os.replace(partial, ready_path)  # readers never see a half-written file
    print(ready, flush=True)


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
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    stop_requested = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop_requested.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        emulator.start()
        _announce(emulator.url, args.ready_file)
        while not stop_requested.wait(POLL_S):
            pass
    except OSError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    finally:
        emulator.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
