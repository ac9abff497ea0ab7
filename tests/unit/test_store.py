"""The DynamoDB store on moto: campaign state machine and the recipient hot path."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from campaigns.aws.bulk import BulkRecipients
from campaigns.aws.clients import dynamodb_client
from campaigns.aws.counters import shard_of
from campaigns.aws.deliveries import DELIVERY_SHARDS
from campaigns.aws.dynamo import call, deserialize
from campaigns.aws.items import (
    campaign_key,
    delivery_shard_key,
    recipient_key,
    suppression_key,
    user_link_key,
)
from campaigns.aws.provision import MESSAGE_ID_INDEX, ensure_table
from campaigns.aws.store import DynamoStore
from campaigns.domain.clock import iso_utc
from campaigns.domain.errors import CampaignNotFound, InvalidTransition, StoreUnavailable
from campaigns.domain.models import (
    TRANSITIONS,
    Action,
    Campaign,
    CampaignStatus,
    Claim,
    DeliveryReport,
    DeliveryStatus,
    RecipientStatus,
    TemplateParam,
    new_campaign_id,
)
from campaigns.memory import ManualClock
from campaigns.settings import Settings, load_settings

OWNER = "consumer-a"
OTHER = "consumer-b"
PHONE = "919876543210"
TEMPLATE = "vendor_signup_confirmation"
TIMESTAMP_ATTRS = {
    Action.START: "startedAt",
    Action.PAUSE: "pausedAt",
    Action.RESUME: "resumedAt",
    Action.CANCEL: "cancelledAt",
    Action.COMPLETE: "completedAt",
}
# The operator actions that bring a new (DRAFT) campaign to each status.
PATH_TO: dict[CampaignStatus, list[Action]] = {
    CampaignStatus.DRAFT: [],
    CampaignStatus.RUNNING: [Action.START],
    CampaignStatus.PAUSED: [Action.START, Action.PAUSE],
    CampaignStatus.COMPLETED: [Action.START, Action.COMPLETE],
    CampaignStatus.CANCELLED: [Action.CANCEL],
}


def create(
    store: DynamoStore, status: CampaignStatus = CampaignStatus.DRAFT, name: str = "spring sale"
) -> str:
    campaign_id = new_campaign_id()
    store.create_campaign(
        Campaign(
            campaign_id,
            name,
            TEMPLATE,
            "en_US",
            CampaignStatus.DRAFT,
            created_at=iso_utc(time.time()),
        )
    )
    for action in PATH_TO[status]:
        store.transition(campaign_id, action)
    return campaign_id


def populate(store: DynamoStore, campaign_id: str, phones: list[str]) -> None:
    bulk = BulkRecipients(store.client, store.campaigns_table, store.recipients_table)
    written = bulk.write_pending(campaign_id, [(p, (TemplateParam("1", "Asha"),)) for p in phones])
    store.add_total(campaign_id, written)


def raw_campaign(store: DynamoStore, campaign_id: str) -> dict[str, Any]:
    response = store.client.get_item(
        TableName=store.campaigns_table, Key=campaign_key(campaign_id), ConsistentRead=True
    )
    return deserialize(response.get("Item", {}))


def raw_recipient(store: DynamoStore, campaign_id: str, phone: str = PHONE) -> dict[str, Any]:
    response = store.client.get_item(
        TableName=store.recipients_table,
        Key=recipient_key(campaign_id, phone),
        ConsistentRead=True,
    )
    return deserialize(response.get("Item", {}))


@pytest.fixture
def campaign_id(dynamo_store: DynamoStore) -> str:
    """A RUNNING campaign with one PENDING recipient, ``PHONE``."""
    campaign_id = create(dynamo_store, CampaignStatus.RUNNING)
    populate(dynamo_store, campaign_id, [PHONE])
    return campaign_id


def claimed(store: DynamoStore, campaign_id: str, lease_until: float | None = None) -> Claim:
    until = lease_until if lease_until is not None else time.time() + 60
    result = store.claim(campaign_id, PHONE, OWNER, until)
    assert result.claim is not None
    return result.claim


# -- campaigns ------------------------------------------------------------------------------


def test_a_created_campaign_reads_back_in_the_seed_layout(dynamo_store: DynamoStore) -> None:
    campaign_id = create(dynamo_store)

    campaign = dynamo_store.get_campaign(campaign_id)

    assert campaign is not None
    assert (campaign.campaign_id, campaign.name, campaign.template_name) == (
        campaign_id,
        "spring sale",
        TEMPLATE,
    )
    assert campaign.status is CampaignStatus.DRAFT
    assert (campaign.sent_count, campaign.failed_count, campaign.unknown_count) == (0, 0, 0)
    item = raw_campaign(dynamo_store, campaign_id)
    assert item["PK"] == f"CAMPAIGN#{campaign_id}"
    assert item["SK"] == "METADATA"
    assert item["channel"] == "WHATSAPP"
    assert item["audienceType"] == "CSV"
    assert item["templateLanguage"] == "en_US"
    assert item["totalRecipients"] == 0
    assert item["createdAt"].endswith("Z")


def test_a_missing_campaign_reads_as_none_or_not_found(dynamo_store: DynamoStore) -> None:
    missing = new_campaign_id()

    assert dynamo_store.get_campaign(missing) is None
    with pytest.raises(CampaignNotFound, match=missing):
        dynamo_store.require_campaign(missing)


def test_campaigns_are_listed_oldest_first_without_other_items(
    dynamo_store: DynamoStore,
) -> None:
    ids = [create(dynamo_store, name=f"campaign {i}") for i in range(3)]
    for index, campaign_id in enumerate(ids):  # make the creation order unambiguous
        dynamo_store.client.update_item(
            TableName=dynamo_store.campaigns_table,
            Key=campaign_key(campaign_id),
            UpdateExpression="SET createdAt = :t",
            ExpressionAttributeValues={":t": {"S": f"2026-01-0{3 - index}T00:00:00.000Z"}},
        )
    dynamo_store.suppress(PHONE, "META_131050")

    listed = dynamo_store.list_campaigns()

    assert [c.campaign_id for c in listed] == list(reversed(ids))


@pytest.mark.parametrize("action", list(Action))
def test_each_transition_is_allowed_from_its_sources_and_refused_from_every_other_status(
    dynamo_store: DynamoStore, action: Action
) -> None:
    sources, target = TRANSITIONS[action]
    for status in CampaignStatus:
        campaign_id = create(dynamo_store, status)
        if status in sources:
            campaign = dynamo_store.transition(campaign_id, action)
            assert campaign.status is target, status
            item = raw_campaign(dynamo_store, campaign_id)
            assert item["status"] == target.value
            assert item[TIMESTAMP_ATTRS[action]].endswith("Z")
        else:
            with pytest.raises(InvalidTransition) as refused:
                dynamo_store.transition(campaign_id, action)
            assert str(refused.value) == f"Campaign status is {status.value}: cannot {action}"
            assert raw_campaign(dynamo_store, campaign_id)["status"] == status.value


def test_a_pause_records_its_reason_and_a_resume_clears_it(dynamo_store: DynamoStore) -> None:
    campaign_id = create(dynamo_store, CampaignStatus.RUNNING)

    paused = dynamo_store.transition(
        campaign_id, Action.PAUSE, pause_reason="Daily limit reached: 200/200 conversations"
    )
    resumed = dynamo_store.transition(campaign_id, Action.RESUME)
    by_operator = dynamo_store.transition(campaign_id, Action.PAUSE)

    assert paused.pause_reason == "Daily limit reached: 200/200 conversations"
    assert raw_campaign(dynamo_store, campaign_id)["pausedAt"].endswith("Z")
    assert resumed.pause_reason is None
    assert by_operator.pause_reason == "Paused by operator"


@pytest.mark.parametrize("action", list(Action))
def test_a_transition_of_a_missing_campaign_is_not_found(
    dynamo_store: DynamoStore, action: Action
) -> None:
    missing = new_campaign_id()

    with pytest.raises(CampaignNotFound):
        dynamo_store.transition(missing, action)

    assert dynamo_store.get_campaign(missing) is None


def race_transitions(
    stores: list[DynamoStore], campaign_id: str, actions: tuple[Action, Action]
) -> tuple[list[Action], list[InvalidTransition]]:
    """Fire both transitions at once from two threads; (winners, refusals)."""
    start = threading.Barrier(len(actions))
    won: list[Action] = []
    refused: list[InvalidTransition] = []

    def race(store: DynamoStore, action: Action) -> None:
        start.wait(timeout=10)
        try:
            store.transition(campaign_id, action)
            won.append(action)
        except InvalidTransition as exc:
            refused.append(exc)

    threads = [
        threading.Thread(target=race, args=(store, action))
        for store, action in zip(stores, actions, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return won, refused


@pytest.mark.parametrize(
    "actions",
    [
        (Action.PAUSE, Action.PAUSE),
        (Action.COMPLETE, Action.COMPLETE),
        (Action.PAUSE, Action.COMPLETE),
    ],
)
def test_two_racing_transitions_from_running_cannot_both_win(
    aws_settings: Settings, dynamo_store: DynamoStore, actions: tuple[Action, Action]
) -> None:
    stores = [DynamoStore(dynamodb_client(aws_settings), aws_settings) for _ in actions]
    for _ in range(3):
        campaign_id = create(dynamo_store, CampaignStatus.RUNNING)

        won, refused = race_transitions(stores, campaign_id, actions)

        assert len(won) == 1
        assert len(refused) == 1
        winner_status = TRANSITIONS[won[0]][1]
        assert refused[0].current == winner_status.value
        assert raw_campaign(dynamo_store, campaign_id)["status"] == winner_status.value


def test_counters_are_added_and_the_campaign_returned(
    dynamo_store: DynamoStore, campaign_id: str
) -> None:
    dynamo_store.add_counts(campaign_id, sent=2, failed=1, unknown=1)

    campaign = dynamo_store.add_counts(campaign_id, sent=1, unknown=-1)

    assert campaign is not None
    assert (campaign.sent_count, campaign.failed_count, campaign.unknown_count) == (3, 1, 0)
    assert campaign.total_recipients == 1
    unchanged = dynamo_store.add_counts(campaign_id)
    assert unchanged is not None
    assert unchanged.sent_count == 3
    assert dynamo_store.add_counts(new_campaign_id(), sent=1) is None


def test_a_counter_is_set_only_if_it_still_holds_what_was_read(
    dynamo_store: DynamoStore, campaign_id: str
) -> None:
    assert dynamo_store.set_counter(campaign_id, "sentCount", 0, 5)
    assert not dynamo_store.set_counter(campaign_id, "sentCount", 0, 7)  # it moved
    assert raw_campaign(dynamo_store, campaign_id)["sentCount"] == 5
    assert dynamo_store.set_counter(campaign_id, "reconciledCount", None, 1)
    assert not dynamo_store.set_counter(campaign_id, "reconciledCount", None, 2)
    assert not dynamo_store.set_counter(new_campaign_id(), "sentCount", None, 1)


def test_statuses_are_counted_from_the_recipient_items(dynamo_store: DynamoStore) -> None:
    campaign_id = create(dynamo_store, CampaignStatus.RUNNING)
    phones = [f"9198765432{i:02d}" for i in range(6)]
    populate(dynamo_store, campaign_id, phones)
    for phone, outcome in zip(phones, ["sent", "sent", "failed", "sending"], strict=False):
        claim = dynamo_store.claim(campaign_id, phone, OWNER, time.time() + 60).claim
        assert claim is not None
        if outcome == "sent":
            dynamo_store.commit_sent(claim, f"wamid.{phone}", time.time())
        elif outcome == "failed":
            dynamo_store.commit_failed(claim, "META_131026", time.time())

    counts = dynamo_store.count_statuses(campaign_id)

    assert counts[RecipientStatus.SENT] == 2
    assert counts[RecipientStatus.FAILED] == 1
    assert counts[RecipientStatus.SENDING] == 1
    assert counts[RecipientStatus.PENDING] == 2
    assert counts[RecipientStatus.UNKNOWN] == 0
    assert (counts.total, counts.open) == (6, 3)
    pending = list(dynamo_store.iter_recipients(campaign_id, RecipientStatus.PENDING, page_size=2))
    assert sorted(r.phone for r in pending) == phones[4:]


def test_a_suppressed_number_is_stored_with_its_reason(dynamo_store: DynamoStore) -> None:
    dynamo_store.suppress(PHONE, "META_131050")

    response = dynamo_store.client.get_item(
        TableName=dynamo_store.campaigns_table, Key=suppression_key(PHONE), ConsistentRead=True
    )
    item = deserialize(response["Item"])
    assert (item["phone"], item["reason"], item["reasons"]) == (
        PHONE,
        "META_131050",
        {"META_131050"},
    )


def test_a_second_reason_joins_the_set_and_the_old_reason_attribute_names_the_latest(
    dynamo_store: DynamoStore,
) -> None:
    dynamo_store.suppress(PHONE, "keyword")
    dynamo_store.suppress(PHONE, "user_preferences")

    response = dynamo_store.client.get_item(
        TableName=dynamo_store.campaigns_table, Key=suppression_key(PHONE), ConsistentRead=True
    )
    item = deserialize(response["Item"])
    assert (item["reason"], item["reasons"]) == (
        "user_preferences",
        {"keyword", "user_preferences"},
    )


def test_an_unreachable_table_is_store_unavailable(aws_settings: Settings) -> None:
    settings = load_settings(
        aws_endpoint_url=aws_settings.aws_endpoint_url, campaigns_table="no-such-table"
    )
    store = DynamoStore(dynamodb_client(settings), settings)

    with pytest.raises(StoreUnavailable, match="ResourceNotFoundException"):
        store.get_campaign(new_campaign_id())


# -- recipients: claim ----------------------------------------------------------------------


def test_a_pending_recipient_is_claimed_with_a_lease_and_one_attempt(
    dynamo_store: DynamoStore, campaign_id: str
) -> None:
    lease_until = time.time() + 60

    result = dynamo_store.claim(campaign_id, PHONE, OWNER, lease_until)

    assert result.claim is not None
    assert result.claim.owner.startswith(f"{OWNER}#")  # per claim: the consumer and a token
    recipient = result.claim.recipient
    assert (recipient.phone, recipient.status, recipient.attempts) == (
        PHONE,
        RecipientStatus.SENDING,
        1,
    )
    assert recipient.params == (TemplateParam("1", "Asha"),)
    item = raw_recipient(dynamo_store, campaign_id)
    assert (item["status"], item["leaseOwner"], item["attempts"]) == (
        "SENDING",
        result.claim.owner,
        1,
    )
    assert item["leaseUntil"] == pytest.approx(lease_until)


def test_only_a_pending_recipient_can_be_claimed(
    dynamo_store: DynamoStore, campaign_id: str
) -> None:
    claim = claimed(dynamo_store, campaign_id)

    refused = dynamo_store.claim(campaign_id, PHONE, OTHER, time.time() + 60)

    assert refused.claim is None
    assert refused.current is not None
    assert (refused.current.status, refused.current.lease_owner) == (
        RecipientStatus.SENDING,
        claim.owner,
    )
    assert raw_recipient(dynamo_store, campaign_id)["attempts"] == 1


def test_a_sent_recipient_is_never_claimed_again(
    dynamo_store: DynamoStore, campaign_id: str
) -> None:
    dynamo_store.commit_sent(claimed(dynamo_store, campaign_id), "wamid.A", time.time())

    refused = dynamo_store.claim(campaign_id, PHONE, OWNER, time.time() + 60)

    assert refused.claim is None
    assert refused.current is not None
    assert (refused.current.status, refused.current.message_id) == (RecipientStatus.SENT, "wamid.A")


def test_claiming_a_missing_recipient_returns_nothing(
    dynamo_store: DynamoStore, campaign_id: str
) -> None:
    result = dynamo_store.claim(campaign_id, "919999999999", OWNER, time.time() + 60)

    assert result.claim is None
    assert result.current is None
    assert raw_recipient(dynamo_store, campaign_id, "919999999999") == {}


# -- recipients: retry, release -------------------------------------------------------------


def test_recording_an_attempt_counts_it_and_extends_the_lease(
    dynamo_store: DynamoStore, campaign_id: str
) -> None:
    claim = claimed(dynamo_store, campaign_id)
    later = time.time() + 120

    extended = dynamo_store.record_attempt(claim, later)

    assert extended is not None
    assert extended.recipient.attempts == 2
    assert extended.lease_until == later
    assert raw_recipient(dynamo_store, campaign_id)["leaseUntil"] == pytest.approx(later)


def test_recording_an_attempt_on_a_lost_lease_returns_none(
    dynamo_store: DynamoStore, campaign_id: str
) -> None:
    claim = claimed(dynamo_store, campaign_id)
    theirs = Claim(claim.recipient, OTHER, claim.lease_until)

    assert dynamo_store.record_attempt(theirs, time.time() + 120) is None
    assert raw_recipient(dynamo_store, campaign_id)["attempts"] == 1


def test_a_release_before_sending_refunds_the_attempt(
    dynamo_store: DynamoStore, campaign_id: str
) -> None:
    claim = claimed(dynamo_store, campaign_id)

    assert dynamo_store.release(claim, refund_attempt=True)

    item = raw_recipient(dynamo_store, campaign_id)
    assert (item["status"], item["attempts"]) == ("PENDING", 0)
    assert "leaseOwner" not in item
    assert "leaseUntil" not in item


def test_a_release_after_a_campaign_level_error_keeps_the_attempt_as_halted(
    dynamo_store: DynamoStore, campaign_id: str
) -> None:
    claim = claimed(dynamo_store, campaign_id)

    assert dynamo_store.release(claim, refund_attempt=False, halted=True)

    again = dynamo_store.claim(campaign_id, PHONE, OWNER, time.time() + 60).claim
    assert again is not None
    assert (again.recipient.attempts, again.recipient.halted_attempts) == (2, 1)
    assert again.recipient.tries == 1


def test_a_release_by_someone_without_the_lease_changes_nothing(
    dynamo_store: DynamoStore, campaign_id: str
) -> None:
    claim = claimed(dynamo_store, campaign_id)
    theirs = Claim(claim.recipient, OTHER, claim.lease_until)

    assert not dynamo_store.release(theirs, refund_attempt=True)

    item = raw_recipient(dynamo_store, campaign_id)
    assert (item["status"], item["leaseOwner"], item["attempts"]) == ("SENDING", claim.owner, 1)


# -- recipients: commit ---------------------------------------------------------------------


def test_a_sent_commit_records_the_wamid_and_keeps_the_owner(
    dynamo_store: DynamoStore, campaign_id: str
) -> None:
    claim = claimed(dynamo_store, campaign_id)
    result = dynamo_store.commit_sent(claim, "wamid.A", time.time())

    assert (result.committed, result.was_unknown) == (True, False)
    item = raw_recipient(dynamo_store, campaign_id)
    assert (item["status"], item["messageId"], item["leaseOwner"]) == (
        "SENT",
        "wamid.A",
        claim.owner,
    )
    assert item["sentAt"].endswith("Z")
    assert "leaseUntil" not in item


def test_a_failed_commit_records_the_error_code(
    dynamo_store: DynamoStore, campaign_id: str
) -> None:
    result = dynamo_store.commit_failed(
        claimed(dynamo_store, campaign_id), "META_131026", time.time()
    )

    assert result.committed
    item = raw_recipient(dynamo_store, campaign_id)
    assert (item["status"], item["errorCode"]) == ("FAILED", "META_131026")
    assert item["failedAt"].endswith("Z")


def test_an_unknown_commit_records_why(dynamo_store: DynamoStore, campaign_id: str) -> None:
    result = dynamo_store.commit_unknown(
        claimed(dynamo_store, campaign_id), "META_TIMEOUT", time.time()
    )

    assert result.committed
    item = raw_recipient(dynamo_store, campaign_id)
    assert (item["status"], item["unknownReason"]) == ("UNKNOWN", "META_TIMEOUT")


@pytest.mark.parametrize("commit", ["sent", "failed", "unknown"])
def test_a_commit_without_the_lease_is_refused(
    dynamo_store: DynamoStore, campaign_id: str, commit: str
) -> None:
    claim = claimed(dynamo_store, campaign_id)
    theirs = Claim(claim.recipient, OTHER, claim.lease_until)
    now_s = time.time()

    if commit == "sent":
        result = dynamo_store.commit_sent(theirs, "wamid.B", now_s)
    elif commit == "failed":
        result = dynamo_store.commit_failed(theirs, "META_100", now_s)
    else:
        result = dynamo_store.commit_unknown(theirs, "META_TIMEOUT", now_s)

    assert not result.committed
    item = raw_recipient(dynamo_store, campaign_id)
    assert (item["status"], item["leaseOwner"]) == ("SENDING", claim.owner)
    assert "messageId" not in item
    assert "errorCode" not in item


def test_a_repeated_commit_whose_first_answer_was_lost_finds_its_own_result(
    dynamo_store: DynamoStore, campaign_id: str
) -> None:
    claim = claimed(dynamo_store, campaign_id)
    dynamo_store.commit_sent(claim, "wamid.A", time.time())

    again = dynamo_store.commit_sent(claim, "wamid.A", time.time())
    different = dynamo_store.commit_sent(claim, "wamid.OTHER", time.time())

    assert again.committed
    assert not different.committed
    assert raw_recipient(dynamo_store, campaign_id)["messageId"] == "wamid.A"


@pytest.mark.parametrize("commit", ["sent", "failed"])
def test_a_commit_after_the_lease_expired_to_unknown_resolves_it(
    dynamo_store: DynamoStore, campaign_id: str, commit: str
) -> None:
    now_s = time.time()
    claim = claimed(dynamo_store, campaign_id, lease_until=now_s - 1)
    assert dynamo_store.expire_lease(claim.recipient, now_s)
    assert raw_recipient(dynamo_store, campaign_id)["status"] == "UNKNOWN"

    if commit == "sent":
        result = dynamo_store.commit_sent(claim, "wamid.LATE", now_s)
    else:
        result = dynamo_store.commit_failed(claim, "META_131026", now_s)

    assert (result.committed, result.was_unknown) == (True, True)
    assert raw_recipient(dynamo_store, campaign_id)["status"] == commit.upper()


def test_an_unknown_commit_does_not_touch_an_already_unknown_recipient(
    dynamo_store: DynamoStore, campaign_id: str
) -> None:
    now_s = time.time()
    claim = claimed(dynamo_store, campaign_id, lease_until=now_s - 1)
    assert dynamo_store.expire_lease(claim.recipient, now_s)

    result = dynamo_store.commit_unknown(claim, "META_TIMEOUT", now_s)

    assert not result.committed
    assert raw_recipient(dynamo_store, campaign_id)["unknownReason"] == "lease expired"


# -- recipients: expired leases and requeue -------------------------------------------------


def test_a_lease_is_expired_only_once_it_has_run_out(
    dynamo_store: DynamoStore, campaign_id: str
) -> None:
    now_s = time.time()
    claim = claimed(dynamo_store, campaign_id, lease_until=now_s + 30)

    assert not dynamo_store.expire_lease(claim.recipient, now_s)
    assert raw_recipient(dynamo_store, campaign_id)["status"] == "SENDING"
    assert dynamo_store.expire_lease(claim.recipient, now_s + 31)
    item = raw_recipient(dynamo_store, campaign_id)
    assert (item["status"], item["unknownReason"]) == ("UNKNOWN", "lease expired")
    assert not dynamo_store.expire_lease(claim.recipient, now_s + 60)  # already UNKNOWN


def test_a_pending_or_committed_recipient_never_has_its_lease_expired(
    dynamo_store: DynamoStore, campaign_id: str
) -> None:
    claim = claimed(dynamo_store, campaign_id, lease_until=time.time() - 1)
    dynamo_store.commit_sent(claim, "wamid.A", time.time())

    assert not dynamo_store.expire_lease(claim.recipient, time.time() + 3600)
    assert raw_recipient(dynamo_store, campaign_id)["status"] == "SENT"


def test_an_unknown_recipient_can_be_requeued_by_an_operator(
    dynamo_store: DynamoStore, campaign_id: str
) -> None:
    now_s = time.time()
    claim = claimed(dynamo_store, campaign_id, lease_until=now_s - 1)
    assert dynamo_store.expire_lease(claim.recipient, now_s)

    assert dynamo_store.requeue_unknown(claim.recipient)

    item = raw_recipient(dynamo_store, campaign_id)
    assert item["status"] == "PENDING"
    assert "leaseOwner" not in item
    assert item["attempts"] == 1
    assert dynamo_store.claim(campaign_id, PHONE, OTHER, now_s + 60).claim is not None


def test_only_an_unknown_recipient_is_requeued(dynamo_store: DynamoStore, campaign_id: str) -> None:
    claim = claimed(dynamo_store, campaign_id)
    dynamo_store.commit_sent(claim, "wamid.A", time.time())

    assert not dynamo_store.requeue_unknown(claim.recipient)
    assert raw_recipient(dynamo_store, campaign_id)["status"] == "SENT"


def test_a_transition_made_in_the_same_millisecond_by_another_caller_is_still_refused(
    aws_settings: Settings, dynamo_store: DynamoStore
) -> None:
    # Both callers stamp the same pausedAt; only the write token tells whose write landed.
    frozen = ManualClock()
    first, second = (
        DynamoStore(dynamodb_client(aws_settings), aws_settings, clock=frozen) for _ in range(2)
    )
    campaign_id = create(dynamo_store, CampaignStatus.RUNNING)

    first.transition(campaign_id, Action.PAUSE)

    with pytest.raises(InvalidTransition, match="Campaign status is PAUSED"):
        second.transition(campaign_id, Action.PAUSE)


def test_a_lease_expired_in_the_same_millisecond_by_another_caller_is_not_counted_twice(
    aws_settings: Settings, dynamo_store: DynamoStore
) -> None:
    frozen = ManualClock()
    first, second = (
        DynamoStore(dynamodb_client(aws_settings), aws_settings, clock=frozen) for _ in range(2)
    )
    campaign_id = create(dynamo_store, CampaignStatus.RUNNING)
    populate(dynamo_store, campaign_id, [PHONE])
    claim = dynamo_store.claim(campaign_id, PHONE, OWNER, frozen.now() - 1).claim
    assert claim is not None

    assert first.expire_lease(claim.recipient, frozen.now())
    assert not second.expire_lease(claim.recipient, frozen.now())


# -- deliveries (the status webhooks) ----------------------------------------------------------


class RecordingClient:
    """The real client, with every call's name and request recorded; ``before_transact`` runs
    once just before the first TransactWriteItems (another writer slipping in)."""

    def __init__(self, client: Any, before_transact: Any = None) -> None:
        self._client = client
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._before = before_transact

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._client, name)
        if not callable(target) or name.startswith("get_waiter"):
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((name, kwargs))
            if name == "transact_write_items" and self._before is not None:
                before, self._before = self._before, None
                before()
            return target(*args, **kwargs)

        return call

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


def delivery(
    campaign_id: str, status: DeliveryStatus, at_s: float = 100.0, phone: str = PHONE
) -> DeliveryReport:
    return DeliveryReport(campaign_id, phone, status, at_s, "wamid.1", None, None)


def sent_recipient(store: DynamoStore, campaign_id: str) -> None:
    store.commit_sent(claimed(store, campaign_id), "wamid.1", time.time())
    store.add_counts(campaign_id, sent=1)


def test_a_delivery_that_moves_counters_is_one_transaction_of_the_recipient_and_the_counter(
    dynamo_store: DynamoStore, campaign_id: str, aws_settings: Settings
) -> None:
    sent_recipient(dynamo_store, campaign_id)
    client = RecordingClient(dynamo_store.client)
    store = DynamoStore(client, aws_settings)  # type: ignore[arg-type]

    store.apply_delivery(delivery(campaign_id, DeliveryStatus.READ))

    assert client.names() == ["get_item", "transact_write_items"]
    (items,) = [kwargs["TransactItems"] for name, kwargs in client.calls if name.startswith("t")]
    # The counters go to a delivery shard, never METADATA: the batch threads ADD to METADATA
    # on the send path, and a transaction holding it would refuse them (TransactionConflict).
    assert [item["Update"]["Key"] for item in items] == [
        recipient_key(campaign_id, PHONE),
        delivery_shard_key(campaign_id, shard_of(PHONE, DELIVERY_SHARDS)),
    ]
    raw = raw_recipient(dynamo_store, campaign_id)
    assert (raw["deliveryStatus"], raw["deliveredAt"], raw["readAt"]) == ("READ", 100, 100)
    assert "deliveredCount" not in raw_campaign(dynamo_store, campaign_id)
    campaign = dynamo_store.require_campaign(campaign_id)
    assert (campaign.delivered_count, campaign.read_count) == (1, 1)


def test_a_delivery_that_moves_no_counter_is_one_conditional_update(
    dynamo_store: DynamoStore, campaign_id: str, aws_settings: Settings
) -> None:
    sent_recipient(dynamo_store, campaign_id)
    client = RecordingClient(dynamo_store.client)
    store = DynamoStore(client, aws_settings)  # type: ignore[arg-type]

    store.apply_delivery(delivery(campaign_id, DeliveryStatus.SENT))
    store.apply_delivery(delivery(campaign_id, DeliveryStatus.SENT))  # a duplicate: a read

    assert client.names() == ["get_item", "update_item", "get_item"]


def test_a_delivery_that_lost_a_race_is_decided_again_on_what_won(
    dynamo_store: DynamoStore, campaign_id: str, aws_settings: Settings
) -> None:
    sent_recipient(dynamo_store, campaign_id)
    other = DynamoStore(dynamo_store.client, aws_settings)
    client = RecordingClient(
        dynamo_store.client,
        before_transact=lambda: other.apply_delivery(delivery(campaign_id, DeliveryStatus.READ)),
    )
    store = DynamoStore(client, aws_settings)  # type: ignore[arg-type]

    applied = store.apply_delivery(delivery(campaign_id, DeliveryStatus.DELIVERED, 90.0))

    # Decided on "no status", refused (READ won meanwhile), decided again: only the earlier
    # deliveredAt is left to write, and no counter moves twice.
    assert (applied.changed, applied.before, applied.after) == (
        False,
        DeliveryStatus.READ,
        DeliveryStatus.READ,
    )
    assert client.names() == ["get_item", "transact_write_items", "get_item", "update_item"]
    raw = raw_recipient(dynamo_store, campaign_id)
    assert (raw["deliveryStatus"], raw["deliveredAt"], raw["readAt"]) == ("READ", 90, 100)
    campaign = dynamo_store.require_campaign(campaign_id)
    assert (campaign.delivered_count, campaign.read_count) == (1, 1)


def test_a_transaction_cancelled_by_throttling_is_store_unavailable(
    dynamo_store: DynamoStore, campaign_id: str
) -> None:
    sent_recipient(dynamo_store, campaign_id)
    throttled = ClientError(
        {
            "Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
            "CancellationReasons": [{"Code": "ThrottlingError"}, {"Code": "None"}],
        },
        "TransactWriteItems",
    )

    with pytest.raises(StoreUnavailable, match="TransactWriteItems failed"):
        call("TransactWriteItems", lambda: (_ for _ in ()).throw(throttled))


def test_an_item_written_before_the_webhooks_reads_with_no_delivery_state(
    dynamo_store: DynamoStore, campaign_id: str
) -> None:
    (found,) = dynamo_store.iter_recipients(campaign_id)
    campaign = dynamo_store.require_campaign(campaign_id)

    assert (found.delivery_status, found.delivered_at, found.user_id) == (None, None, None)
    assert "deliveredCount" not in raw_campaign(dynamo_store, campaign_id)
    assert (campaign.delivered_count, campaign.read_count, campaign.delivery_failed_count) == (
        0,
        0,
        0,
    )
    assert (campaign.to_public()["deliveryRate"], campaign.to_public()["readRate"]) == (None, None)


def test_init_adds_the_message_id_index_to_an_existing_recipients_table(
    aws_settings: Settings,
) -> None:
    db = dynamodb_client(aws_settings)
    name = f"old-recipients-{uuid.uuid4().hex[:8]}"
    db.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": "PK", "KeyType": "HASH"},
            {"AttributeName": "SK", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "PK", "AttributeType": "S"},
            {"AttributeName": "SK", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    db.put_item(
        TableName=name,
        Item={
            "PK": {"S": "CAMPAIGN#cmp_old"},
            "SK": {"S": f"USER#{PHONE}"},
            "status": {"S": "SENT"},
            "messageId": {"S": "wamid.old"},
        },
    )

    assert ensure_table(db, name, [MESSAGE_ID_INDEX]) == [f"{name}/messageId-index"]
    assert ensure_table(db, name, [MESSAGE_ID_INDEX]) == []  # idempotent

    indexes = db.describe_table(TableName=name)["Table"]["GlobalSecondaryIndexes"]
    assert [(i["IndexName"], i["Projection"]["ProjectionType"]) for i in indexes] == [
        ("messageId-index", "KEYS_ONLY")
    ]
    old = DynamoStore(db, aws_settings.model_copy(update={"recipients_table": name}))
    assert old.find_by_message_id("wamid.old") == ("cmp_old", PHONE)


def test_init_creates_a_new_recipients_table_with_the_message_id_index(
    dynamo_store: DynamoStore,
) -> None:
    table = dynamo_store.client.describe_table(TableName=dynamo_store.recipients_table)["Table"]

    assert [i["IndexName"] for i in table["GlobalSecondaryIndexes"]] == ["messageId-index"]
    campaigns = dynamo_store.client.describe_table(TableName=dynamo_store.campaigns_table)
    assert campaigns["Table"].get("GlobalSecondaryIndexes", []) == []


def test_the_bsuid_link_is_an_item_of_the_campaigns_table(dynamo_store: DynamoStore) -> None:
    dynamo_store.link_user("US.1", PHONE)

    response = dynamo_store.client.get_item(
        TableName=dynamo_store.campaigns_table, Key=user_link_key("US.1"), ConsistentRead=True
    )

    item = deserialize(response["Item"])
    assert (item["PK"], item["SK"], item["userId"], item["phone"]) == (
        "BSUID#US.1",
        "LINK",
        "US.1",
        PHONE,
    )
    assert dynamo_store.list_campaigns() == []  # not taken for a campaign
