"""Status webhooks applied: how many a second one receipts thread applies (parse + apply, CPU
bound, the in-memory store), how many DynamoDB requests each costs (the real adapter on moto's
server, every call counted with a botocore hook), and how many a second the receipts loop gets
through at RECEIPTS_CONCURRENCY 1 versus 8 (and 10, a whole receive at once) when every store
and queue call takes a round trip (5 ms slept over the in-memory adapters). The stream is what
Meta sends: sent, delivered and, for 70 % of users, read, 10 % of statuses duplicated,
shuffled, one status per body (as Meta mostly posts them)."""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from campaigns.aws.bulk import BulkRecipients
from campaigns.aws.clients import dynamodb_client, sqs_client
from campaigns.aws.provision import provision
from campaigns.aws.store import DynamoStore
from campaigns.domain.clock import SystemClock
from campaigns.domain.message import new_batch
from campaigns.domain.models import (
    Action,
    Campaign,
    CampaignStatus,
    DeliveryApplied,
    DeliveryReport,
    new_campaign_id,
)
from campaigns.domain.webhooks import parse
from campaigns.engine.executor import BatchExecutor
from campaigns.engine.metrics import EngineMetrics
from campaigns.engine.receipts import ReceiptApplier
from campaigns.memory import FakeSender, MemoryCapGuard, MemoryQueue, MemoryStore, Unlimited
from campaigns.ports import ReceivedMessage, Store
from campaigns.settings import load_settings
from consumer.receipts import ReceiptsConfig, ReceiptsLoop
from sandbox.aws import MotoServer

READ_SHARE = 0.7
DUPLICATES = 0.1
T0 = 1_767_225_700
WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
ROUND_TRIP_S = 0.005  # a DynamoDB or SQS request inside one region, about
LOOP_CONCURRENCY = (1, 8, 10)  # RECEIPTS_CONCURRENCY: one at a time, the default, a whole receive


def _phones(count: int) -> list[str]:
    return [f"9198{i:08d}" for i in range(count)]


def _send(store: Store, campaign_id: str, phones: list[str]) -> dict[str, str]:
    """Every phone SENT through the real executor: phone -> wamid, callback data as in life."""
    sender = FakeSender()
    executor = BatchExecutor(
        store=store,
        guard=MemoryCapGuard(0),
        sender=sender,
        limiter=Unlimited(),
        clock=SystemClock(),
        metrics=EngineMetrics(),
        owner="bench",
        lease_s=60,
    )
    for start in range(0, len(phones), 25):
        executor.run(new_batch(campaign_id, phones[start : start + 25]))
    return dict(sender.accepted)


def _bodies(campaign_id: str, wamids: dict[str, str], seed: int) -> list[str]:
    rng = random.Random(seed)
    statuses: list[dict[str, Any]] = []
    for phone, wamid in wamids.items():
        kinds = ["sent", "delivered"] + (["read"] if rng.random() < READ_SHARE else [])
        for offset, kind in enumerate(kinds):
            statuses.append({"id": wamid, "status": kind, "timestamp": str(T0 + offset),
                             "recipient_id": phone,
                             "biz_opaque_callback_data": f"{campaign_id}:{phone}"})  # fmt: skip
    statuses += [s for s in statuses if rng.random() < DUPLICATES]
    rng.shuffle(statuses)
    return [
        json.dumps(
            {
                "object": "whatsapp_business_account",
                "entry": [
                    {
                        "id": "1",
                        "changes": [
                            {
                                "field": "messages",
                                "value": {"messaging_product": "whatsapp", "statuses": [s]},
                            }
                        ],
                    }
                ],
            }
        )
        for s in statuses
    ]


def _apply(store: Any, bodies: list[str]) -> tuple[float, float]:
    applier = ReceiptApplier(store, store, EngineMetrics(), frozenset({"STOP"}))
    wall, cpu = time.perf_counter(), time.process_time()
    for body in bodies:
        parsed = parse(body)
        applier.apply(parsed.events, parsed.skipped)
    return time.perf_counter() - wall, time.process_time() - cpu


def in_memory(recipients: int) -> dict[str, Any]:
    store = MemoryStore()
    campaign_id = new_campaign_id()
    store.add_campaign(
        Campaign(campaign_id, "bench", "order_update", "en_US", CampaignStatus.RUNNING)
    )
    phones = _phones(recipients)
    store.add_recipients(campaign_id, phones)
    bodies = _bodies(campaign_id, _send(store, campaign_id, phones), seed=recipients)
    wall, cpu = _apply(store, bodies)
    campaign = store.require_campaign(campaign_id)
    return {
        "recipients": recipients,
        "statuses": len(bodies),
        "per_s_one_thread": round(len(bodies) / wall),
        "cpu_ms_per_status": round(1000 * cpu / len(bodies), 3),
        "delivered": campaign.delivered_count,
        "read": campaign.read_count,
    }


def on_moto(recipients: int) -> dict[str, Any]:
    calls: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        calls[model.name] += 1

    with MotoServer() as moto:
        os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench")  # noqa: S106 (moto)
        settings = load_settings(aws_endpoint_url=moto.url, daily_cap=0)
        provision(dynamodb_client(settings), sqs_client(settings), settings)
        client = dynamodb_client(settings)
        store = DynamoStore(client, settings)
        campaign_id = new_campaign_id()
        store.create_campaign(
            Campaign(campaign_id, "bench", "order_update", "en_US", CampaignStatus.DRAFT)
        )
        phones = _phones(recipients)
        BulkRecipients(client, settings.campaigns_table, settings.recipients_table).write_pending(
            campaign_id, [(p, ()) for p in phones]
        )
        store.add_total(campaign_id, len(phones))
        store.transition(campaign_id, Action.START)
        bodies = _bodies(campaign_id, _send(store, campaign_id, phones), seed=recipients)
        client.meta.events.register("before-call", count)
        wall, _ = _apply(store, bodies)
        campaign = store.require_campaign(campaign_id)
    writes = sum(n for name, n in calls.items() if name in WRITES)
    reads = sum(n for name, n in calls.items() if name not in WRITES)
    return {
        "recipients": recipients,
        "statuses": len(bodies),
        "dynamodb_writes_per_status": round(writes / len(bodies), 3),
        "dynamodb_reads_per_status": round(reads / len(bodies), 3),
        "transactions_per_status": round(calls["TransactWriteItems"] / len(bodies), 3),
        # Items under 1 KB: a plain write is 1 WCU; a transaction's two items cost 2 WCU each.
        "write_units_per_status": round(
            (writes - calls["TransactWriteItems"] + 4 * calls["TransactWriteItems"]) / len(bodies),
            2,
        ),
        "moto_per_s": round(len(bodies) / wall, 1),
        "delivered": campaign.delivered_count,
        "read": campaign.read_count,
        "calls": dict(sorted(calls.items())),
    }


class SlowDeliveries:
    """The DeliveryStore of a MemoryStore, each call a round trip late."""

    def __init__(self, store: MemoryStore, latency_s: float) -> None:
        self._store = store
        self._latency_s = latency_s

    def apply_delivery(self, report: DeliveryReport) -> DeliveryApplied:
        time.sleep(self._latency_s)
        return self._store.apply_delivery(report)

    def find_by_message_id(self, message_id: str) -> tuple[str, str] | None:
        time.sleep(self._latency_s)
        return self._store.find_by_message_id(message_id)

    def link_user(self, user_id: str, phone: str) -> None:
        time.sleep(self._latency_s)
        self._store.link_user(user_id, phone)

    def phone_for_user(self, user_id: str) -> str | None:
        time.sleep(self._latency_s)
        return self._store.phone_for_user(user_id)

    def unsuppress(self, phone: str, reason: str) -> bool:
        time.sleep(self._latency_s)
        return self._store.unsuppress(phone, reason)

    def running_campaigns(self) -> list[Campaign]:
        time.sleep(self._latency_s)
        return self._store.running_campaigns()


class SlowQueue:
    """A MemoryQueue as the receipts loop sees it (BatchQueue), each call a round trip late."""

    def __init__(self, queue: MemoryQueue, latency_s: float) -> None:
        self._queue = queue
        self._latency_s = latency_s
        self.calls: Counter[str] = Counter()

    def receive(
        self, max_messages: int, wait_s: int, visibility_timeout_s: int | None = None
    ) -> list[ReceivedMessage]:
        self.calls["ReceiveMessage"] += 1
        time.sleep(self._latency_s)
        return self._queue.receive(max_messages, wait_s, visibility_timeout_s)

    def delete(self, receipt_handles: Sequence[str]) -> list[str]:
        self.calls["DeleteMessageBatch"] += 1
        time.sleep(self._latency_s)
        return self._queue.delete(receipt_handles)

    def change_visibility(self, receipt_handles: Sequence[str], timeout_s: int) -> list[str]:
        self.calls["ChangeMessageVisibilityBatch"] += 1
        time.sleep(self._latency_s)
        return self._queue.change_visibility(receipt_handles, timeout_s)


def _through_the_loop(recipients: int, concurrency: int) -> dict[str, Any]:
    """The same stream, queued, drained by one ReceiptsLoop (``--once``) at ``concurrency``."""
    store = MemoryStore()
    campaign_id = new_campaign_id()
    store.add_campaign(
        Campaign(campaign_id, "bench", "order_update", "en_US", CampaignStatus.RUNNING)
    )
    phones = _phones(recipients)
    store.add_recipients(campaign_id, phones)
    bodies = _bodies(campaign_id, _send(store, campaign_id, phones), seed=recipients)
    memory_queue = MemoryQueue(visibility_timeout_s=600)
    memory_queue.send(bodies)
    queue = SlowQueue(memory_queue, ROUND_TRIP_S)
    metrics = EngineMetrics()
    loop = ReceiptsLoop(
        queue_factory=lambda: queue,
        applier=ReceiptApplier(
            SlowDeliveries(store, ROUND_TRIP_S), store, metrics, frozenset({"STOP"})
        ),
        metrics=metrics,
        config=ReceiptsConfig(poll_wait_s=0, once=True, concurrency=concurrency),
    )
    wall = time.perf_counter()
    loop.run(threading.Event())
    wall = time.perf_counter() - wall
    campaign = store.require_campaign(campaign_id)
    return {
        "concurrency": concurrency,
        "statuses": len(bodies),
        "applied": loop.stats.messages,
        "left": sum(memory_queue.depth()),
        "wall_s": round(wall, 2),
        "per_s": round(len(bodies) / wall, 1),
        "sqs_calls": dict(sorted(queue.calls.items())),
        "delivered": campaign.delivered_count,
        "read": campaign.read_count,
    }


def through_the_loop(recipients: int) -> dict[str, Any]:
    """Statuses a second through the receipts loop at each of LOOP_CONCURRENCY, side by side,
    with ROUND_TRIP_S per store and queue call (one call per status here; the DynamoDB adapter
    makes about 1.7, see ``on_moto``)."""
    runs = [_through_the_loop(recipients, concurrency) for concurrency in LOOP_CONCURRENCY]
    one = runs[0]["per_s"]
    return {
        "round_trip_ms": ROUND_TRIP_S * 1000,
        "runs": runs,
        "ratio_8_over_1": round(runs[1]["per_s"] / one, 2),
        "ratio_10_over_1": round(runs[2]["per_s"] / one, 2),
        "same_end_state": len({(r["delivered"], r["read"], r["applied"]) for r in runs}) == 1,
    }


def figures(*, smoke: bool) -> dict[str, Any]:
    return {
        "in_memory": in_memory(200 if smoke else 5000),
        "moto": on_moto(30 if smoke else 300),
        "loop": through_the_loop(20 if smoke else 300),
    }
