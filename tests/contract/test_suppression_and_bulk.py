"""Populate's bulk reads and writes, and the suppression list, on both families."""

from __future__ import annotations

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
