"""``campaign-producer``: the operator CLI. Every command takes ``--json``.

Bad input gets one clear line on stderr, a non-zero exit, no traceback, nothing half-written.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from campaigns import logging as logs
from campaigns.domain.errors import (
    CampaignError,
    CampaignNotFound,
    ConfigError,
    InvalidInput,
    InvalidTransition,
    QueueUnavailable,
    StoreUnavailable,
)
from campaigns.domain.exitcodes import (
    EXIT_CONFIG,
    EXIT_DATAERR,
    EXIT_FAILURE,
    EXIT_NOINPUT,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
)
from campaigns.domain.models import Action, CampaignStatus
from campaigns.domain.phones import DEFAULT_REGION
from campaigns.operator.commands import Producer
from campaigns.operator.csvfile import FileProblem
from campaigns.settings import Settings, load_settings
from campaigns.wiring import build_operator
from producer.display import progress_bar, render

Build = Callable[[Settings], Producer]  # settings -> the operator core on its adapters

PROG = "campaign-producer"
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line naming the problem, not argparse's usage dump.
        print(f"{PROG}: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def _positive_s(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not 0 < seconds < math.inf:  # a zero or negative interval would spin or crash
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return seconds


def _parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("--json", action="store_true", help="machine-readable output")
    parser = _Parser(prog=PROG, description="Create and run WhatsApp template campaigns.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_text, parents=[common], description=help_text)

    command("init", "create tables, queue and DLQ if missing (idempotent)")
    create = command("create", "create a DRAFT campaign")
    create.add_argument("--name", required=True)
    create.add_argument("--template", required=True, help="Meta-approved template name")
    create.add_argument("--language", default="en_US")
    create.add_argument(
        "--parameter-format",
        choices=["positional", "named"],
        default="positional",
        help="how CSV columns become template parameters",
    )
    populate = command("populate", "add recipients from a CSV file")
    populate.add_argument("campaign_id")
    populate.add_argument("file", type=Path)
    populate.add_argument("--default-region", default=DEFAULT_REGION)
    for name, text in (
        ("start", "DRAFT → RUNNING, and enqueue every PENDING recipient"),
        ("pause", "RUNNING → PAUSED"),
        ("resume", "PAUSED → RUNNING, and enqueue every PENDING recipient"),
        ("cancel", "DRAFT/RUNNING/PAUSED → CANCELLED"),
        ("enqueue", "re-enqueue batches for PENDING recipients (safe to repeat)"),
        ("execute-batch", "send one batch of PENDING recipients in-process, without SQS"),
    ):
        command(name, text).add_argument("campaign_id")
    status = command("status", "show a campaign's counters and progress")
    status.add_argument("campaign_id")
    status.add_argument("--watch", action="store_true", help="redraw until it stops running")
    status.add_argument("--interval", type=_positive_s, default=1.0)
    reconcile = command("reconcile", "expire dead leases, repair counters, complete if done")
    reconcile.add_argument("campaign_id", nargs="?", help="default: every RUNNING or PAUSED")
    command("list", "list campaigns")
    requeue = command("requeue-unknown", "UNKNOWN → PENDING (accepting the duplicate risk)")
    requeue.add_argument("campaign_id")
    requeue.add_argument("--yes", action="store_true", help="confirm the duplicate risk")
    dead = command("dlq", "inspect or redrive the dead-letter queue")
    dead.add_argument("action", choices=["list", "redrive"])
    dead.add_argument("--max", type=int, default=100, dest="limit")
    dead.add_argument("--include-poison", action="store_true", help="redrive poison messages too")
    return parser


def _watch(producer: Producer, campaign_id: str, interval_s: float, as_json: bool) -> None:
    tty = sys.stdout.isatty() and not as_json
    last = ""
    while True:
        campaign = producer.get(campaign_id)
        line = progress_bar(campaign)
        if not as_json and line != last:
            print(("\r" + line) if tty else line, end="" if tty else "\n", flush=True)
            last = line
        if campaign.status is not CampaignStatus.RUNNING:
            break
        time.sleep(interval_s)
    if tty:
        print()


def _status(producer: Producer, args: argparse.Namespace) -> dict[str, Any]:
    if args.watch:
        _watch(producer, args.campaign_id, args.interval, args.json)
    return producer.status(args.campaign_id)


def _dlq(producer: Producer, args: argparse.Namespace) -> dict[str, Any]:
    if args.action == "list":
        return producer.dlq_list(args.limit)
    return producer.dlq_redrive(args.limit, include_poison=args.include_poison)


def _transition(producer: Producer, args: argparse.Namespace) -> dict[str, Any]:
    return producer.transition(args.campaign_id, Action(args.command))


Command = Callable[[Producer, argparse.Namespace], dict[str, Any]]
# One entry per sub-command: the front-end parses, the operator core does the work.
COMMANDS: dict[str, Command] = {
    "init": lambda producer, _: producer.init(),
    "create": lambda producer, args: producer.create(
        args.name, args.template, args.language, args.parameter_format.upper()
    ),
    "populate": lambda producer, args: producer.populate(
        args.campaign_id, args.file, args.default_region
    ),
    "start": _transition,
    "pause": _transition,
    "resume": _transition,
    "cancel": _transition,
    "status": _status,
    "enqueue": lambda producer, args: producer.enqueue(args.campaign_id),
    "execute-batch": lambda producer, args: producer.execute_batch(args.campaign_id),
    "reconcile": lambda producer, args: producer.reconcile(args.campaign_id),
    "list": lambda producer, _: producer.list_campaigns(),
    "requeue-unknown": lambda producer, args: producer.requeue_unknown(
        args.campaign_id, confirmed=args.yes
    ),
    "dlq": _dlq,
}


def _run(args: argparse.Namespace, build: Build) -> dict[str, Any]:
    settings = load_settings()
    # Logs go to stderr: stdout carries only the result (``--json`` output must parse).
    logs.configure(settings.log_format, settings.log_level)
    command = COMMANDS.get(args.command)
    if command is None:  # pragma: no cover (argparse refuses unknown commands)
        raise InvalidInput(f"unknown command {args.command}")
    return command(build(settings), args)


def _exit_code(exc: CampaignError) -> int:
    if isinstance(exc, ConfigError):
        return EXIT_CONFIG
    if isinstance(exc, FileProblem) and exc.missing:
        return EXIT_NOINPUT
    if isinstance(exc, InvalidTransition):
        return EXIT_FAILURE
    if isinstance(exc, CampaignNotFound | InvalidInput):
        return EXIT_DATAERR
    if isinstance(exc, StoreUnavailable | QueueUnavailable):
        return EXIT_UNAVAILABLE
    return EXIT_FAILURE


def main(argv: list[str] | None = None, build: Build = build_operator) -> int:
    """``build`` makes the operator core from the settings: the real adapters by default,
    in-memory ones in tests."""
    args = _parser().parse_args(argv)
    try:
        result = _run(args, build)
    except CampaignError as exc:
        return _fail(args, str(exc), _exit_code(exc))
    except KeyboardInterrupt:
        return _fail(args, "interrupted", EXIT_INTERRUPTED)
    except OSError as exc:
        return _fail(args, f"{exc.strerror or exc}", EXIT_UNAVAILABLE)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        print(render(result))
    return 0


def _fail(args: argparse.Namespace, message: str, code: int) -> int:
    if getattr(args, "json", False):
        print(json.dumps({"success": False, "error": message}, ensure_ascii=False))
    print(f"{PROG}: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
