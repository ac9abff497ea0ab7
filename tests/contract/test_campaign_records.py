"""Campaign records: create, read, list, the transitions and the import lock, held to the same
behaviour by the in-memory and the DynamoDB store."""

from __future__ import annotations

import pytest

from campaigns.domain.clock import iso_utc
from campaigns.domain.errors import (
    CampaignNotFound,
    ImportLocked,
    InvalidInput,
    InvalidTransition,
)
from campaigns.domain.models import Action, Campaign, CampaignStatus, new_campaign_id
from tests.contract.conftest import Family

IMPORT_LOCK_S = 900


def test_a_created_campaign_reads_back_as_a_draft_with_zero_counters(family: Family) -> None:
    campaign_id = family.campaign(name="Diwali")

    campaign = family.store.require_campaign(campaign_id)

    assert campaign == Campaign(
        campaign_id,
        "Diwali",
        "tmpl",
        "en_US",
        CampaignStatus.DRAFT,
        created_at=iso_utc(family.clock.now()),
    )
    assert family.store.get_campaign(campaign_id) == campaign


def test_creating_a_campaign_whose_id_exists_is_refused(family: Family) -> None:
    campaign_id = family.campaign(name="first")
    again = Campaign(campaign_id, "second", "tmpl", "en_US", CampaignStatus.DRAFT, created_at="x")

    with pytest.raises(InvalidInput, match="Campaign already exists"):
        family.store.create_campaign(again)

    assert family.store.require_campaign(campaign_id).name == "first"


def test_an_unknown_campaign_reads_as_none_and_is_required_in_vain(family: Family) -> None:
    campaign_id = new_campaign_id()

    assert family.store.get_campaign(campaign_id) is None
    with pytest.raises(CampaignNotFound, match=f"Campaign not found: {campaign_id}"):
        family.store.require_campaign(campaign_id)


def test_campaigns_are_listed_oldest_first(family: Family) -> None:
    first = family.campaign(name="first")
    family.clock.advance(1)
    second = family.campaign(name="second")

    listed = family.store.list_campaigns()

    assert [c.campaign_id for c in listed] == [first, second]


def test_each_transition_moves_the_status_and_stamps_its_time(family: Family) -> None:
    store, clock = family.store, family.clock
    campaign_id = family.campaign()

    clock.advance(10)
    started = store.transition(campaign_id, Action.START)
    clock.advance(10)
    paused = store.transition(campaign_id, Action.PAUSE)
    clock.advance(10)
    resumed = store.transition(campaign_id, Action.RESUME)
    clock.advance(10)
    cancelled = store.transition(campaign_id, Action.CANCEL)

    assert [c.status for c in (started, paused, resumed, cancelled)] == [
        CampaignStatus.RUNNING,
        CampaignStatus.PAUSED,
        CampaignStatus.RUNNING,
        CampaignStatus.CANCELLED,
    ]
    now = clock.now()
    assert started.started_at == iso_utc(now - 30)
    assert paused.paused_at == iso_utc(now - 20)
    assert cancelled.cancelled_at == iso_utc(now)
    assert store.require_campaign(campaign_id) == cancelled


def test_complete_stamps_its_time(family: Family) -> None:
    campaign_id = family.campaign(CampaignStatus.RUNNING)

    completed = family.store.transition(campaign_id, Action.COMPLETE)

    assert completed.status is CampaignStatus.COMPLETED
    assert completed.completed_at == iso_utc(family.clock.now())


def test_pause_records_its_reason_and_resume_clears_it(family: Family) -> None:
    store = family.store
    campaign_id = family.campaign(CampaignStatus.RUNNING)

    paused = store.transition(campaign_id, Action.PAUSE, pause_reason="Daily limit reached")
    resumed = store.transition(campaign_id, Action.RESUME)
    by_operator = store.transition(campaign_id, Action.PAUSE)

    assert paused.pause_reason == "Daily limit reached"
    assert resumed.pause_reason is None
    assert by_operator.pause_reason == "Paused by operator"
    assert store.transition(campaign_id, Action.CANCEL).pause_reason == "Paused by operator"


@pytest.mark.parametrize(
    ("status", "action"),
    [
        (CampaignStatus.RUNNING, Action.START),
        (CampaignStatus.DRAFT, Action.PAUSE),
        (CampaignStatus.RUNNING, Action.RESUME),
        (CampaignStatus.COMPLETED, Action.CANCEL),
        (CampaignStatus.PAUSED, Action.COMPLETE),
    ],
)
def test_a_refused_transition_names_the_status_and_changes_nothing(
    family: Family, status: CampaignStatus, action: Action
) -> None:
    campaign_id = family.campaign(status)
    before = family.store.require_campaign(campaign_id)

    with pytest.raises(InvalidTransition, match=f"Campaign status is {status}: cannot {action}"):
        family.store.transition(campaign_id, action)

    assert family.store.require_campaign(campaign_id) == before


def test_a_transition_of_an_unknown_campaign_is_refused(family: Family) -> None:
    with pytest.raises(CampaignNotFound):
        family.store.transition(new_campaign_id(), Action.START)


@pytest.mark.parametrize(
    ("status", "action"),
    [(CampaignStatus.DRAFT, Action.START), (CampaignStatus.PAUSED, Action.RESUME)],
)
def test_start_and_resume_wait_for_the_import_lock(
    family: Family, status: CampaignStatus, action: Action
) -> None:
    store = family.store
    campaign_id = family.campaign(status)
    store.lock_import(campaign_id, "import-1", family.clock.now())

    with pytest.raises(
        ImportLocked, match=f"Campaign is being populated: cannot {action} until the import ends"
    ):
        store.transition(campaign_id, action)
    assert store.require_campaign(campaign_id).status is status

    store.unlock_import(campaign_id, "import-1")
    assert store.transition(campaign_id, action).status is CampaignStatus.RUNNING


def test_an_expired_import_lock_no_longer_holds_start(family: Family) -> None:
    campaign_id = family.campaign()
    family.store.lock_import(campaign_id, "dead-import", family.clock.now())

    family.clock.advance(IMPORT_LOCK_S + 1)

    assert family.store.transition(campaign_id, Action.START).status is CampaignStatus.RUNNING


def test_the_import_lock_does_not_hold_pause_or_cancel(family: Family) -> None:
    campaign_id = family.campaign(CampaignStatus.PAUSED)
    family.store.lock_import(campaign_id, "import-1", family.clock.now())

    assert family.store.transition(campaign_id, Action.CANCEL).status is CampaignStatus.CANCELLED


def test_a_second_import_is_refused_while_the_first_holds_the_lock(family: Family) -> None:
    store, now = family.store, family.clock.now()
    campaign_id = family.campaign()
    store.lock_import(campaign_id, "first", now)

    with pytest.raises(ImportLocked, match="Another import is running for this campaign"):
        store.lock_import(campaign_id, "second", now + 10)
    store.lock_import(campaign_id, "first", now + 20)  # the holder renews it
    store.unlock_import(campaign_id, "second")  # not the holder: nothing happens
    with pytest.raises(ImportLocked):
        store.lock_import(campaign_id, "second", now + 30)

    store.unlock_import(campaign_id, "first")
    store.lock_import(campaign_id, "second", now + 40)


def test_an_expired_import_lock_is_taken_over(family: Family) -> None:
    store, now = family.store, family.clock.now()
    campaign_id = family.campaign()
    store.lock_import(campaign_id, "dead", now)

    store.lock_import(campaign_id, "alive", now + IMPORT_LOCK_S + 1)

    with pytest.raises(ImportLocked):
        store.lock_import(campaign_id, "dead", now + IMPORT_LOCK_S + 2)


@pytest.mark.parametrize(
    "status", [CampaignStatus.RUNNING, CampaignStatus.COMPLETED, CampaignStatus.CANCELLED]
)
def test_only_a_draft_or_paused_campaign_can_be_locked_for_import(
    family: Family, status: CampaignStatus
) -> None:
    campaign_id = family.campaign(status)

    with pytest.raises(InvalidInput, match=f"Campaign status is {status}: cannot populate"):
        family.store.lock_import(campaign_id, "import", family.clock.now())


def test_locking_an_unknown_campaign_is_refused(family: Family) -> None:
    with pytest.raises(CampaignNotFound):
        family.store.lock_import(new_campaign_id(), "import", family.clock.now())
