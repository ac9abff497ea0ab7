"""COMPLETED only when nothing was made PENDING since the completion's scan began: a
``requeue-unknown``, or pause → populate → resume, landing between the scan and the COMPLETE
write leaves the campaign RUNNING (both stores)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from campaigns.domain.errors import InvalidTransition
from campaigns.domain.models import (
    Action,
    Campaign,
    CampaignStatus,
    RecipientStatus,
    StatusCounts,
    TemplateParam,
)
from campaigns.engine.completion import complete_if_done
from campaigns.operator.repair import requeue_unknown_recipients
from tests.contract.conftest import PHONES, ContractStore, Family


class AfterScan:
    """The campaign port of ``store``, running ``callback`` once right after the scan
    (``count_statuses``) and before whatever the caller writes next."""

    def __init__(self, store: ContractStore, callback: Callable[[], None]) -> None:
        self._store = store
        self._callback: Callable[[], None] | None = callback

    def get_campaign(self, campaign_id: str) -> Campaign | None:
        return self._store.get_campaign(campaign_id)

    def transition(
        self,
        campaign_id: str,
        action: Action,
        *,
        pause_reason: str | None = None,
        generation: int | None = None,
    ) -> Campaign:
        if generation is None:
            return self._store.transition(campaign_id, action, pause_reason=pause_reason)
        return self._store.transition(
            campaign_id, action, pause_reason=pause_reason, generation=generation
        )

    def add_counts(
        self,
        campaign_id: str,
        *,
        sent: int = 0,
        failed: int = 0,
        unknown: int = 0,
        held: int = 0,
        slot: str | None = None,
    ) -> Campaign | None:
        return self._store.add_counts(
            campaign_id, sent=sent, failed=failed, unknown=unknown, held=held, slot=slot
        )

    def count_statuses(self, campaign_id: str) -> StatusCounts:
        counts = self._store.count_statuses(campaign_id)
        if self._callback is not None:
            callback, self._callback = self._callback, None
            callback()
        return counts

    def suppress(self, phone: str, reason: str) -> None:
        self._store.suppress(phone, reason)

    def find_suppressed(self, phones: Sequence[str]) -> set[str]:
        return self._store.find_suppressed(phones)


def finished(family: Family, *, unknown: str | None = None) -> str:
    """A RUNNING campaign whose recipients are all FAILED (or ``unknown`` UNKNOWN)."""
    campaign_id = family.populated()
    store = family.store
    for phone in PHONES:
        claim = store.claim(campaign_id, phone, "consumer", family.clock.now() + 60)
        assert claim.claim is not None
        if phone == unknown:
            store.commit_unknown(claim.claim, "META_TIMEOUT", family.clock.now())
        else:
            store.commit_failed(claim.claim, "META_131026", family.clock.now())
    return campaign_id


def test_a_requeue_unknown_between_the_scan_and_the_complete_write_keeps_it_running(
    family: Family,
) -> None:
    campaign_id = finished(family, unknown=PHONES[1])

    def requeue() -> None:
        assert requeue_unknown_recipients(family.store, family.clock, campaign_id) == 1

    completed = complete_if_done(AfterScan(family.store, requeue), campaign_id)

    assert completed is None
    assert family.store.require_campaign(campaign_id).status is CampaignStatus.RUNNING
    assert family.store.count_statuses(campaign_id)[RecipientStatus.PENDING] == 1


def test_pause_populate_resume_between_the_scan_and_the_complete_write_keeps_it_running(
    family: Family,
) -> None:
    campaign_id = finished(family)
    store = family.store

    def pause_populate_resume() -> None:
        store.transition(campaign_id, Action.PAUSE)
        family.bulk.write_pending(campaign_id, [("919800000009", (TemplateParam("n", "A"),))])
        store.add_total(campaign_id, 1)
        store.transition(campaign_id, Action.RESUME)

    completed = complete_if_done(AfterScan(store, pause_populate_resume), campaign_id)

    assert completed is None
    assert store.require_campaign(campaign_id).status is CampaignStatus.RUNNING


def test_a_finished_campaign_completes_and_an_old_item_without_a_generation_too(
    family: Family,
) -> None:
    old = finished(family)  # created RUNNING: no start ever wrote its generation
    started = family.campaign(CampaignStatus.DRAFT)
    family.store.transition(started, Action.START)  # no recipients: done at once

    assert family.store.require_campaign(old).pending_generation == 0
    for campaign_id in (old, started):
        completed = complete_if_done(family.store, campaign_id)
        assert completed is not None
        assert completed.status is CampaignStatus.COMPLETED


def test_a_requeue_refuses_a_campaign_completed_before_it_began(family: Family) -> None:
    campaign_id = finished(family, unknown=PHONES[0])
    store = family.store
    store.transition(campaign_id, Action.COMPLETE)

    with pytest.raises(InvalidTransition):
        requeue_unknown_recipients(store, family.clock, campaign_id)

    assert store.count_statuses(campaign_id)[RecipientStatus.UNKNOWN] == 1
