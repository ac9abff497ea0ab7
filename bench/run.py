"""``make bench``: every figure measured side by side in one run; prints a table of goal vs
measured and writes ``bench/results.json``. Not a test: nothing here asserts a time.

1. Send rate from one consumer process (in-memory store and queue; the Cloud API emulator is
   a real HTTP server in its own process, 150 ± 50 ms per answer), versus the seed's loop
   (sequential send + 50 ms sleep), and with 10 % of answers 130429.
2. Round trips per recipient on the moto stack, counted with botocore event hooks.
3. Engine overhead: consumer CPU per recipient with in-memory fakes for every port.
4. Producer at scale: populate + start for 100,000 and 1,000,000 recipients (each run in its
   own process for its peak RSS) versus a naive per-item producer.
5. The operator API (``bench/api_bench.py``): GET /api/campaigns/{id} per second, and a
   100,000-row CSV uploaded and imported through the API versus the CLI's import.
6. Status webhooks (``bench/receipts_bench.py``): applied per second by one receipts thread,
   DynamoDB requests per status on the real adapter, and statuses per second through the
   receipts loop at RECEIPTS_CONCURRENCY 1, 8 and 10 with 5 ms per store and queue call.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import api_bench, receipts_bench
from campaigns.aws import clients as aws
from campaigns.aws.clients import dynamodb_client, sqs_client
from campaigns.aws.provision import provision
from campaigns.domain.clock import SystemClock
from campaigns.domain.message import encode, new_batch
from campaigns.domain.models import (
    Action,
    Campaign,
    CampaignStatus,
    TemplateMessage,
    new_campaign_id,
)
from campaigns.engine.breaker import SendBreaker
from campaigns.engine.executor import BatchExecutor
from campaigns.engine.metrics import EngineMetrics
from campaigns.engine.ratelimit import TokenBucket
from campaigns.logging import configure as configure_logs
from campaigns.memory import (
    FakeSender,
    ManualClock,
    MemoryCapGuard,
    MemoryQueue,
    MemoryStore,
    Unlimited,
)
from campaigns.meta.cloudapi import CloudApiSender
from campaigns.settings import Settings, load_settings
from consumer.worker import Worker, WorkerConfig
from sandbox.cloudapi import SandboxControl
from sandbox.cloudapi.decisions import SANDBOX_TOKEN
from sandbox.stack import SANDBOX_PHONE_NUMBER_ID, CloudApiProcess

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results.json"
LATENCY_MS = (100, 200)  # 150 ms ± 50 ms
CONCURRENCY = 64  # batch threads in the one consumer process (CONSUMER_CONCURRENCY's maximum)


def numbers(count: int, start: int = 0) -> list[str]:
    return [f"919{start + i:09d}" for i in range(count)]


def api_settings(url: str, **overrides: Any) -> Settings:
    return load_settings(
        meta_api_base_url=url,
        meta_access_token=SANDBOX_TOKEN,
        meta_phone_number_id=SANDBOX_PHONE_NUMBER_ID,
        meta_read_timeout_s=10,
        **overrides,
    )


def accepted_rate(url: str) -> tuple[float, int]:
    stamps = sorted(m.accepted_at for m in SandboxControl(url).messages())
    if len(stamps) < 2:
        return 0.0, len(stamps)
    return (len(stamps) - 1) / (stamps[-1] - stamps[0]), len(stamps)


def steady_rate(url: str) -> float:
    """The rate over the middle 80 % of accepts: no start-up burst, no drain at the end."""
    stamps = sorted(m.accepted_at for m in SandboxControl(url).messages())
    middle = stamps[len(stamps) // 10 : len(stamps) * 9 // 10]
    return (len(middle) - 1) / (middle[-1] - middle[0]) if len(middle) > 1 else 0.0


# -- 1. send rate ---------------------------------------------------------------------------


def send_rate(
    workdir: Path, recipients: int, target: float, throttle: float = 0.0
) -> dict[str, Any]:
    rules: list[dict[str, Any]] = [{"latency_ms": list(LATENCY_MS)}]
    if throttle:
        rules.append({"probability": throttle, "code": 130429})
    with CloudApiProcess(workdir, rules=rules, seed=3) as api:
        settings = api_settings(api.url, max_send_attempts=10)
        store, queue = MemoryStore(), MemoryQueue(visibility_timeout_s=600)
        campaign_id = new_campaign_id()
        store.add_campaign(
            Campaign(campaign_id, "bench", "order_update", "en_US", CampaignStatus.RUNNING)
        )
        phones = numbers(recipients)
        store.add_recipients(campaign_id, phones)
        queue.send(
            [encode(new_batch(campaign_id, phones[i : i + 25])) for i in range(0, recipients, 25)]
        )
        # Threads are cheap (they wait on the bucket): with enough batches in flight, the end
        # of a finite queue is not a tail of a few sequential batches at 1/latency each.
        concurrency = CONCURRENCY
        metrics, limiter, breaker = EngineMetrics(), TokenBucket(target), SendBreaker()
        executors = [
            BatchExecutor(
                store=store,
                guard=MemoryCapGuard(0),
                sender=CloudApiSender(settings),
                limiter=limiter,
                clock=SystemClock(),
                metrics=metrics,
                owner="bench",
                lease_s=settings.lease_s,
                breaker=breaker,
            )
            for _ in range(concurrency)
        ]
        worker = Worker(
            queue=queue,
            executors=executors,
            metrics=metrics,
            config=WorkerConfig(visibility_timeout_s=600, poll_wait_s=0, once=True),
            handle_signals=False,
        )
        cpu, wall = time.process_time(), time.perf_counter()
        worker.run()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        rate, accepted = accepted_rate(api.url)
        steady = steady_rate(api.url)
        throttled = metrics.registry.get_sample_value(
            "campaign_send_retries_total", {"error_code": "META_130429"}
        )
    return {
        "target_per_s": target,
        "achieved_per_s": round(rate, 2),
        "ratio": round(rate / target, 3),
        "steady_per_s": round(steady, 2),
        "accepted": accepted,
        "concurrency": concurrency,
        "throttled_answers": int(throttled or 0),
        "consumer_cpu_ms_per_recipient": round(1000 * cpu / max(accepted, 1), 3),
        "wall_s": round(wall, 1),
    }


def seed_loop(workdir: Path, recipients: int) -> dict[str, Any]:
    """The seed's pacing: one send after another, then a fixed 50 ms sleep."""
    with CloudApiProcess(workdir, rules=[{"latency_ms": list(LATENCY_MS)}], seed=3) as api:
        sender = CloudApiSender(api_settings(api.url))
        for phone in numbers(recipients):
            sender.send(TemplateMessage(to=phone, template_name="order_update", language="en_US"))
            time.sleep(0.05)
        sender.close()
        rate, accepted = accepted_rate(api.url)
    return {"achieved_per_s": round(rate, 2), "accepted": accepted}


# -- 2. round trips on the moto stack -------------------------------------------------------


def round_trips(workdir: Path, recipients: int) -> dict[str, Any]:
    from campaigns.aws.bulk import BulkRecipients  # noqa: PLC0415
    from campaigns.aws.store import DynamoStore  # noqa: PLC0415
    from campaigns.operator.commands import Producer  # noqa: PLC0415 (the bench's own wiring)
    from campaigns.wiring import build_engine, build_queue  # noqa: PLC0415
    from sandbox.aws import MotoServer  # noqa: PLC0415

    calls: Counter[str] = Counter()
    phase = {"name": "producer"}

    def count(model: Any, **_: Any) -> None:
        calls[f"{phase['name']}:{model.service_model.service_name}:{model.name}"] += 1

    original: Callable[..., Any] = aws._client

    def counting(*args: Any, **kwargs: Any) -> Any:
        client = original(*args, **kwargs)
        client.meta.events.register("before-call", count)
        return client

    aws._client = counting
    try:
        with MotoServer() as moto, CloudApiProcess(workdir, rules=[], seed=3) as api:
            os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench")  # noqa: S106 (moto)
            settings = api_settings(
                api.url, aws_endpoint_url=moto.url, consumer_concurrency=4, daily_cap=0
            )
            provision(dynamodb_client(settings), sqs_client(settings), settings)
            db = dynamodb_client(settings)
            producer = Producer(
                settings=settings,
                store=DynamoStore(db, settings),
                bulk=BulkRecipients(db, settings.campaigns_table, settings.recipients_table),
                queue_factory=lambda: build_queue(settings),
            )
            csv_file = workdir / "round-trips.csv"
            csv_file.write_text("phone\n" + "\n".join(f"+{p}" for p in numbers(recipients)) + "\n")
            campaign_id = producer.create("bench", "order_update", "en_US", "POSITIONAL")[
                "campaignId"
            ]
            producer.populate(campaign_id, csv_file, "IN")
            producer.transition(campaign_id, Action.START)
            phase["name"] = "consumer"
            engine = build_engine(settings)
            limiter = TokenBucket(500.0)
            worker = Worker(
                queue=build_queue(settings),
                executors=[engine.executor(limiter, "bench") for _ in range(4)],
                metrics=engine.metrics,
                config=WorkerConfig(visibility_timeout_s=60, poll_wait_s=1, once=True),
                handle_signals=False,
            )
            worker.run()
            final = engine.store.require_campaign(campaign_id)
    finally:
        aws._client = original
    writes = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem"}
    reads = {"GetItem", "Query", "Scan", "BatchGetItem"}

    def per_recipient(which: str, service: str, names: set[str] | None) -> float:
        total = sum(
            n
            for key, n in calls.items()
            if key.startswith(f"{which}:{service}:")
            and (names is None or key.split(":")[2] in names)
        )
        return round(total / (processed if which == "consumer" else recipients), 3)

    processed = max(final.sent_count + final.failed_count + final.unknown_count, 1)
    return {
        "recipients": recipients,
        "processed": processed,
        "sent": final.sent_count,
        "status": final.status.value,
        "consumer_dynamodb_writes_per_recipient": per_recipient("consumer", "dynamodb", writes),
        "consumer_dynamodb_reads_per_recipient": per_recipient("consumer", "dynamodb", reads),
        "consumer_sqs_calls_per_recipient": per_recipient("consumer", "sqs", None),
        "producer_dynamodb_calls_per_recipient": per_recipient("producer", "dynamodb", None),
        "producer_sqs_calls_per_recipient": per_recipient("producer", "sqs", None),
        "calls": dict(sorted(calls.items())),
    }


# -- 3. engine overhead ---------------------------------------------------------------------


def engine_overhead(recipients: int) -> dict[str, Any]:
    store, clock = MemoryStore(), ManualClock()
    campaign_id = new_campaign_id()
    store.add_campaign(
        Campaign(campaign_id, "bench", "order_update", "en_US", CampaignStatus.RUNNING)
    )
    phones = numbers(recipients)
    store.add_recipients(campaign_id, phones)
    executor = BatchExecutor(
        store=store,
        guard=MemoryCapGuard(0),
        sender=FakeSender(),
        limiter=Unlimited(),
        clock=clock,
        metrics=EngineMetrics(),
        owner="bench",
        lease_s=60,
    )
    batches = [new_batch(campaign_id, phones[i : i + 25]) for i in range(0, recipients, 25)]
    cpu = time.process_time()
    for batch in batches:
        executor.run(batch)
    cpu = time.process_time() - cpu
    return {"recipients": recipients, "cpu_ms_per_recipient": round(1000 * cpu / recipients, 4)}


# -- 4. producer at scale -------------------------------------------------------------------


def recipients_csv(workdir: Path, size: int) -> Path:
    """``size`` distinct valid rows with one parameter column (made once per run)."""
    csv_file = workdir / f"recipients-{size}.csv"
    if not csv_file.exists():
        with csv_file.open("w") as handle:
            handle.write("phone,name\n")
            rng = random.Random(size)
            for i in range(size):
                handle.write(f"+91 9{i:09d},Name{rng.randrange(1000)}\n")
    return csv_file


def producer_at_scale(workdir: Path, sizes: list[int], naive_size: int) -> list[dict[str, Any]]:
    results = []
    workdir.mkdir(parents=True, exist_ok=True)
    runs = [("ours", size) for size in sizes] + [("naive", naive_size)]
    for impl, size in runs:
        csv_file = recipients_csv(workdir, size)
        done = subprocess.run(
            [sys.executable, "-m", "bench.producer_scale", "--impl", impl, "--csv", str(csv_file)],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        result = json.loads(done.stdout.strip().splitlines()[-1])
        result["recipients"] = size
        # What the calls would cost against real DynamoDB/SQS one after another (~5 ms each).
        result["projected_s_at_5ms_per_call"] = round(
            (result["dynamodb_calls"] + result["sqs_calls"]) * 0.005 + result["cpu_s"], 1
        )
        results.append(result)
    return results


# -- the table ------------------------------------------------------------------------------


def table(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    rate = results["send_rate"]
    rows = [
        (
            "send rate, 80 msg/s target, 150±50 ms API",
            "≥ 0.95 of target",
            f"{rate['achieved_per_s']} msg/s = {rate['ratio']:.3f} (steady {rate['steady_per_s']})",
        ),
        (
            "… versus the seed's loop (send + 50 ms sleep)",
            "ratio",
            f"{results['seed_loop']['achieved_per_s']} msg/s → x"
            f"{rate['achieved_per_s'] / max(results['seed_loop']['achieved_per_s'], 0.01):.1f}",
        ),
        (
            "… with 10 % of answers 130429",
            "(reported)",
            f"{results['send_rate_throttled']['achieved_per_s']} msg/s accepted",
        ),
        (
            "consumer CPU per recipient, real HTTP",
            "(reported)",
            f"{rate['consumer_cpu_ms_per_recipient']} ms",
        ),
    ]
    trips = results["round_trips"]
    rows += [
        (
            "DynamoDB writes per recipient (consumer)",
            "≤ 4",
            str(trips["consumer_dynamodb_writes_per_recipient"]),
        ),
        (
            "DynamoDB reads per recipient (consumer)",
            "≤ 1",
            str(trips["consumer_dynamodb_reads_per_recipient"]),
        ),
        (
            "SQS calls per recipient (consumer)",
            "≤ 0.15",
            str(trips["consumer_sqs_calls_per_recipient"]),
        ),
        (
            "engine CPU per recipient, all ports faked",
            "< 1 ms",
            f"{results['engine_overhead']['cpu_ms_per_recipient']} ms",
        ),
    ]
    naive = next(r for r in results["producer"] if r["impl"] == "naive")
    for run in results["producer"]:
        if run["impl"] != "ours":
            continue
        goal = "< 150 MB" if run["recipients"] <= 100_000 else "< 300 MB"
        rows.append(
            (
                f"producer peak RSS, {run['recipients']:,} recipients",
                goal,
                f"{run['peak_rss_mb']} MB",
            )
        )
        rows.append(
            (
                f"producer calls (DynamoDB + SQS), {run['recipients']:,}",
                "(reported)",
                f"{run['dynamodb_calls']:,} + {run['sqs_calls']:,}, {run['wall_s']} s",
            )
        )
        if run["recipients"] == naive["recipients"]:
            ours_calls = run["dynamodb_calls"] + run["sqs_calls"]
            naive_calls = naive["dynamodb_calls"] + naive["sqs_calls"]
            rows.append(
                (
                    f"… versus naive per-item, {naive['recipients']:,}",
                    "ratio",
                    f"calls x{naive_calls / ours_calls:.0f} fewer; projected at 5 ms/call "
                    f"{run['projected_s_at_5ms_per_call']} s vs "
                    f"{naive['projected_s_at_5ms_per_call']} s; RSS {run['peak_rss_mb']} vs "
                    f"{naive['peak_rss_mb']} MB",
                )
            )
    return rows + api_rows(results["api"]) + receipts_rows(results["receipts"])


def receipts_rows(receipts: dict[str, Any]) -> list[tuple[str, str, str]]:
    memory, moto, loop = receipts["in_memory"], receipts["moto"], receipts["loop"]
    by_concurrency = {run["concurrency"]: run for run in loop["runs"]}
    return [
        (
            f"status webhooks applied, one thread, {memory['statuses']:,} statuses",
            "(reported)",
            f"{memory['per_s_one_thread']:,}/s (parse + apply, in-memory store); "
            f"{memory['cpu_ms_per_status']} ms CPU each",
        ),
        (
            "DynamoDB requests per status (real adapter)",
            "(reported)",
            f"{moto['dynamodb_writes_per_status']} writes + {moto['dynamodb_reads_per_status']} "
            f"reads; {moto['transactions_per_status']} transactions; "
            f"{moto['write_units_per_status']} WCU",
        ),
        (
            f"receipts loop, {by_concurrency[1]['statuses']:,} statuses, "
            f"{loop['round_trip_ms']:g} ms per store/queue call, RECEIPTS_CONCURRENCY 8 vs 1",
            "ratio",
            f"{by_concurrency[8]['per_s']:,}/s vs {by_concurrency[1]['per_s']:,}/s = "
            f"x{loop['ratio_8_over_1']} (10: {by_concurrency[10]['per_s']:,}/s = "
            f"x{loop['ratio_10_over_1']}); same end state: {loop['same_end_state']}",
        ),
    ]


def api_rows(api: dict[str, Any]) -> list[tuple[str, str, str]]:
    get, upload = api["get_campaign"], api["upload"]
    return [
        (
            "API GET /api/campaigns/{id}, one process",
            "(reported)",
            f"{get['per_s']} req/s ({get['client_threads']} clients; p50 {get['p50_ms']} ms, "
            f"p99 {get['p99_ms']} ms)",
        ),
        (
            f"API upload + import, {upload['rows']:,} rows, versus the CLI",
            "ratio",
            f"{upload['api_wall_s']} s vs {upload['cli_wall_s']} s = x{upload['api_over_cli']}; "
            f"RSS {upload['api_server_peak_rss_mb']} vs {upload['cli_peak_rss_mb']} MB",
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: correctness only")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    smoke = args.smoke
    configure_logs("console", "warning")  # the table is the output
    workdir = Path(tempfile.mkdtemp(prefix="campaign-bench-"))
    started = time.perf_counter()
    results: dict[str, Any] = {"smoke": smoke, "machine": {"cpus": os.cpu_count()}}
    print("1/6 send rate …", flush=True)
    results["send_rate"] = send_rate(workdir / "rate", 100 if smoke else 2000, 80.0)
    results["seed_loop"] = seed_loop(workdir / "seed", 10 if smoke else 100)
    results["send_rate_throttled"] = send_rate(
        workdir / "throttled", 100 if smoke else 1000, 80.0, throttle=0.1
    )
    print("2/6 round trips on the moto stack …", flush=True)
    results["round_trips"] = round_trips(workdir / "trips", 50 if smoke else 500)
    print("3/6 engine overhead …", flush=True)
    results["engine_overhead"] = engine_overhead(500 if smoke else 20_000)
    print("4/6 producer at scale …", flush=True)
    results["producer"] = producer_at_scale(
        workdir / "producer",
        [1000] if smoke else [100_000, 1_000_000],
        1000 if smoke else 100_000,
    )
    print("5/6 operator API …", flush=True)
    results["api"] = api_bench.figures(
        workdir / "api",
        recipients_csv(workdir / "producer", 1000 if smoke else 100_000),
        smoke=smoke,
    )
    print("6/6 status webhooks applied …", flush=True)
    results["receipts"] = receipts_bench.figures(smoke=smoke)
    results["total_s"] = round(time.perf_counter() - started, 1)
    rows = table(results)
    results["table"] = [{"measure": m, "goal": g, "measured": v} for m, g, v in rows]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2))
    width = max(len(m) for m, _, _ in rows)
    print(f"\n{'measure':{width}}  {'goal':18}  measured")
    for measure, goal, value in rows:
        print(f"{measure:{width}}  {goal:18}  {value}")
    print(f"\n{results['total_s']} s in all; results in {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
