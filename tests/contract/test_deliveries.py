"""The status webhooks' store (``DeliveryStore``) on both families: the monotonic merge of
delivery reports into recipients and counters, UNKNOWN resolved once, the wamid lookup, the
BSUID link, lifting a suppression and the running campaigns."""

from __future__ import annotations

import threading
from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from campaigns.domain.models import (
    Campaign,
    CampaignStatus,
    DeliveryReport,
    DeliveryStatus,
    Recipient,
    RecipientStatus,
)
from tests.contract.conftest import PHONES, ContractStore, Family

OWNER = "consumer-a"
PHONE = PHONES[0]
WAMID = "wamid.HBgLOTE5ODAwMDAwMDAxFQIAERgS"
SENT, DELIVERED, READ, FAILED = (
    DeliveryStatus.SENT,
    DeliveryStatus.DELIVERED,
    DeliveryStatus.READ,
    DeliveryStatus.FAILED,
)


def report(
    campaign_id: str,
    status: DeliveryStatus,
    at_s: float = 1_700_000_000.0,
    *,
    phone: str = PHONE,
    message_id: str | None = WAMID,
    error_code: str | None = None,
    user_id: str | None = None,
    pricing_category: str | None = None,
) -> DeliveryReport:
    return DeliveryReport(
        campaign_id, phone, status, at_s, message_id, error_code, user_id, pricing_category
    )


def sent(family: Family, phones: list[str] = PHONES[:1]) -> str:
    """A RUNNING campaign whose ``phones`` were sent (wamid ``WAMID-<phone>``), counted."""
    campaign_id = family.populated(phones=phones)
    for phone in phones:
        claim = family.store.claim(campaign_id, phone, OWNER, family.clock.now() + 60).claim
        assert claim is not None
        family.store.commit_sent(claim, f"{WAMID}-{phone}", family.clock.now())
    family.store.add_counts(campaign_id, sent=len(phones))
    return campaign_id


def unknown(family: Family, phone: str = PHONE) -> str:
    """A RUNNING campaign whose ``phone`` is UNKNOWN (the send's answer was lost), counted."""
    campaign_id = family.populated(phones=[phone])
    claim = family.store.claim(campaign_id, phone, OWNER, family.clock.now() + 60).claim
    assert claim is not None
    family.store.commit_unknown(claim, "read timeout", family.clock.now())
    family.store.add_counts(campaign_id, unknown=1)
    return campaign_id


def recipient(store: ContractStore, campaign_id: str, phone: str = PHONE) -> Recipient:
    (found,) = [r for r in store.iter_recipients(campaign_id) if r.phone == phone]
    return found


def counts(campaign: Campaign) -> tuple[int, int, int, int, int]:
    return (
        campaign.sent_count,
        campaign.unknown_count,
        campaign.delivered_count,
        campaign.read_count,
        campaign.delivery_failed_count,
    )


def test_a_recipient_has_no_delivery_state_until_a_report_arrives(family: Family) -> None:
    campaign_id = sent(family)

    found = recipient(family.store, campaign_id)
    campaign = family.store.require_campaign(campaign_id)

    assert (found.delivery_status, found.delivered_at, found.read_at) == (None, None, None)
    assert (found.delivery_error_code, found.user_id, found.pricing_category) == (None, None, None)
    assert counts(campaign) == (1, 0, 0, 0, 0)
    assert (campaign.delivery_rate, campaign.read_rate) == (0.0, None)


def test_a_delivered_report_sets_delivered_at_and_counts_it(family: Family) -> None:
    campaign_id = sent(family)

    applied = family.store.apply_delivery(report(campaign_id, DELIVERED, 100.0))

    assert (applied.found, applied.changed, applied.resolved_unknown) == (True, True, False)
    assert (applied.before, applied.after) == (None, DELIVERED)
    found = recipient(family.store, campaign_id)
    assert (found.delivery_status, found.delivered_at, found.read_at) == (DELIVERED, 100.0, None)
    campaign = family.store.require_campaign(campaign_id)
    assert counts(campaign) == (1, 0, 1, 0, 0)
    assert (campaign.delivery_rate, campaign.read_rate) == (1.0, 0.0)


def test_a_read_without_a_delivered_counts_as_delivered_and_read(family: Family) -> None:
    campaign_id = sent(family)

    applied = family.store.apply_delivery(report(campaign_id, READ, 120.0))

    assert (applied.changed, applied.before, applied.after) == (True, None, READ)
    found = recipient(family.store, campaign_id)
    assert (found.delivery_status, found.delivered_at, found.read_at) == (READ, 120.0, 120.0)
    assert counts(family.store.require_campaign(campaign_id)) == (1, 0, 1, 1, 0)


def test_a_late_delivered_never_turns_read_back(family: Family) -> None:
    campaign_id = sent(family)
    family.store.apply_delivery(report(campaign_id, READ, 120.0))

    applied = family.store.apply_delivery(report(campaign_id, DELIVERED, 130.0))

    assert (applied.changed, applied.before, applied.after) == (False, READ, READ)
    found = recipient(family.store, campaign_id)
    assert (found.delivery_status, found.delivered_at, found.read_at) == (READ, 120.0, 120.0)
    assert counts(family.store.require_campaign(campaign_id)) == (1, 0, 1, 1, 0)


def test_a_late_report_with_an_earlier_time_moves_the_stamp_back_and_nothing_else(
    family: Family,
) -> None:
    campaign_id = sent(family)
    family.store.apply_delivery(report(campaign_id, READ, 120.0))

    applied = family.store.apply_delivery(report(campaign_id, DELIVERED, 110.0))

    assert applied.changed is False
    found = recipient(family.store, campaign_id)
    assert (found.delivery_status, found.delivered_at, found.read_at) == (READ, 110.0, 120.0)
    assert counts(family.store.require_campaign(campaign_id)) == (1, 0, 1, 1, 0)


def test_a_failed_after_read_is_ignored(family: Family) -> None:
    campaign_id = sent(family)
    family.store.apply_delivery(report(campaign_id, READ, 120.0))

    applied = family.store.apply_delivery(report(campaign_id, FAILED, 130.0, error_code="META_1"))

    assert (applied.changed, applied.after) == (False, READ)
    found = recipient(family.store, campaign_id)
    assert (found.delivery_status, found.delivery_error_code) == (READ, None)
    assert counts(family.store.require_campaign(campaign_id)) == (1, 0, 1, 1, 0)


def test_a_failed_report_records_its_code_and_counts_a_delivery_failure(family: Family) -> None:
    campaign_id = sent(family)

    applied = family.store.apply_delivery(
        report(campaign_id, FAILED, 100.0, error_code="META_131049")
    )

    assert (applied.changed, applied.after) == (True, FAILED)
    found = recipient(family.store, campaign_id)
    assert (found.delivery_status, found.delivery_error_code) == (FAILED, "META_131049")
    assert found.status is RecipientStatus.SENT  # Meta accepted it: still a send
    assert counts(family.store.require_campaign(campaign_id)) == (1, 0, 0, 0, 1)


def test_a_delivered_after_failed_wins_and_moves_the_counters(family: Family) -> None:
    campaign_id = sent(family)
    family.store.apply_delivery(report(campaign_id, FAILED, 100.0, error_code="META_131026"))

    applied = family.store.apply_delivery(report(campaign_id, DELIVERED, 110.0))

    assert (applied.changed, applied.before, applied.after) == (True, FAILED, DELIVERED)
    found = recipient(family.store, campaign_id)
    assert (found.delivery_status, found.delivered_at) == (DELIVERED, 110.0)
    assert found.delivery_error_code is None  # the failure is void: it was delivered
    assert counts(family.store.require_campaign(campaign_id)) == (1, 0, 1, 0, 0)


def test_a_duplicate_report_changes_nothing(family: Family) -> None:
    campaign_id = sent(family)
    first = family.store.apply_delivery(report(campaign_id, DELIVERED, 100.0, user_id="US.1"))
    before = recipient(family.store, campaign_id)

    again = family.store.apply_delivery(report(campaign_id, DELIVERED, 100.0, user_id="US.1"))

    assert first.changed is True
    assert (again.found, again.changed, again.resolved_unknown) == (True, False, False)
    assert (again.before, again.after) == (DELIVERED, DELIVERED)
    assert recipient(family.store, campaign_id) == before
    assert counts(family.store.require_campaign(campaign_id)) == (1, 0, 1, 0, 0)


def test_a_report_whose_answer_was_lost_is_recognised_as_applied(family: Family) -> None:
    campaign_id = sent(family)
    family.lose_next_answer()  # DynamoDB: the UpdateItem lands, its answer is lost, retried

    applied = family.store.apply_delivery(report(campaign_id, SENT, 100.0, user_id="US.1"))

    assert (applied.changed, applied.after) == (True, SENT)
    assert recipient(family.store, campaign_id).user_id == "US.1"
    assert counts(family.store.require_campaign(campaign_id)) == (1, 0, 0, 0, 0)


def test_a_report_stores_the_users_bsuid_and_the_pricing_category(family: Family) -> None:
    campaign_id = sent(family)

    family.store.apply_delivery(
        report(campaign_id, SENT, user_id="US.13491208655302741918", pricing_category="marketing")
    )

    found = recipient(family.store, campaign_id)
    assert (found.delivery_status, found.user_id) == (SENT, "US.13491208655302741918")
    assert found.pricing_category == "marketing"
    assert counts(family.store.require_campaign(campaign_id)) == (1, 0, 0, 0, 0)


def test_an_unknown_recipient_is_resolved_exactly_once(family: Family) -> None:
    campaign_id = unknown(family)
    assert counts(family.store.require_campaign(campaign_id)) == (0, 1, 0, 0, 0)

    first = family.store.apply_delivery(report(campaign_id, SENT, 100.0))
    again = family.store.apply_delivery(report(campaign_id, SENT, 100.0))
    later = family.store.apply_delivery(report(campaign_id, DELIVERED, 110.0))

    assert (first.resolved_unknown, again.resolved_unknown, later.resolved_unknown) == (
        True,
        False,
        False,
    )
    found = recipient(family.store, campaign_id)
    assert (found.status, found.message_id, found.delivery_status) == (
        RecipientStatus.SENT,
        WAMID,
        DELIVERED,
    )
    assert counts(family.store.require_campaign(campaign_id)) == (1, 0, 1, 0, 0)


def test_a_failed_report_resolves_an_unknown_recipient_as_sent(family: Family) -> None:
    campaign_id = unknown(family)

    applied = family.store.apply_delivery(report(campaign_id, FAILED, error_code="META_131026"))

    assert (applied.resolved_unknown, applied.after) == (True, FAILED)
    assert recipient(family.store, campaign_id).status is RecipientStatus.SENT
    assert counts(family.store.require_campaign(campaign_id)) == (1, 0, 0, 0, 1)


def test_a_report_that_moves_nothing_still_resolves_an_unknown_recipient(family: Family) -> None:
    # The webhook beat the commit: DELIVERED landed while SENDING, then the lease ran out.
    campaign_id = family.populated(phones=[PHONE])
    claim = family.store.claim(campaign_id, PHONE, OWNER, family.clock.now() + 60).claim
    assert claim is not None
    family.store.apply_delivery(report(campaign_id, DELIVERED, 100.0))
    assert family.store.expire_lease(recipient(family.store, campaign_id), family.clock.now() + 61)
    family.store.add_counts(campaign_id, unknown=1)

    applied = family.store.apply_delivery(report(campaign_id, DELIVERED, 100.0))

    assert (applied.changed, applied.resolved_unknown) == (False, True)
    found = recipient(family.store, campaign_id)
    assert (found.status, found.message_id) == (RecipientStatus.SENT, WAMID)
    assert counts(family.store.require_campaign(campaign_id)) == (1, 0, 1, 0, 0)


def test_a_report_for_a_missing_recipient_is_not_found_and_writes_nothing(
    family: Family,
) -> None:
    campaign_id = sent(family)
    before = family.store.require_campaign(campaign_id)

    applied = family.store.apply_delivery(report(campaign_id, DELIVERED, phone=PHONES[2]))

    assert (applied.found, applied.changed, applied.resolved_unknown) == (False, False, False)
    assert (applied.before, applied.after) == (None, None)
    assert [r.phone for r in family.store.iter_recipients(campaign_id)] == [PHONE]
    assert family.store.require_campaign(campaign_id) == before


def test_sharded_counters_sum_the_delivery_counts(family: Family) -> None:
    campaign_id = sent(family, PHONES)
    sharded = family.sharded(4)

    for phone in PHONES:
        sharded.apply_delivery(report(campaign_id, READ, phone=phone))
    sharded.apply_delivery(report(campaign_id, DELIVERED, phone=PHONES[0]))

    campaign = sharded.require_campaign(campaign_id)
    assert counts(campaign) == (3, 0, 3, 3, 0)
    assert sharded.running_campaigns() == [campaign]


def test_find_by_message_id_finds_the_recipient_sent_that_wamid(family: Family) -> None:
    campaign_id = sent(family, PHONES[:2])

    # DynamoDB's index is eventually consistent; moto's (like the fake) answers at once.
    assert family.store.find_by_message_id(f"{WAMID}-{PHONES[1]}") == (campaign_id, PHONES[1])
    assert family.store.find_by_message_id("wamid.nobody") is None


def test_find_by_message_id_finds_an_unknown_recipient_once_a_report_resolved_it(
    family: Family,
) -> None:
    campaign_id = unknown(family)
    assert family.store.find_by_message_id(WAMID) is None

    family.store.apply_delivery(report(campaign_id, SENT))

    assert family.store.find_by_message_id(WAMID) == (campaign_id, PHONE)


def test_a_bsuid_is_linked_to_its_number(family: Family) -> None:
    assert family.store.phone_for_user("US.1") is None

    family.store.link_user("US.1", PHONES[0])
    family.store.link_user("US.1", PHONES[0])  # idempotent
    family.store.link_user("US.2", PHONES[1])

    assert family.store.phone_for_user("US.1") == PHONES[0]
    assert family.store.phone_for_user("US.2") == PHONES[1]
    family.store.link_user("US.1", PHONES[2])  # the user's number changed
    assert family.store.phone_for_user("US.1") == PHONES[2]


def test_unsuppress_lifts_only_a_suppression_of_that_reason(family: Family) -> None:
    campaign_id = family.campaign()
    family.store.suppress(PHONES[0], "user_preferences")
    family.store.suppress(PHONES[1], "META_131050")

    assert family.store.unsuppress(PHONES[1], "user_preferences") is False
    assert family.store.unsuppress(PHONES[0], "user_preferences") is True
    assert family.store.unsuppress(PHONES[0], "user_preferences") is False  # already lifted
    assert family.store.unsuppress(PHONES[2], "user_preferences") is False  # never suppressed

    assert family.bulk.known(campaign_id, PHONES) == (set(), {PHONES[1]})


def test_running_campaigns_lists_only_the_running_ones(family: Family) -> None:
    family.campaign(CampaignStatus.DRAFT, name="draft")
    first = family.campaign(CampaignStatus.RUNNING, name="first")
    family.clock.advance(1)
    second = family.campaign(CampaignStatus.RUNNING, name="second")
    family.clock.advance(1)
    paused = family.campaign(CampaignStatus.PAUSED, name="paused")
    assert family.store.get_campaign(paused) is not None

    running = family.store.running_campaigns()

    assert [c.campaign_id for c in running] == [first, second]
    assert {c.status for c in running} == {CampaignStatus.RUNNING}


def test_concurrent_consumers_applying_the_same_reports_count_each_once(family: Family) -> None:
    campaign_id = sent(family, PHONES)
    reports = [
        report(campaign_id, status, 100.0 + rank, phone=phone, message_id=f"{WAMID}-{phone}")
        for phone in PHONES
        for rank, status in enumerate((SENT, DELIVERED, READ))
    ]
    errors: list[BaseException] = []

    def consume(offset: int) -> None:
        try:
            for index in range(len(reports)):
                family.store.apply_delivery(reports[(index + offset) % len(reports)])
        except BaseException as exc:  # surfaced below, never lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=consume, args=(offset,)) for offset in (0, 4, 7)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert counts(family.store.require_campaign(campaign_id)) == (3, 0, 3, 3, 0)
    assert {r.delivery_status for r in family.store.iter_recipients(campaign_id)} == {READ}


# -- any order, any duplicates: one end state ----------------------------------------------

STATUSES = st.sampled_from([SENT, DELIVERED, READ, FAILED])
# A few reports per number (status, time); each phone's list is applied shuffled, duplicated.
STREAMS = st.lists(
    st.tuples(st.sampled_from(PHONES), STATUSES, st.integers(min_value=0, max_value=5)),
    min_size=1,
    max_size=8,
)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(stream=STREAMS, data=st.data())
def test_any_order_with_duplicates_gives_one_end_state_and_the_same_counters(
    family: Family, stream: list[tuple[str, DeliveryStatus, int]], data: st.DataObject
) -> None:
    def reports_for(campaign_id: str) -> list[DeliveryReport]:
        return [
            report(
                campaign_id,
                status,
                100.0 + at,
                phone=phone,
                message_id=f"{WAMID}-{phone}",
                error_code=f"META_13102{phone[-1]}" if status is FAILED else None,
                user_id=f"US.{phone}",
            )
            for phone, status, at in stream
        ]

    in_order = unknown_then_sent(family)
    for one in reports_for(in_order):
        family.store.apply_delivery(one)
    shuffled = unknown_then_sent(family)
    replayed = reports_for(shuffled)
    replayed += data.draw(st.lists(st.sampled_from(replayed), max_size=6), label="duplicates")
    for one in data.draw(st.permutations(replayed), label="order"):
        family.store.apply_delivery(one)

    def end_state(campaign_id: str) -> list[Recipient]:
        return [  # the lease owner carries a fresh token per claim
            replace(r, campaign_id="", lease_owner=None)
            for r in family.store.iter_recipients(campaign_id)
        ]

    assert end_state(shuffled) == end_state(in_order)
    assert counts(family.store.require_campaign(shuffled)) == counts(
        family.store.require_campaign(in_order)
    )


def unknown_then_sent(family: Family) -> str:
    """A campaign with PHONES[0] UNKNOWN and the others SENT, counted."""
    campaign_id = family.populated(phones=PHONES)
    for phone in PHONES:
        claim = family.store.claim(campaign_id, phone, OWNER, family.clock.now() + 60).claim
        assert claim is not None
        if phone == PHONES[0]:
            family.store.commit_unknown(claim, "read timeout", family.clock.now())
        else:
            family.store.commit_sent(claim, f"{WAMID}-{phone}", family.clock.now())
    family.store.add_counts(campaign_id, sent=len(PHONES) - 1, unknown=1)
    return campaign_id
