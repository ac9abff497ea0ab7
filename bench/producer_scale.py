"""One producer run (populate + start) in its own process, so its peak RSS is its own.

``python -m bench.producer_scale --impl ours|naive --csv FILE`` prints one JSON line.
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

from bench.fakeaws import FakeDynamoDB, FakeSQS
from campaigns.aws.bulk import BulkRecipients
from campaigns.aws.dynamo import serialize
from campaigns.aws.items import recipient_key
from campaigns.aws.queue import SqsQueue
from campaigns.aws.store import DynamoStore
from campaigns.domain.message import encode, new_batch
from campaigns.domain.models import Action, RecipientStatus
from campaigns.domain.phones import InvalidPhone, normalise
from campaigns.operator.commands import Producer
from campaigns.settings import load_settings

QUEUE_URL = "https://sqs.example/123456789012/campaign-batches"


def run_ours(
    db: FakeDynamoDB, sqs: FakeSQS, csv_file: Path, *, populate_only: bool = False
) -> dict[str, Any]:
    settings = load_settings()
    store = DynamoStore(db, settings)  # type: ignore[arg-type]
    queue = SqsQueue(sqs, QUEUE_URL)  # type: ignore[arg-type]
    producer = Producer(
        settings=settings,
        store=store,
        bulk=BulkRecipients(db, settings.campaigns_table, settings.recipients_table),  # type: ignore[arg-type]
        queue_factory=lambda: queue,
    )
    campaign_id = producer.create("bench", "order_update", "en_US", "POSITIONAL")["campaignId"]
    populated = producer.populate(campaign_id, csv_file, "IN")
    if populate_only:  # the CLI's side of the API upload benchmark
        return {"inserted": populated["inserted"], "enqueued": 0}
    started = producer.transition(campaign_id, Action.START)
    return {"inserted": populated["inserted"], "enqueued": started["enqueuedRecipients"]}


def run_naive(db: FakeDynamoDB, sqs: FakeSQS, csv_file: Path) -> dict[str, Any]:
    """How a first version would do it: the whole file in memory, one request per
    recipient to check and one to write, one SendMessage per batch."""
    settings = load_settings()
    store = DynamoStore(db, settings)  # type: ignore[arg-type]
    campaign_id = Producer(
        settings=settings,
        store=store,
        bulk=BulkRecipients(db, settings.campaigns_table, settings.recipients_table),  # type: ignore[arg-type]
        queue_factory=lambda: SqsQueue(sqs, QUEUE_URL),  # type: ignore[arg-type]
    ).create("bench", "order_update", "en_US", "POSITIONAL")["campaignId"]
    with csv_file.open(newline="") as handle:
        rows = list(csv.reader(handle))[1:]
    phones: list[str] = []
    for row in rows:
        try:
            phone = normalise(row[0])
        except InvalidPhone:
            continue
        key = recipient_key(campaign_id, phone)
        if db.get_item(TableName=settings.recipients_table, Key=key).get("Item"):
            continue
        item = key | serialize({"phone": phone, "status": RecipientStatus.PENDING.value})
        db.put_item(TableName=settings.recipients_table, Item=item)
        phones.append(phone)
    store.add_total(campaign_id, len(phones))
    store.transition(campaign_id, Action.START)
    for start in range(0, len(phones), settings.batch_size):
        batch = new_batch(campaign_id, phones[start : start + settings.batch_size])
        sqs.send_message(QueueUrl=QUEUE_URL, MessageBody=encode(batch))
    return {"inserted": len(phones), "enqueued": len(phones)}


def peak_rss_mb() -> float:
    """VmHWM: this process's own peak (``ru_maxrss`` would carry the parent's peak over from
    the fork that started us)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--impl", choices=["ours", "naive"], required=True)
    parser.add_argument("--csv", type=Path, required=True)
    parser.add_argument("--populate-only", action="store_true", help="only ours: no start")
    args = parser.parse_args()
    settings = load_settings()
    db, sqs = FakeDynamoDB(settings.recipients_table), FakeSQS()
    wall, cpu = time.perf_counter(), time.process_time()
    if args.impl == "ours":
        counts = run_ours(db, sqs, args.csv, populate_only=args.populate_only)
    else:
        counts = run_naive(db, sqs, args.csv)
    result = {
        "impl": args.impl,
        **counts,
        "wall_s": round(time.perf_counter() - wall, 2),
        "cpu_s": round(time.process_time() - cpu, 2),
        "peak_rss_mb": peak_rss_mb(),
        "dynamodb_calls": sum(db.calls.values()),
        "sqs_calls": sum(sqs.calls.values()),
        "calls": dict(db.calls) | dict(sqs.calls),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
