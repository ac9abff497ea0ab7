"""The campaign counters: ADDs (with the idempotency slot), the total, the repair write and
sharded counters, on both stores."""

from __future__ import annotations

import pytest

from campaigns.domain.errors import CampaignNotFound
from campaigns.domain.models import CampaignStatus, new_campaign_id
from tests.contract.conftest import Family

COUNT_TOKEN_IDLE_S = 3600.0


def test_add_counts_adds_to_each_counter_and_returns_the_campaign(family: Family) -> None:
    campaign_id = family.campaign(CampaignStatus.RUNNING)

    family.store.add_counts(campaign_id, sent=2, failed=1)
    after = family.store.add_counts(campaign_id, sent=1, unknown=1, slot="thread-1")

    assert after is not None
    assert (after.sent_count, after.failed_count, after.unknown_count) == (3, 1, 1)
    assert family.store.require_campaign(campaign_id) == after


def test_add_counts_takes_away_with_a_negative_delta(family: Family) -> None:
    campaign_id = family.campaign(CampaignStatus.RUNNING)
    family.store.add_counts(campaign_id, unknown=2)

    after = family.store.add_counts(campaign_id, unknown=-1)

    assert after is not None
    assert after.unknown_count == 1


def test_add_counts_of_an_unknown_campaign_returns_none_and_creates_nothing(
    family: Family,
) -> None:
    campaign_id = new_campaign_id()

    assert family.store.add_counts(campaign_id, sent=1) is None
    assert family.store.get_campaign(campaign_id) is None


def test_add_counts_with_nothing_to_add_returns_the_campaign(family: Family) -> None:
    campaign_id = family.campaign()

    assert family.store.add_counts(campaign_id) == family.store.require_campaign(campaign_id)


def test_a_slotted_add_whose_answer_was_lost_counts_once(family: Family) -> None:
    campaign_id = family.campaign(CampaignStatus.RUNNING)
    family.lose_next_answer()

    after = family.store.add_counts(campaign_id, sent=1, slot="thread-1")

    assert after is not None
    assert after.sent_count == 1
    assert family.store.require_campaign(campaign_id).sent_count == 1


def test_a_slot_token_idle_for_an_hour_is_pruned_once(family: Family) -> None:
    store = family.store
    campaign_id = family.campaign(CampaignStatus.RUNNING)
    store.add_counts(campaign_id, sent=1, slot="idle-thread")

    assert store.prune_count_tokens(campaign_id, COUNT_TOKEN_IDLE_S) == 0  # still fresh
    family.clock.advance(COUNT_TOKEN_IDLE_S + 1)
    store.add_counts(campaign_id, sent=1, slot="busy-thread")

    assert store.prune_count_tokens(campaign_id, COUNT_TOKEN_IDLE_S) == 1
    assert store.prune_count_tokens(campaign_id, COUNT_TOKEN_IDLE_S) == 0
    assert store.require_campaign(campaign_id).sent_count == 2


def test_add_total_adds_to_total_recipients(family: Family) -> None:
    campaign_id = family.campaign()

    family.store.add_total(campaign_id, 40)
    family.store.add_total(campaign_id, 2)

    assert family.store.require_campaign(campaign_id).total_recipients == 42


def test_add_total_of_an_unknown_campaign_is_refused(family: Family) -> None:
    with pytest.raises(CampaignNotFound):
        family.store.add_total(new_campaign_id(), 1)


@pytest.mark.parametrize(
    ("name", "field"),
    [
        ("sentCount", "sent_count"),
        ("failedCount", "failed_count"),
        ("unknownCount", "unknown_count"),
        ("totalRecipients", "total_recipients"),
    ],
)
def test_set_counter_writes_only_if_the_counter_still_holds_what_was_read(
    family: Family, name: str, field: str
) -> None:
    campaign_id = family.campaign(CampaignStatus.RUNNING)

    assert family.store.set_counter(campaign_id, name, 0, 7)
    assert not family.store.set_counter(campaign_id, name, 0, 9)  # it moved meanwhile

    assert getattr(family.store.require_campaign(campaign_id), field) == 7


def test_set_counter_of_an_unknown_campaign_is_refused(family: Family) -> None:
    assert not family.store.set_counter(new_campaign_id(), "sentCount", 0, 1)


def test_sharded_counters_are_summed_on_read_and_repaired_as_a_total(family: Family) -> None:
    campaign_id = family.campaign(CampaignStatus.RUNNING)
    sharded = family.sharded(3)

    assert sharded.add_counts(campaign_id, sent=1, slot="a") is None  # one shard tells nothing
    assert sharded.add_counts(campaign_id, sent=2, failed=1, slot="b") is None

    campaign = sharded.require_campaign(campaign_id)
    assert (campaign.sent_count, campaign.failed_count) == (3, 1)
    assert sharded.set_counter(campaign_id, "sentCount", 3, 5)
    assert sharded.require_campaign(campaign_id).sent_count == 5
