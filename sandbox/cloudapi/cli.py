"""The emulator as its own process: ``python -m sandbox.cloudapi`` serves until SIGTERM or
SIGINT and announces its URL on stdout (and in ``--ready-file``) once listening.

With ``--webhook-url URL`` it also delivers status webhooks there, signed with ``--app-secret``
(see ``sandbox.cloudapi.webhookconfig`` for every ``--webhook-*`` option). The rules file holds
a list of fault rules, or ``{"rules": [...], "delivery_rules": [...]}``."""

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
from sandbox.cloudapi.deliveryrules import DeliveryRule
from sandbox.cloudapi.server import CloudApiEmulator
from sandbox.cloudapi.webhookconfig import SANDBOX_APP_SECRET, WebhookConfig
from sandbox.faults import FaultRule

PROG = "sandbox.cloudapi"
POLL_S = 0.5  # how often the main thread looks for a stop request


# --webhook-* option → WebhookConfig field, for the options given as one number.
WEBHOOK_NUMBERS = {
    "webhook_time_scale": ("time_scale", float),
    "webhook_read_share": ("read_share", float),
    "webhook_duplicate_probability": ("duplicate_probability", float),
    "webhook_out_of_order_probability": ("out_of_order_probability", float),
    "webhook_read_without_delivered_probability": ("read_without_delivered_probability", float),
    "webhook_batch_probability": ("batch_probability", float),
    "webhook_max_batch": ("max_batch", int),
    "webhook_retry_attempts": ("retry_attempts", int),
    "webhook_retry_base_s": ("retry_base_s", float),
    "webhook_retry_max_total_s": ("retry_max_total_s", float),
    "webhook_timeout_s": ("request_timeout_s", float),
    "webhook_queue_cap": ("queue_cap", int),
}
WEBHOOK_PAIRS = {
    "webhook_sent_delay_s": "sent_delay_s",
    "webhook_delivered_delay_s": "delivered_delay_s",
    "webhook_read_delay_s": "read_delay_s",
}


def _load_rules(path: str) -> tuple[list[FaultRule], list[DeliveryRule]]:
    """Rules from a JSON file holding a list of fault rules, or
    ``{"rules": [...], "delivery_rules": [...]}`` (either key may be left out)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    raw_rules = data.get("rules", []) if isinstance(data, dict) else data
    raw_delivery = data.get("delivery_rules", []) if isinstance(data, dict) else []
    if not isinstance(raw_rules, list) or not isinstance(raw_delivery, list):
        raise ValueError('expected a list of rules or {"rules": [...], "delivery_rules": [...]}')
    return (
        [FaultRule.from_dict(r) for r in raw_rules],
        [DeliveryRule.from_dict(r) for r in raw_delivery],
    )


def _webhook_config(args: argparse.Namespace) -> WebhookConfig:
    changes: dict[str, object] = {
        "url": args.webhook_url,
        "app_secret": args.app_secret,
        "waba_id": args.waba_id,
        "display_phone_number": args.display_phone_number,
    }
    for option, (name, _) in WEBHOOK_NUMBERS.items():
        if getattr(args, option) is not None:
            changes[name] = getattr(args, option)
    for option, name in WEBHOOK_PAIRS.items():
        if getattr(args, option) is not None:
            changes[name] = tuple(getattr(args, option))
    return WebhookConfig().updated(changes)


def _add_webhook_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("status webhooks (off without --webhook-url)")
    group.add_argument("--webhook-url", help="POST signed status webhooks to this URL")
    group.add_argument(
        "--app-secret", default=SANDBOX_APP_SECRET, help="HMAC-SHA256 key of the signature"
    )
    group.add_argument("--waba-id", default=WebhookConfig.waba_id, help="entry[].id")
    group.add_argument(
        "--display-phone-number",
        default=WebhookConfig.display_phone_number,
        help="metadata.display_phone_number",
    )
    for option, name in WEBHOOK_PAIRS.items():
        low, high = getattr(WebhookConfig, name)
        group.add_argument(
            "--" + option.replace("_", "-"),
            type=float,
            nargs=2,
            metavar=("MIN", "MAX"),
            help=f"seconds (default {low:g} {high:g})",
        )
    for option, (name, kind) in WEBHOOK_NUMBERS.items():
        group.add_argument(
            "--" + option.replace("_", "-"),
            type=kind,
            help=f"default {getattr(WebhookConfig, name)!r}",
        )


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
    _add_webhook_options(parser)
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
        rules, delivery_rules = _load_rules(args.rules_file) if args.rules_file else ([], [])
        emulator = CloudApiEmulator(
            access_token=args.token,
            host=args.host,
            port=args.port,
            seed=args.seed,
            rules=rules,
            max_rate_per_s=args.max_rate_per_s,
            pair_interval_s=args.pair_interval_s,
            webhooks=_webhook_config(args),
            delivery_rules=delivery_rules,
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
