"""Reading recipients a page at a time (``iter_recipients(..., after=)``) and the time each
became final (``finished_at``), on both stores."""

from __future__ import annotations

import pytest

from campaigns.domain.models import Claim, Recipient, RecipientStatus
from tests.contract.conftest import Family

PHONES = [f"9198000000{n:02d}" for n in range(12)]
LEASE_S = 60.0


def _recipient(family: Family, campaign_id: str, phone: str) -> Recipient:
    return next(r for r in family.store.iter_recipients(campaign_id) if r.phone == phone)


def _claim(family: Family, campaign_id: str, phone: str) -> Claim:
    result = family.store.claim(campaign_id, phone, "consumer-a", family.clock.now() + LEASE_S)
    assert result.claim is not None
    return result.claim


def test_after_returns_only_the_phones_that_sort_strictly_after_it(family: Family) -> None:
    campaign_id = family.populated(phones=list(reversed(PHONES)))

    after = [r.phone for r in family.store.iter_recipients(campaign_id, after=PHONES[4])]

    assert after == PHONES[5:]


def test_after_a_phone_that_is_not_a_recipient_starts_at_the_next_one(family: Family) -> None:
    campaign_id = family.populated(phones=PHONES)
    between = PHONES[6] + "5"  # sorts between PHONES[6] and PHONES[7]

    after = [r.phone for r in family.store.iter_recipients(campaign_id, after=between)]

    assert after == PHONES[7:]


def test_after_the_last_phone_returns_nothing(family: Family) -> None:
    campaign_id = family.populated(phones=PHONES)

    assert list(family.store.iter_recipients(campaign_id, after=PHONES[-1])) == []


def test_pages_read_with_after_cover_every_recipient_exactly_once(family: Family) -> None:
    campaign_id = family.populated(phones=PHONES)
    seen: list[str] = []
    after: str | None = None

    while page := [r.phone for r in family.store.iter_recipients(campaign_id, after=after)][:5]:
        seen.extend(page)
        after = page[-1]

    assert seen == PHONES


def test_after_combines_with_a_status_filter(family: Family) -> None:
    campaign_id = family.populated(phones=PHONES)
    for phone in PHONES[::3]:  # 0, 3, 6, 9 fail
        family.store.commit_failed(_claim(family, campaign_id, phone), "META_131026", 1.0)

    failed = family.store.iter_recipients(campaign_id, RecipientStatus.FAILED, after=PHONES[3])

    assert [r.phone for r in failed] == [PHONES[6], PHONES[9]]


def test_after_does_not_reach_into_another_campaign(family: Family) -> None:
    first = family.populated(phones=PHONES[:3])
    family.populated(phones=PHONES[3:])

    assert [r.phone for r in family.store.iter_recipients(first, after=PHONES[1])] == [PHONES[2]]


def test_a_recipient_not_yet_final_has_no_finished_at(family: Family) -> None:
    campaign_id = family.populated(phones=PHONES[:2])
    _claim(family, campaign_id, PHONES[0])

    assert {r.finished_at for r in family.store.iter_recipients(campaign_id)} == {None}


@pytest.mark.parametrize("outcome", ["sent", "failed", "unknown"])
def test_every_commit_records_when_the_recipient_finished(family: Family, outcome: str) -> None:
    campaign_id = family.populated(phones=PHONES[:1])
    claim = _claim(family, campaign_id, PHONES[0])
    family.clock.advance(7.25)
    now_s = family.clock.now()

    if outcome == "sent":
        result = family.store.commit_sent(claim, "wamid.ONE", now_s)
    elif outcome == "failed":
        result = family.store.commit_failed(claim, "META_131026", now_s)
    else:
        result = family.store.commit_unknown(claim, "read timeout", now_s)

    assert result.committed
    assert _recipient(family, campaign_id, PHONES[0]).finished_at == pytest.approx(now_s)


def test_an_expired_lease_finishes_and_a_late_commit_moves_the_time(family: Family) -> None:
    store, clock = family.store, family.clock
    campaign_id = family.populated(phones=PHONES[:1])
    claim = _claim(family, campaign_id, PHONES[0])
    clock.advance(LEASE_S + 1)
    expired_at = clock.now()
    store.expire_lease(_recipient(family, campaign_id, PHONES[0]), expired_at)
    assert _recipient(family, campaign_id, PHONES[0]).finished_at == pytest.approx(expired_at)
    clock.advance(5)

    store.commit_sent(claim, "wamid.LATE", clock.now())

    assert _recipient(family, campaign_id, PHONES[0]).finished_at == pytest.approx(clock.now())


def test_requeue_unknown_clears_finished_at(family: Family) -> None:
    campaign_id = family.populated(phones=PHONES[:1])
    claim = _claim(family, campaign_id, PHONES[0])
    family.store.commit_unknown(claim, "read timeout", family.clock.now())

    assert family.store.requeue_unknown(_recipient(family, campaign_id, PHONES[0]))

    recipient = _recipient(family, campaign_id, PHONES[0])
    assert (recipient.status, recipient.finished_at) == (RecipientStatus.PENDING, None)
