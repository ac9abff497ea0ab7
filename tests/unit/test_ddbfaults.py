"""The DynamoDB fault-injection tooling, and the store surviving its hardest case: a write
that took effect but whose answer was lost."""

from __future__ import annotations

import time

import pytest
import requests
from botocore.retries.standard import ExponentialBackoff

from campaigns.aws.clients import dynamodb_client
from campaigns.aws.store import DynamoStore
from campaigns.domain.clock import iso_utc
from campaigns.domain.errors import StoreUnavailable
from campaigns.domain.models import (
    Action,
    Campaign,
    CampaignStatus,
    RecipientStatus,
    new_campaign_id,
)
from campaigns.memory import ManualClock
from campaigns.settings import Settings
from sandbox.aws import MotoServer
from sandbox.ddbfaults import (
    FaultDecider,
    FaultPlan,
    FaultyDynamoDBClient,
    server_state,
    set_server_plan,
)

PHONE = "919000000001"


class NoSleepClock(ManualClock):
    pass


def seeded_campaign(store: DynamoStore) -> str:
    campaign_id = new_campaign_id()
    store.create_campaign(
        Campaign(campaign_id, "c", "t", "en_US", CampaignStatus.RUNNING, created_at=iso_utc(0))
    )
    store.client.put_item(
        TableName=store.recipients_table,
        Item={
            "PK": {"S": f"CAMPAIGN#{campaign_id}"},
            "SK": {"S": f"USER#{PHONE}"},
            "phone": {"S": PHONE},
            "status": {"S": "PENDING"},
        },
    )
    return campaign_id


def test_a_fault_plan_is_reproducible_for_a_seed() -> None:
    plan = FaultPlan(rate=0.5, seed=3)
    first, second = FaultDecider(plan), FaultDecider(plan)
    outcomes = [first.decide("UpdateItem") for _ in range(50)]
    assert outcomes == [second.decide("UpdateItem") for _ in range(50)]
    assert any(outcomes)
    assert not all(outcomes)
    assert all(o is None or not o.after for o in (first.decide("GetItem") for _ in range(50)))


@pytest.mark.parametrize("bad", [{"rate": 2}, {"codes": ["Nope"]}, {"surprise": 1}])
def test_a_bad_fault_plan_is_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r".+"):
        FaultPlan.from_dict(bad)


def test_a_commit_whose_answer_was_lost_is_recognised_not_repeated(aws_settings: Settings) -> None:
    plain = DynamoStore(dynamodb_client(aws_settings), aws_settings)
    campaign_id = seeded_campaign(plain)
    claim = plain.claim(campaign_id, PHONE, "me", time.time() + 60).claim
    assert claim is not None
    decider = FaultDecider(
        FaultPlan(rate=1.0, after_write=1.0, codes=("InternalServerError",), seed=1)
    )
    faulty = FaultyDynamoDBClient(dynamodb_client(aws_settings), decider)
    store = DynamoStore(faulty, aws_settings, clock=NoSleepClock())  # type: ignore[arg-type]

    # Every UpdateItem takes effect and then "fails": the retry finds its own result.
    result = store.commit_sent(claim, "wamid.ONE", time.time())

    assert result.committed
    recipient = next(iter(plain.iter_recipients(campaign_id)))
    assert (recipient.status, recipient.message_id) == (RecipientStatus.SENT, "wamid.ONE")
    assert decider.injected == {"UpdateItem:InternalServerError:after": 2}


def test_an_idempotent_counter_add_counts_once_when_its_answer_is_lost(
    aws_settings: Settings,
) -> None:
    plain = DynamoStore(dynamodb_client(aws_settings), aws_settings)
    campaign_id = seeded_campaign(plain)
    decider = FaultDecider(FaultPlan(rate=1.0, after_write=1.0, seed=2))
    faulty = FaultyDynamoDBClient(dynamodb_client(aws_settings), decider)
    store = DynamoStore(faulty, aws_settings, clock=NoSleepClock())  # type: ignore[arg-type]

    campaign = store.add_counts(campaign_id, sent=1, slot="thread-1")

    assert campaign is not None
    assert campaign.sent_count == 1
    assert plain.require_campaign(campaign_id).sent_count == 1


def test_the_moto_server_injects_faults_that_botocore_retries_and_reports_them(
    aws_settings: Settings, moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # botocore's standard-mode backoff between the retries (random up to 2, 4, 8, 16 s) is
    # botocore's, not what is under test: the retries themselves are. No waiting here.
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0.0)
    store = DynamoStore(dynamodb_client(aws_settings), aws_settings)
    campaign_id = seeded_campaign(store)
    set_server_plan(moto_server.url, FaultPlan(rate=1.0, operations=frozenset({"Query"})))
    try:
        with pytest.raises(StoreUnavailable, match="Query"):
            store.get_campaign(campaign_id)
        state = server_state(moto_server.url)
    finally:
        set_server_plan(moto_server.url, FaultPlan())
    assert sum(state["injected"].values()) >= 5  # botocore retried before giving up
    assert store.require_campaign(campaign_id).campaign_id == campaign_id


def test_the_server_refuses_a_bad_plan(moto_server: MotoServer) -> None:
    with requests.put(
        f"{moto_server.url}/_chaos/dynamodb", json={"rate": 7}, timeout=5
    ) as response:
        assert response.status_code == 400


def test_a_transition_whose_answer_was_lost_still_succeeds(
    aws_settings: Settings, moto_server: MotoServer
) -> None:
    store = DynamoStore(dynamodb_client(aws_settings), aws_settings)
    campaign_id = seeded_campaign(store)
    store.transition(campaign_id, Action.PAUSE)
    # The next UpdateItem takes effect, then answers 500: botocore sends it again.
    lost = FaultPlan(
        rate=1.0, after_write=1.0, codes=("InternalServerError",), times=1,
        operations=frozenset({"UpdateItem"}),
    )  # fmt: skip
    set_server_plan(moto_server.url, lost)
    try:
        resumed = store.transition(campaign_id, Action.RESUME)
        injected = server_state(moto_server.url)["injected"]
    finally:
        set_server_plan(moto_server.url, FaultPlan())

    assert injected == {"UpdateItem:InternalServerError:after": 1}
    assert resumed.status is CampaignStatus.RUNNING
    assert store.require_campaign(campaign_id).status is CampaignStatus.RUNNING
