"""Held sends, delivery failures by code and billable deliveries by category and country, on
both families: what ``commit_sent(held=True)`` and the delivery merge write, and that every
counter stays the sum of ``state_counts`` over the recipients under any order of reports."""

from __future__ import annotations

from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from campaigns.domain.delivery import state_counts
from campaigns.domain.models import Campaign, DeliveryReport, DeliveryStatus, Recipient
from tests.contract.conftest import PHONES, ContractStore, Family
from tests.contract.test_deliveries import OWNER, PHONE, WAMID, recipient, sent

SENT, DELIVERED, READ, FAILED, HELD = (
    DeliveryStatus.SENT,
    DeliveryStatus.DELIVERED,
    DeliveryStatus.READ,
    DeliveryStatus.FAILED,
    DeliveryStatus.HELD,
)
INDIA = "91"  # PHONES are Indian numbers


def report(
    campaign_id: str,
    status: DeliveryStatus,
    at_s: float = 1_700_000_000.0,
    *,
    phone: str = PHONE,
    error_code: str | None = None,
    category: str | None = None,
    billable: bool | None = None,
) -> DeliveryReport:
    return DeliveryReport(
        campaign_id,
        phone,
        status,
        at_s,
        f"{WAMID}-{phone}",
        error_code,
        None,
        pricing_category=category,
        billable=billable,
    )


def held_send(family: Family, phone: str = PHONE) -> tuple[str, bool]:
    """A RUNNING campaign whose ``phone`` was sent held_for_quality_assessment, counted as the
    committer counts it; returns the campaign and ``marked_held``."""
    campaign_id = family.populated(phones=[phone])
    claim = family.store.claim(campaign_id, phone, OWNER, family.clock.now() + 60).claim
    assert claim is not None
    result = family.store.commit_sent(claim, f"{WAMID}-{phone}", family.clock.now(), held=True)
    assert result.committed
    family.store.add_counts(campaign_id, sent=1, held=int(result.marked_held))
    return campaign_id, result.marked_held


def test_a_held_send_is_sent_with_delivery_status_held_and_counted(family: Family) -> None:
    campaign_id, marked = held_send(family)

    found = recipient(family.store, campaign_id)
    campaign = family.store.require_campaign(campaign_id)
    assert marked is True
    assert (found.status.value, found.delivery_status) == ("SENT", HELD)
    assert (campaign.sent_count, campaign.held_count) == (1, 1)


def test_any_later_status_resolves_a_held_recipient(family: Family) -> None:
    campaign_id, _ = held_send(family)

    applied = family.store.apply_delivery(report(campaign_id, SENT, 100.0))

    assert (applied.changed, applied.before, applied.after) == (True, HELD, SENT)
    campaign = family.store.require_campaign(campaign_id)
    assert (campaign.held_count, campaign.delivered_count) == (0, 0)
    family.store.apply_delivery(report(campaign_id, READ, 110.0))
    campaign = family.store.require_campaign(campaign_id)
    assert (campaign.held_count, campaign.delivered_count, campaign.read_count) == (0, 1, 1)


def test_a_held_answer_never_lowers_a_status_that_came_first(family: Family) -> None:
    campaign_id = family.populated(phones=[PHONE])
    claim = family.store.claim(campaign_id, PHONE, OWNER, family.clock.now() + 60).claim
    assert claim is not None
    # The webhook outran the send's answer: the recipient is still SENDING.
    family.store.apply_delivery(report(campaign_id, DELIVERED, 100.0))

    result = family.store.commit_sent(claim, f"{WAMID}-{PHONE}", family.clock.now(), held=True)

    assert (result.committed, result.marked_held) == (True, False)
    assert recipient(family.store, campaign_id).delivery_status is DELIVERED


def test_a_held_commit_whose_answer_was_lost_is_still_marked_once(family: Family) -> None:
    campaign_id = family.populated(phones=[PHONE])
    claim = family.store.claim(campaign_id, PHONE, OWNER, family.clock.now() + 60).claim
    assert claim is not None
    family.lose_next_answer()  # DynamoDB: the UpdateItem lands, its answer is lost, retried

    result = family.store.commit_sent(claim, f"{WAMID}-{PHONE}", family.clock.now(), held=True)
    # The committer's ADD carries its slot (memory: this is the write whose answer is lost).
    family.store.add_counts(campaign_id, sent=1, held=int(result.marked_held), slot="t1")

    assert (result.committed, result.marked_held) == (True, True)
    assert family.store.require_campaign(campaign_id).held_count == 1


def test_delivery_failures_are_counted_by_code_and_move_when_delivered_after_all(
    family: Family,
) -> None:
    campaign_id = sent(family, PHONES)
    family.store.apply_delivery(report(campaign_id, FAILED, error_code="META_131026"))
    family.store.apply_delivery(
        report(campaign_id, FAILED, phone=PHONES[1], error_code="META_131026")
    )
    family.store.apply_delivery(report(campaign_id, FAILED, phone=PHONES[2]))  # no code

    assert family.store.require_campaign(campaign_id).delivery_failures == {
        "META_131026": 2,
        "NONE": 1,
    }
    family.store.apply_delivery(report(campaign_id, DELIVERED, 120.0))
    campaign = family.store.require_campaign(campaign_id)
    assert campaign.delivery_failures == {"META_131026": 1, "NONE": 1}
    assert (campaign.delivery_failed_count, campaign.delivered_count) == (2, 1)


def test_billable_deliveries_are_counted_by_category_and_country_once(family: Family) -> None:
    campaign_id = sent(family, PHONES)
    # Pricing comes with "sent": billed only once delivered.
    family.store.apply_delivery(report(campaign_id, SENT, category="marketing", billable=True))
    assert family.store.require_campaign(campaign_id).billed == {}

    family.store.apply_delivery(report(campaign_id, DELIVERED, 101.0))
    family.store.apply_delivery(report(campaign_id, READ, 102.0, category="marketing"))
    family.store.apply_delivery(
        report(campaign_id, READ, phone=PHONES[1], category="UTILITY", billable=True)
    )
    family.store.apply_delivery(
        report(campaign_id, DELIVERED, phone=PHONES[2], category="service", billable=False)
    )

    campaign = family.store.require_campaign(campaign_id)
    assert campaign.billed == {("marketing", INDIA): 1, ("utility", INDIA): 1}
    assert recipient(family.store, campaign_id, PHONES[2]).pricing_category is None
    assert campaign.delivered_count == 3


def test_sharded_stores_sum_the_tallies(family: Family) -> None:
    campaign_id = sent(family, PHONES)
    sharded = family.sharded(4)

    for phone in PHONES:
        sharded.apply_delivery(report(campaign_id, DELIVERED, phone=phone, category="marketing"))
    sharded.apply_delivery(report(campaign_id, FAILED, phone=PHONES[0], error_code="META_1"))

    campaign = sharded.require_campaign(campaign_id)
    assert campaign.billed == {("marketing", INDIA): 3}
    assert campaign.delivery_failures == {}  # a failed after delivered is not a failure


def test_set_counter_corrects_a_tally(family: Family) -> None:
    campaign_id = sent(family)
    family.store.apply_delivery(report(campaign_id, FAILED, error_code="META_131026"))
    key = "deliveryFailed:META_131026"

    assert family.store.set_counter(campaign_id, key, 5, 0) is False  # it is 1, not 5
    assert family.store.set_counter(campaign_id, key, 1, 3) is True
    assert family.store.require_campaign(campaign_id).delivery_failures == {"META_131026": 3}


REPORTS = st.lists(
    st.tuples(
        st.sampled_from(PHONES),
        st.sampled_from([SENT, DELIVERED, READ, FAILED]),
        st.sampled_from(["META_131026", "META_131049", None]),
        st.sampled_from(["marketing", "utility", None]),
        st.sampled_from([True, False, None]),
        st.integers(min_value=0, max_value=20),
    ),
    max_size=14,
)


def _expected(recipients: list[Recipient]) -> Counter[str]:
    total: Counter[str] = Counter()
    for one in recipients:
        total.update(state_counts(one))
    return total


def _actual(campaign: Campaign) -> Counter[str]:
    fields = ("delivered_count", "read_count", "delivery_failed_count", "held_count")
    return Counter({name: getattr(campaign, name) for name in fields} | dict(campaign.tallies))


def _same(left: Counter[str], right: Counter[str]) -> bool:
    return +left == +right and -left == -right  # equal ignoring zeros


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(stream=REPORTS, held=st.sets(st.sampled_from(PHONES)))
def test_every_counter_is_the_sum_of_the_recipients_state_under_any_reports(
    family: Family,
    stream: list[tuple[str, DeliveryStatus, str | None, str | None, bool | None, int]],
    held: set[str],
) -> None:
    store: ContractStore = family.store
    campaign_id = family.populated(phones=PHONES)
    for phone in PHONES:
        claim = store.claim(campaign_id, phone, OWNER, family.clock.now() + 60).claim
        assert claim is not None
        result = store.commit_sent(claim, f"{WAMID}-{phone}", 0.0, held=phone in held)
        store.add_counts(campaign_id, sent=1, held=int(result.marked_held))

    for phone, status, code, category, billable, at in stream:
        store.apply_delivery(
            report(
                campaign_id,
                status,
                100.0 + at,
                phone=phone,
                error_code=code if status is FAILED else None,
                category=category,
                billable=billable,
            )
        )

    recipients = list(store.iter_recipients(campaign_id))
    assert _same(_actual(store.require_campaign(campaign_id)), _expected(recipients))
