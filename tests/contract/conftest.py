"""The two adapter families every contract test runs over: the in-memory fakes
(campaigns/memory) and the real adapters on the in-thread moto server. A test asks for
``family`` and gets the same ports either way; what differs is only how they were built."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol

import pytest

from campaigns.aws.bulk import BulkRecipients
from campaigns.aws.dynamo import serialize
from campaigns.aws.guard import DynamoCapGuard
from campaigns.aws.items import recipient_key, suppression_key
from campaigns.aws.queue import SqsQueue, resolve_queue_url
from campaigns.aws.store import DynamoStore
from campaigns.domain.clock import iso_utc
from campaigns.domain.models import (
    Campaign,
    CampaignStatus,
    RecipientStatus,
    TemplateParam,
    new_campaign_id,
)
from campaigns.memory import ManualClock, MemoryBulk, MemoryCapGuard, MemoryQueue, MemoryStore
from campaigns.ports import (
    BatchQueue,
    CapGuard,
    DeliveryStore,
    OperatorStore,
    RecipientBulk,
    SendQueue,
    Store,
)
from campaigns.settings import Settings
from sandbox.ddbfaults import FaultDecider, FaultPlan, FaultyDynamoDBClient
from tests.harness import AwsClients

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

FAMILIES = ["memory", "dynamodb"]
PHONES = ["919800000001", "919800000002", "919800000003"]
LOST_ANSWER = FaultPlan(
    rate=1.0,
    after_write=1.0,
    codes=("InternalServerError",),
    operations=frozenset({"UpdateItem"}),
    times=1,
)


class ContractStore(Store, OperatorStore, DeliveryStore, Protocol):
    """Everything a store adapter implements: the executor's port, the operator's and the
    status webhooks'."""


class Queue(BatchQueue, SendQueue, Protocol):
    pass


@dataclass
class Family:
    name: str
    store: ContractStore
    bulk: RecipientBulk
    clock: ManualClock
    lose_next_answer: Callable[[], None]  # the next write lands, its answer is lost (retried)
    sharded: Callable[[int], ContractStore]  # another store on the same data, N counter shards
    legacy_suppression: Callable[[str, str], None]  # an item as the code before reason sets wrote
    # (campaign, phone, consumer, lease_until): SENDING as code before per-claim owners claimed
    # it, under the bare consumer id.
    legacy_claim: Callable[[str, str, str, float], None]

    def campaign(self, status: CampaignStatus = CampaignStatus.DRAFT, name: str = "c") -> str:
        campaign_id = new_campaign_id()
        self.store.create_campaign(
            Campaign(
                campaign_id, name, "tmpl", "en_US", status, created_at=iso_utc(self.clock.now())
            )
        )
        return campaign_id

    def populated(
        self, status: CampaignStatus = CampaignStatus.RUNNING, phones: list[str] = PHONES
    ) -> str:
        campaign_id = self.campaign(status)
        params = (TemplateParam("name", "Asha"),)
        self.bulk.write_pending(campaign_id, [(phone, params) for phone in phones])
        self.store.add_total(campaign_id, len(phones))
        return campaign_id


def _memory_family() -> Family:
    clock = ManualClock()
    store = MemoryStore(clock)

    def sharded(shards: int) -> ContractStore:
        other = MemoryStore(clock, counter_shards=shards)
        other.campaigns, other.recipients = store.campaigns, store.recipients
        return other

    def legacy_suppression(phone: str, reason: str) -> None:
        store.suppressed[phone] = {reason}  # the fake has one layout: a one-reason set

    def legacy_claim(campaign_id: str, phone: str, consumer: str, lease_until: float) -> None:
        current = store.recipients[(campaign_id, phone)]
        store.recipients[(campaign_id, phone)] = replace(
            current,
            status=RecipientStatus.SENDING,
            attempts=current.attempts + 1,
            lease_owner=consumer,
            lease_until=lease_until,
        )

    return Family(
        "memory",
        store,
        MemoryBulk(store),
        clock,
        store.lose_next_answer,
        sharded,
        legacy_suppression,
        legacy_claim,
    )


def _dynamodb_family(settings: Settings, client: DynamoDBClient) -> Family:
    clock = ManualClock()
    decider = FaultDecider()
    faulty = FaultyDynamoDBClient(client, decider)
    store = DynamoStore(faulty, settings, clock)  # type: ignore[arg-type]
    bulk = BulkRecipients(client, settings.campaigns_table, settings.recipients_table)

    def sharded(shards: int) -> ContractStore:
        return DynamoStore(client, settings, clock, counter_shards=shards)

    def legacy_suppression(phone: str, reason: str) -> None:
        old = {"phone": phone, "reason": reason, "createdAt": "2025-06-01T00:00:00.000Z"}
        client.put_item(
            TableName=settings.campaigns_table, Item=suppression_key(phone) | serialize(old)
        )

    def legacy_claim(campaign_id: str, phone: str, consumer: str, lease_until: float) -> None:
        client.update_item(
            TableName=settings.recipients_table,
            Key=recipient_key(campaign_id, phone),
            UpdateExpression="SET #s = :s, leaseOwner = :o, leaseUntil = :u ADD attempts :one",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues=serialize(
                {":s": "SENDING", ":o": consumer, ":u": lease_until, ":one": 1}
            ),
        )

    return Family(
        "dynamodb",
        store,
        bulk,
        clock,
        lambda: decider.set_plan(LOST_ANSWER),
        sharded,
        legacy_suppression,
        legacy_claim,
    )


@pytest.fixture(params=FAMILIES)
def family(request: pytest.FixtureRequest) -> Family:
    if request.param == "memory":
        return _memory_family()
    clients: AwsClients = request.getfixturevalue("aws_clients")
    return _dynamodb_family(request.getfixturevalue("aws_settings"), clients.db)


@pytest.fixture(params=FAMILIES)
def queue(request: pytest.FixtureRequest) -> Queue:
    if request.param == "memory":
        return MemoryQueue()
    settings: Settings = request.getfixturevalue("aws_settings")
    clients: AwsClients = request.getfixturevalue("aws_clients")
    return SqsQueue(clients.sqs, resolve_queue_url(clients.sqs, settings.campaign_queue_name))


@dataclass
class Guards:
    """Cap guards of one family on one shared counter: ``build(cap)``;
    ``lose_next_refund_answer()``: the next refund lands, its answer is lost (so it is retried)."""

    build: Callable[[int], CapGuard]
    lose_next_refund_answer: Callable[[], None]


@pytest.fixture(params=FAMILIES)
def guards(request: pytest.FixtureRequest) -> Guards:
    if request.param == "memory":
        counters: dict[int, MemoryCapGuard] = {}  # one in-memory counter per cap: shared

        def lose_next_refund_answer() -> None:
            for guard in counters.values():
                guard.lose_next_answer()

        return Guards(
            lambda cap: counters.setdefault(cap, MemoryCapGuard(cap)), lose_next_refund_answer
        )
    settings: Settings = request.getfixturevalue("aws_settings")
    client = request.getfixturevalue("aws_clients").db
    decider = FaultDecider()
    refunds = FaultyDynamoDBClient(client, decider)

    def build(cap: int) -> CapGuard:
        return DynamoCapGuard(
            client,
            settings.campaigns_table,
            cap,
            refund_client=refunds,  # type: ignore[arg-type]
            clock=ManualClock(),
        )

    return Guards(build, lambda: decider.set_plan(LOST_ANSWER))
