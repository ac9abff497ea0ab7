"""Status webhooks applied: how many a second one receipts thread applies (parse + apply, CPU
bound, the in-memory store), and how many DynamoDB requests each costs (the real adapter on
moto's server, every call counted with a botocore hook). The stream is what Meta sends: sent,
delivered and, for 70 % of users, read, 10 % of statuses duplicated, shuffled, one status per
body (as Meta mostly posts them)."""

from __future__ import annotations

import json
import os
import random
import time
from collections import Counter
from typing import Any

from campaigns.aws.bulk import BulkRecipients
from campaigns.aws.clients import dynamodb_client, sqs_client
from campaigns.aws.provision import provision
from campaigns.aws.store import DynamoStore
from campaigns.domain.clock import SystemClock
from campaigns.domain.message import new_batch
from campaigns.domain.models import Action, Campaign, CampaignStatus, new_campaign_id
from campaigns.domain.webhooks import parse
from campaigns.engine.executor import BatchExecutor
from campaigns.engine.metrics import EngineMetrics
from campaigns.engine.receipts import ReceiptApplier
from campaigns.memory import FakeSender, MemoryCapGuard, MemoryStore, Unlimited
from campaigns.ports import Store
from campaigns.settings import load_settings
from sandbox.aws import MotoServer

READ_SHARE = 0.7
DUPLICATES = 0.1
T0 = 1_767_225_700
WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}


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


def figures(*, smoke: bool) -> dict[str, Any]:
    return {
        "in_memory": in_memory(200 if smoke else 5000),
        "moto": on_moto(30 if smoke else 300),
    }
