"""``make demo``: the whole job on the embedded local stack, in under a minute.

Starts moto (the AWS endpoint) and the Cloud API emulator, provisions tables, queue and DLQ,
creates a campaign from ``examples/recipients.csv``, starts it, runs two consumer processes
with a live progress bar until the campaign completes or the cap pauses it, then prints the
batch and campaign summary and the metric values, and leaves no process running.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import requests
from prometheus_client.parser import text_string_to_metric_families

from campaigns.aws.clients import dynamodb_client, sqs_client
from campaigns.aws.queue import SqsQueue, resolve_queue_url
from campaigns.aws.store import DynamoStore
from campaigns.domain.errors import CampaignError
from campaigns.domain.models import CampaignStatus
from campaigns.settings import load_settings
from producer.display import cost_lines, failure_words, progress_bar
from sandbox.cloudapi import SandboxControl
from sandbox.stack import LocalStack, StackError, _spawn

ROOT = Path(__file__).resolve().parent.parent
CSV = ROOT / "examples" / "recipients.csv"
TIMEOUT_S = 120.0
CONSUMERS = 2
# The emulator's script for the demo: a few numbers are not on WhatsApp, one opted out, and
# Meta's edge is flaky now and then (retried); answers take 40-120 ms.
DEMO_RULES: list[dict[str, Any]] = [
    {"latency_ms": [30, 90]},
    {"match": r"91\d{8}13", "code": 131026},
    {"match": r"91\d{9}7", "code": 131050, "times": 1},
    {"probability": 0.03, "code": 131016},
]
# After acceptance, by status webhook: a few numbers turn out undeliverable, and a handful of
# users are on WhatsApp through a username (their statuses carry only the BSUID).
DEMO_DELIVERY_RULES: list[dict[str, Any]] = [
    {"match": r"91\d{8}29", "fail_code": 131026},
    {"match": r"91\d{8}41", "username": True},
    {"match": r"91\d{8}57", "held": True},  # template pacing: later statuses resolve it
]
DEMO_APP_SECRET = "demo-app-secret"  # noqa: S105 (the local stand-ins' shared key)
WEBHOOK_TIME_SCALE = 0.05  # statuses within about 3 s instead of a minute
RECEIPTS_SETTLE_S = 30.0  # moto serialises DynamoDB: on a busy machine receipts lag the sends
SETTLED_LOOKS = 3


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cli(env: dict[str, str], *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "producer", *args, "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if done.returncode != 0:
        raise SystemExit(f"demo: campaign-producer {args[0]} failed: {done.stderr.strip()}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _scrape(ports: Sequence[int]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for port in ports:
        try:
            text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
        except requests.RequestException:
            continue
        for family in text_string_to_metric_families(text):
            if not family.name.startswith("campaign_"):
                continue
            for sample in family.samples:
                if sample.name.endswith(("_created", "_bucket")):
                    continue
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
                key = f"{sample.name}{{{labels}}}" if labels else sample.name
                if sample.name in ("campaign_cap_used", "campaign_cap_limit"):
                    totals[key] = max(totals.get(key, 0.0), sample.value)  # shared, not summed
                else:
                    totals[key] = totals.get(key, 0.0) + sample.value
    return totals


def _provision(env: dict[str, str]) -> str:
    """Tables, queue and DLQ; a campaign from the CSV, started. Returns its id."""
    created = _cli(env, "init")["created"]
    print(f"▶ provisioned: {', '.join(created) or 'already there'}")
    created_campaign = _cli(
        env, "create", "--name", "Demo: sign-up confirmations",
        "--template", "vendor_signup_confirmation",
    )  # fmt: skip
    campaign_id = str(created_campaign["campaignId"])
    print(f"▶ created {campaign_id}")
    populated = _cli(env, "populate", campaign_id, str(CSV))
    print(
        f"▶ populated from {CSV.name}: inserted {populated['inserted']}, "
        f"duplicates {populated['duplicates']}, invalid {populated['invalidCount']}"
    )
    for bad in populated["invalid"][:3]:
        print(f"    line {bad['line']}: {bad['value']!r} — {bad['reason']}")
    started = _cli(env, "start", campaign_id)
    print(f"▶ started: {started['enqueuedBatches']} batch messages enqueued")
    return campaign_id


def _start_consumers(
    env: dict[str, str], workdir: Path, consumers: list[subprocess.Popen[bytes]]
) -> tuple[list[int], list[Path]]:
    """Start the consumers into ``consumers`` (the caller stops them); their ports and logs."""
    ports = [_free_port() for _ in range(CONSUMERS)]
    logs = [workdir / f"consumer-{i + 1}.log" for i in range(CONSUMERS)]
    for port, log in zip(ports, logs, strict=True):
        with log.open("wb") as out:
            consumers.append(
                subprocess.Popen(
                    [sys.executable, "-m", "consumer"],
                    env=env | {"METRICS_PORT": str(port)},
                    stdout=out,
                    stderr=out,
                )
            )
    print(f"▶ {CONSUMERS} consumers running (metrics on ports {', '.join(map(str, ports))})")
    return ports, logs


def _start_receiver(
    env: dict[str, str], workdir: Path, stack: LocalStack
) -> subprocess.Popen[bytes]:
    """campaign-webhooks, and the emulator told to deliver its signed statuses there."""
    args = ["-m", "webhooks", "--port", "0", "--metrics-port", "0"]
    proc, url = _spawn(args, workdir / "webhooks.ready", workdir / "webhooks.log", env)
    control = SandboxControl(stack.cloudapi_url)
    control.configure_webhooks(
        url=f"{url}/webhooks/whatsapp", app_secret=DEMO_APP_SECRET, time_scale=WEBHOOK_TIME_SCALE
    )
    control.set_delivery_rules(DEMO_DELIVERY_RULES)
    print(f"▶ webhook receiver on {url}/webhooks/whatsapp (statuses signed by the emulator)")
    return proc


def _settle_receipts(
    env: dict[str, str],
    stack: LocalStack,
    store: DynamoStore,
    campaign_id: str,
    settle_s: float = RECEIPTS_SETTLE_S,
) -> None:
    """Wait (bounded) until the emulator has posted every status and the consumers have applied
    every queued receipt: the queue empty and the counters unchanged for three looks."""
    print("▶ waiting for the last status webhooks …")
    deadline = time.monotonic() + settle_s
    try:
        SandboxControl(stack.cloudapi_url).wait_for_webhooks(timeout_s=settle_s)
    except TimeoutError:
        print("  (the emulator still had statuses to post)")
    settings = load_settings(aws_endpoint_url=stack.aws_url)
    client = sqs_client(settings)
    name = env.get("CAMPAIGN_RECEIPTS_QUEUE_NAME", settings.campaign_receipts_queue_name)
    receipts = SqsQueue(client, resolve_queue_url(client, name))
    last: tuple[object, ...] = ()
    unchanged = 0
    depth = receipts.depth()
    while unchanged < SETTLED_LOOKS and time.monotonic() < deadline:
        campaign = store.require_campaign(campaign_id)
        depth = receipts.depth()
        seen = (campaign.delivered_count, campaign.read_count, campaign.delivery_failed_count)
        unchanged = unchanged + 1 if (seen, depth) == last and depth == (0, 0) else 0
        last = (seen, depth)
        time.sleep(1.0)
    if depth != (0, 0):
        print(f"  {sum(depth)} webhook bodies still queued: the next consumer to run applies them")
    stats = SandboxControl(stack.cloudapi_url).webhooks()["stats"]
    print(
        f"  the emulator posted {stats['delivered_statuses']} statuses in "
        f"{stats['delivered_posts']}"
        f" signed webhooks ({stats['retries']} retried, {stats['pending']} pending,"
        f" {stats['gave_up']} given up)"
    )


def _watch(store: DynamoStore, campaign_id: str) -> None:
    """The progress bar, until the campaign stops running or the demo's time is up."""
    deadline = time.monotonic() + TIMEOUT_S
    tty = sys.stdout.isatty()
    while True:
        campaign = store.require_campaign(campaign_id)
        line = progress_bar(campaign)
        print(("\r  " + line) if tty else "  " + line, end="" if tty else "\n", flush=True)
        if campaign.status is not CampaignStatus.RUNNING or time.monotonic() > deadline:
            break
        time.sleep(0.5 if tty else 2.0)
    if tty:
        print()


def _print_summary(
    final: dict[str, Any], codes: Sequence[int], logs: Sequence[Path], metrics: dict[str, float]
) -> None:
    print("▶ campaign summary")
    for key in ("status", "totalRecipients", "sentCount", "failedCount", "unknownCount",
                "pendingCount", "pauseReason", "startedAt", "completedAt", "deliveredCount",
                "readCount", "deliveryFailedCount", "heldCount", "deliveryRate",
                "readRate"):  # fmt: skip
        value = final[key]
        print(f"    {key:19} {round(value, 3) if isinstance(value, float) else value}")
    print(f"    {'deliveryFailures':19} {failure_words(final['deliveryFailures'])}")
    for line in cost_lines(final["cost"]):
        print(f"    {line}")
    print("▶ consumers (SIGTERM → exit codes " + ", ".join(map(str, codes)) + ")")
    for log in logs:
        for raw in log.read_text().splitlines():
            if '"consumer.stopped"' in raw:
                event = json.loads(raw)
                print(
                    f"    {log.stem}: batches={event['batches']} sent={event['sent']} "
                    f"failed={event['failed']} unknown={event['unknown']} "
                    f"released={event['released']}"
                )
    print("▶ metrics (summed over consumers)")
    for key in sorted(metrics):
        if key.startswith("campaign_send_duration_seconds"):
            continue
        print(f"    {key} {metrics[key]:g}")
    count = metrics.get("campaign_send_duration_seconds_count", 0.0)
    if count:
        mean_ms = 1000 * metrics["campaign_send_duration_seconds_sum"] / count
        print(f"    campaign_send_duration_seconds: {count:g} sends, mean {mean_ms:.0f} ms")


def run() -> int:
    workdir = Path(os.environ.get("DEMO_WORKDIR", ROOT / ".demo"))
    stack = LocalStack(workdir, rules=DEMO_RULES)
    consumers: list[subprocess.Popen[bytes]] = []
    receiver: subprocess.Popen[bytes] | None = None
    print("▶ starting the local stack (moto AWS endpoint + WhatsApp Cloud API emulator)")
    stack.start()
    try:
        os.environ.update(stack.env())  # this process reads DynamoDB for the progress bar
        env = os.environ | {"LOG_FORMAT": "json", "POLL_WAIT_S": "2"}
        env |= {"META_APP_SECRET": DEMO_APP_SECRET, "META_WEBHOOK_VERIFY_TOKEN": "demo-verify"}
        env.setdefault("CONSUMER_CONCURRENCY", "3")
        env.setdefault("DAILY_CAP", "2000")
        env.setdefault("SEND_RATE_PER_SECOND", "20")
        env.setdefault("PRICES_FILE", str(ROOT / "examples" / "prices.example.csv"))
        print(f"  AWS endpoint {stack.aws_url}   Cloud API {stack.cloudapi_url}")
        print(f"  DAILY_CAP={env['DAILY_CAP']}  SEND_RATE_PER_SECOND={env['SEND_RATE_PER_SECOND']}"
              f" and CONSUMER_CONCURRENCY={env['CONSUMER_CONCURRENCY']} per consumer")  # fmt: skip
        campaign_id = _provision(env)
        receiver = _start_receiver(env, stack.workdir, stack)
        ports, logs = _start_consumers(env, stack.workdir, consumers)
        settings = load_settings(aws_endpoint_url=stack.aws_url)
        store = DynamoStore(dynamodb_client(settings), settings)
        _watch(store, campaign_id)
        # DEMO_RECEIPTS_SETTLE_S: the bound on that wait (the demo's test sets it shorter).
        settle_s = float(os.environ.get("DEMO_RECEIPTS_SETTLE_S", RECEIPTS_SETTLE_S))
        _settle_receipts(env, stack, store, campaign_id, settle_s)
        time.sleep(0.5)  # let the last batch's log line and metrics land
        metrics = _scrape(ports)
        for proc in [*consumers, receiver]:
            proc.send_signal(signal.SIGTERM)
        codes = [proc.wait(timeout=40) for proc in consumers]
        receiver.wait(timeout=40)
        final = _cli(env, "status", campaign_id)
        _print_summary(final, codes, logs, metrics)
        print(f"▶ logs in {stack.workdir}")
        ok = final["status"] in (CampaignStatus.COMPLETED.value, CampaignStatus.PAUSED.value)
        return 0 if ok and all(code == 0 for code in codes) else 1
    finally:
        for proc in [*consumers, *([receiver] if receiver else [])]:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        stack.stop()


def main() -> int:
    try:
        return run()
    except (CampaignError, StackError) as exc:
        print(f"\ndemo: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ndemo: interrupted; everything it started is stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
