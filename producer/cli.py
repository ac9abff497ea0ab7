"""``campaign-producer``: the operator CLI. Every command takes ``--json``.

Bad input gets one clear line on stderr, a non-zero exit, no traceback, nothing half-written.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

from rich.console import Console
from rich.live import Live

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
from campaigns.domain.models import Action, CampaignStatus, RecipientStatus
from campaigns.domain.phones import DEFAULT_REGION
from campaigns.operator.commands import Producer
from campaigns.operator.csvfile import FileProblem
from campaigns.settings import Settings, load_settings
from campaigns.wiring import build_operator
from producer import views
from producer.display import progress_bar, render

Build = Callable[[Settings], Producer]  # settings -> the operator core on its adapters

PROG = "campaign-producer"
EXIT_INTERRUPTED = 130


class ConfirmationRequired(CampaignError):
    """A final action asked for without ``--yes`` and no terminal to ask on: a usage error."""


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
        ("enqueue", "re-enqueue batches for PENDING recipients (safe to repeat)"),
        ("execute-batch", "send one batch of PENDING recipients in-process, without SQS"),
    ):
        command(name, text).add_argument("campaign_id")
    cancel = command("cancel", "DRAFT/RUNNING/PAUSED → CANCELLED (final: asks for --yes)")
    cancel.add_argument("campaign_id")
    cancel.add_argument("--yes", action="store_true", help="confirm: cancelling is final")
    status = command("status", "show a campaign's counters and progress")
    status.add_argument("campaign_id")
    status.add_argument("--watch", action="store_true", help="redraw until it stops running")
    status.add_argument("--interval", type=_positive_s, default=1.0)
    reconcile = command("reconcile", "expire dead leases, repair counters, complete if done")
    reconcile.add_argument("campaign_id", nargs="?", help="default: every RUNNING or PAUSED")
    listing = command("list", "list campaigns, newest first")
    listing.add_argument("--status", choices=[s.value for s in CampaignStatus])
    listing.add_argument("--limit", type=int, default=20, help="campaigns per page (1..200)")
    listing.add_argument("--cursor", help="the next page, as the previous one printed it")
    recipients = command("recipients", "list a campaign's recipients, or export them as CSV")
    recipients.add_argument("campaign_id")
    recipients.add_argument("--status", choices=[s.value for s in RecipientStatus])
    recipients.add_argument("--limit", type=int, default=100, help="rows per page (1..500)")
    recipients.add_argument("--cursor", help="the next page, as the previous one printed it")
    recipients.add_argument(
        "--csv", metavar="FILE", help="export every matching recipient as CSV ('-': stdout)"
    )
    requeue = command("requeue-unknown", "UNKNOWN → PENDING (accepting the duplicate risk)")
    requeue.add_argument("campaign_id")
    requeue.add_argument("--yes", action="store_true", help="confirm the duplicate risk")
    dead = command("dlq", "inspect or redrive the dead-letter queue")
    dead.add_argument("action", choices=["list", "redrive"])
    dead.add_argument("--max", type=int, default=100, dest="limit")
    dead.add_argument("--include-poison", action="store_true", help="redrive poison messages too")
    return parser


def _watch(producer: Producer, campaign_id: str, interval_s: float, as_json: bool) -> None:
    """A live view on a terminal; one plain line per change otherwise; nothing with --json."""
    if as_json:
        while producer.get(campaign_id).status is CampaignStatus.RUNNING:
            time.sleep(interval_s)
        return
    if not sys.stdout.isatty():
        last = ""
        while True:
            campaign = producer.get(campaign_id)
            line = progress_bar(campaign)
            if line != last:
                print(line, flush=True)
                last = line
            if campaign.status is not CampaignStatus.RUNNING:
                return
            time.sleep(interval_s)
    campaign = producer.get(campaign_id)
    with Live(
        views.status_view(campaign),
        console=_console(),
        auto_refresh=False,
        redirect_stdout=False,
        redirect_stderr=False,
    ) as live:
        while campaign.status is CampaignStatus.RUNNING:
            time.sleep(interval_s)
            campaign = producer.get(campaign_id)
            live.update(views.status_view(campaign), refresh=True)


def _status(producer: Producer, args: argparse.Namespace) -> dict[str, Any]:
    if args.watch:
        _watch(producer, args.campaign_id, args.interval, args.json)
    return producer.status(args.campaign_id)


def _list(producer: Producer, args: argparse.Namespace) -> dict[str, Any]:
    status = CampaignStatus(args.status) if args.status else None
    return producer.list_campaigns(status, args.limit, args.cursor)


def _recipients(producer: Producer, args: argparse.Namespace) -> dict[str, Any] | None:
    status = RecipientStatus(args.status) if args.status else None
    if args.csv is None:
        return producer.recipients(args.campaign_id, status, args.limit, args.cursor)
    chunks = producer.export_recipients(args.campaign_id, status)
    if args.csv == "-":
        for chunk in chunks:
            sys.stdout.write(chunk)
        sys.stdout.flush()
        return None
    rows = _write_atomically(Path(args.csv), chunks)
    return {"success": True, "campaignId": args.campaign_id, "file": args.csv, "rows": rows}


def _write_atomically(path: Path, chunks: Iterator[str]) -> int:
    """Into a temporary file beside ``path``, renamed over it once whole; returns the rows."""
    partial = path.with_name(f".{path.name}.partial")
    lines = 0
    try:
        with partial.open("w", encoding="utf-8", newline="") as out:
            for chunk in chunks:
                out.write(chunk)
                lines += chunk.count("\n")
        os.replace(partial, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    return lines - 1  # the header


def _cancel(producer: Producer, args: argparse.Namespace) -> dict[str, Any]:
    if not args.yes:
        campaign = producer.get(args.campaign_id)  # unknown or malformed: refused as before
        if campaign.status not in (
            CampaignStatus.DRAFT,
            CampaignStatus.RUNNING,
            CampaignStatus.PAUSED,
        ):
            raise InvalidTransition(campaign.status.value, "cancel")
        if not _confirmed(
            f"Cancel campaign {campaign.campaign_id} ({campaign.name})? It is final."
        ):
            raise ConfirmationRequired(
                "cancel is final: pass --yes to confirm (nothing was changed)"
            )
    return producer.transition(args.campaign_id, Action.CANCEL)


def _confirmed(question: str) -> bool:
    """Ask y/N on a terminal; never when stdin is not one (scripts must pass --yes)."""
    if not sys.stdin.isatty():
        return False
    print(f"{question} [y/N] ", end="", file=sys.stderr, flush=True)
    return sys.stdin.readline().strip().lower() in {"y", "yes"}


def _dlq(producer: Producer, args: argparse.Namespace) -> dict[str, Any]:
    if args.action == "list":
        return producer.dlq_list(args.limit)
    return producer.dlq_redrive(args.limit, include_poison=args.include_poison)


def _transition(producer: Producer, args: argparse.Namespace) -> dict[str, Any]:
    return producer.transition(args.campaign_id, Action(args.command))


Command = Callable[[Producer, argparse.Namespace], dict[str, Any] | None]
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
    "cancel": _cancel,
    "status": _status,
    "enqueue": lambda producer, args: producer.enqueue(args.campaign_id),
    "execute-batch": lambda producer, args: producer.execute_batch(args.campaign_id),
    "reconcile": lambda producer, args: producer.reconcile(args.campaign_id),
    "list": _list,
    "recipients": _recipients,
    "requeue-unknown": lambda producer, args: producer.requeue_unknown(
        args.campaign_id, confirmed=args.yes
    ),
    "dlq": _dlq,
}


def _console() -> Console:
    return Console(highlight=False, soft_wrap=False)


def _next_page(command: str, result: dict[str, Any]) -> None:
    if result.get("nextCursor"):  # plain: a cursor must stay one piece to copy
        print(f"next page: {command} --cursor {result['nextCursor']}")


def _show_list(args: argparse.Namespace, result: dict[str, Any]) -> None:
    console = _console()
    if not result["campaigns"]:
        console.print("no campaigns")
        return
    console.print(views.campaigns_table(console, result["campaigns"]))
    _next_page(f"{PROG} list", result)


def _show_recipients(args: argparse.Namespace, result: dict[str, Any]) -> None:
    console = _console()
    if "file" in result:
        print(f"wrote {result['rows']} recipient(s) to {result['file']}")
        return
    if not result["recipients"]:
        console.print("no recipients")
        return
    console.print(views.recipients_table(console, result["recipients"]))
    _next_page(f"{PROG} recipients {args.campaign_id}", result)


def _show_dlq(args: argparse.Namespace, result: dict[str, Any]) -> None:
    console = _console()
    if args.action == "redrive":
        print(views.redrive_words(result))
    elif not result["messages"]:
        console.print("the dead-letter queue is empty")
    else:
        console.print(views.dead_letters_table(console, result["messages"]))


# The commands with a view of their own; the others print ``display.render``.
SHOW: dict[str, Callable[[argparse.Namespace, dict[str, Any]], None]] = {
    "list": _show_list,
    "recipients": _show_recipients,
    "dlq": _show_dlq,
    "reconcile": lambda _, result: print(views.reconcile_words(result)),
}


def _run(args: argparse.Namespace, build: Build) -> dict[str, Any] | None:
    settings = load_settings()
    # Logs go to stderr: stdout carries only the result (``--json`` output must parse).
    logs.configure(settings.log_format, settings.log_level)
    command = COMMANDS.get(args.command)
    if command is None:  # pragma: no cover (argparse refuses unknown commands)
        raise InvalidInput(f"unknown command {args.command}")
    return command(build(settings), args)


# First match wins: what the caller should do, as an exit code.
EXIT_CODES: tuple[tuple[type[CampaignError], int], ...] = (
    (ConfigError, EXIT_CONFIG),
    (ConfirmationRequired, EXIT_USAGE),
    (InvalidTransition, EXIT_FAILURE),
    (CampaignNotFound, EXIT_DATAERR),
    (InvalidInput, EXIT_DATAERR),
    (StoreUnavailable, EXIT_UNAVAILABLE),
    (QueueUnavailable, EXIT_UNAVAILABLE),
)


def _exit_code(exc: CampaignError) -> int:
    if isinstance(exc, FileProblem) and exc.missing:
        return EXIT_NOINPUT
    for kind, code in EXIT_CODES:
        if isinstance(exc, kind):
            return code
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
    if result is None:  # the command wrote its own output (a CSV export to stdout)
        return 0
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    elif args.command in SHOW:
        SHOW[args.command](args, result)
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
