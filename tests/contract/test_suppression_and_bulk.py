"""Populate's bulk reads and writes, and the suppression list, on both families."""

from __future__ import annotations

import pytest

from campaigns.domain.models import CampaignStatus, RecipientStatus, TemplateParam
from tests.contract.conftest import PHONES, Family


def test_known_tells_present_recipients_from_suppressed_and_new_numbers(family: Family) -> None:
    campaign_id = family.populated(phones=PHONES[:1])
    family.store.suppress(PHONES[1], "META_131050")

    existing, suppressed = family.bulk.known(campaign_id, PHONES)

    assert (existing, suppressed) == ({PHONES[0]}, {PHONES[1]})


def test_suppression_holds_across_campaigns(family: Family) -> None:
    family.store.suppress(PHONES[2], "META_131050")
    other = family.campaign()

    assert family.bulk.known(other, PHONES) == (set(), {PHONES[2]})


def test_write_pending_writes_new_pending_recipients_and_leaves_the_total(family: Family) -> None:
    campaign_id = family.campaign(CampaignStatus.DRAFT)
    params = (TemplateParam("1", "Asha"), TemplateParam("2", "20%"))

    written = family.bulk.write_pending(campaign_id, [(PHONES[0], params), (PHONES[1], ())])

    assert written == 2
    recipients = {r.phone: r for r in family.store.iter_recipients(campaign_id)}
    assert set(recipients) == {PHONES[0], PHONES[1]}
    assert recipients[PHONES[0]].params == params
    assert recipients[PHONES[1]].params == ()
    assert {(r.status, r.attempts) for r in recipients.values()} == {(RecipientStatus.PENDING, 0)}
    assert family.store.require_campaign(campaign_id).total_recipients == 0
    assert family.bulk.known(campaign_id, PHONES) == ({PHONES[0], PHONES[1]}, set())


def test_write_pending_writes_more_than_one_batch_write_holds(family: Family) -> None:
    campaign_id = family.campaign()
    phones = [f"9198000{n:05d}" for n in range(60)]

    assert family.bulk.write_pending(campaign_id, [(p, ()) for p in phones]) == 60

    assert family.store.count_statuses(campaign_id).total == 60
    assert family.bulk.known(campaign_id, phones) == (set(phones), set())


# -- a suppression holds a set of reasons -----------------------------------------------------

KEYWORD, PREFERENCES, OPTED_OUT = "keyword", "user_preferences", "META_131050"


def _suppressed(family: Family, phone: str) -> bool:
    return phone in family.bulk.known("any-campaign", [phone])[1]


@pytest.mark.parametrize("lifted_first", [KEYWORD, PREFERENCES])
@pytest.mark.parametrize("order", [(KEYWORD, PREFERENCES), (PREFERENCES, KEYWORD)])
def test_a_number_stays_suppressed_until_every_reason_is_lifted(
    family: Family, order: tuple[str, str], lifted_first: str
) -> None:
    for reason in order:
        family.store.suppress(PHONES[0], reason)
    other = KEYWORD if lifted_first == PREFERENCES else PREFERENCES

    assert family.store.unsuppress(PHONES[0], lifted_first) is True
    assert _suppressed(family, PHONES[0])  # the other reason still stands
    assert family.store.unsuppress(PHONES[0], lifted_first) is False  # already lifted
    assert _suppressed(family, PHONES[0])
    assert family.store.unsuppress(PHONES[0], other) is True
    assert not _suppressed(family, PHONES[0])
    assert family.store.unsuppress(PHONES[0], other) is False


def test_a_keyword_stop_outlives_a_user_preferences_stop_and_resume(family: Family) -> None:
    family.store.suppress(PHONES[0], KEYWORD)
    family.store.suppress(PHONES[0], PREFERENCES)

    assert family.store.unsuppress(PHONES[0], PREFERENCES) is True

    assert _suppressed(family, PHONES[0])


def test_suppressing_twice_for_one_reason_is_lifted_by_one_unsuppress(family: Family) -> None:
    family.store.suppress(PHONES[0], PREFERENCES)
    family.store.suppress(PHONES[0], PREFERENCES)

    assert family.store.unsuppress(PHONES[0], PREFERENCES) is True

    assert not _suppressed(family, PHONES[0])


def test_unsuppress_of_a_reason_the_number_lacks_is_false_and_changes_nothing(
    family: Family,
) -> None:
    family.store.suppress(PHONES[0], OPTED_OUT)

    assert family.store.unsuppress(PHONES[0], PREFERENCES) is False
    assert family.store.unsuppress(PHONES[1], PREFERENCES) is False  # never suppressed

    assert _suppressed(family, PHONES[0])
    assert not _suppressed(family, PHONES[1])
    assert family.store.unsuppress(PHONES[0], OPTED_OUT) is True  # its one reason, intact
    assert not _suppressed(family, PHONES[0])


def test_an_old_single_reason_item_counts_as_a_one_reason_set(family: Family) -> None:
    family.legacy_suppression(PHONES[0], KEYWORD)
    family.legacy_suppression(PHONES[1], PREFERENCES)

    assert _suppressed(family, PHONES[0])
    assert family.store.unsuppress(PHONES[0], PREFERENCES) is False
    assert family.store.unsuppress(PHONES[1], PREFERENCES) is True
    assert not _suppressed(family, PHONES[1])
    family.store.suppress(PHONES[0], PREFERENCES)  # joins the old reason, does not replace it
    assert family.store.unsuppress(PHONES[0], PREFERENCES) is True
    assert _suppressed(family, PHONES[0])
    assert family.store.unsuppress(PHONES[0], KEYWORD) is True
    assert not _suppressed(family, PHONES[0])


def test_an_unsuppress_whose_answer_was_lost_still_reports_the_lift(family: Family) -> None:
    family.store.suppress(PHONES[0], KEYWORD)
    family.store.suppress(PHONES[0], PREFERENCES)
    family.lose_next_answer()

    assert family.store.unsuppress(PHONES[0], PREFERENCES) is True

    assert _suppressed(family, PHONES[0])
    assert family.store.unsuppress(PHONES[0], KEYWORD) is True
    assert not _suppressed(family, PHONES[0])


def test_find_suppressed_names_the_suppressed_numbers_among_the_ones_asked(
    family: Family,
) -> None:
    family.store.suppress(PHONES[0], KEYWORD)
    family.store.suppress(PHONES[2], OPTED_OUT)
    family.legacy_suppression("919800000009", PREFERENCES)

    assert family.store.find_suppressed([*PHONES, "919800000009"]) == {
        PHONES[0],
        PHONES[2],
        "919800000009",
    }
    assert family.store.find_suppressed(PHONES[1:2]) == set()
    assert family.store.find_suppressed([]) == set()
    family.store.unsuppress(PHONES[0], KEYWORD)
    assert family.store.find_suppressed(PHONES) == {PHONES[2]}


def test_find_suppressed_reads_more_numbers_than_one_batch_get_holds(family: Family) -> None:
    phones = [f"9198000{n:05d}" for n in range(130)]
    for phone in phones[::10]:
        family.store.suppress(phone, KEYWORD)

    assert family.store.find_suppressed([*phones, phones[0]]) == set(phones[::10])
