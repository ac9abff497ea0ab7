"""The recipient lease state machine (claim, attempt, release, commit, expiry, requeue) on both
stores: PENDING → SENDING → SENT / FAILED / UNKNOWN, and back to PENDING."""

from __future__ import annotations

from campaigns.domain.models import Claim, Recipient, RecipientStatus, TemplateParam
from tests.contract.conftest import PHONES, Family

PHONE = PHONES[0]
LEASE_S = 60.0


def _recipient(family: Family, campaign_id: str, phone: str = PHONE) -> Recipient:
    return next(r for r in family.store.iter_recipients(campaign_id) if r.phone == phone)


def _claim(family: Family, campaign_id: str, owner: str = "consumer-a") -> Claim:
    result = family.store.claim(campaign_id, PHONE, owner, family.clock.now() + LEASE_S)
    assert result.claim is not None
    return result.claim


def test_written_recipients_are_pending_with_their_params_in_phone_order(family: Family) -> None:
    campaign_id = family.populated(phones=list(reversed(PHONES)))

    recipients = list(family.store.iter_recipients(campaign_id))

    assert [r.phone for r in recipients] == PHONES
    assert {r.status for r in recipients} == {RecipientStatus.PENDING}
    assert {r.attempts for r in recipients} == {0}
    assert {r.params for r in recipients} == {(TemplateParam("name", "Asha"),)}
    assert family.store.count_statuses(campaign_id).counts == {RecipientStatus.PENDING: 3}


def test_a_claim_takes_a_pending_recipient_under_a_lease(family: Family) -> None:
    campaign_id = family.populated()
    lease_until = family.clock.now() + LEASE_S

    result = family.store.claim(campaign_id, PHONE, "consumer-a", lease_until)

    assert result.claim is not None
    claimed = result.claim.recipient
    assert (claimed.status, claimed.attempts) == (RecipientStatus.SENDING, 1)
    assert (claimed.lease_owner, claimed.lease_until) == (result.claim.owner, lease_until)
    assert result.claim.owner.startswith("consumer-a#")  # per claim: the consumer and a token
    assert result.claim.consumer == "consumer-a"
    assert claimed.params == (TemplateParam("name", "Asha"),)
    assert _recipient(family, campaign_id) == claimed
    assert list(family.store.iter_recipients(campaign_id, RecipientStatus.SENDING)) == [claimed]


def test_a_refused_claim_returns_the_recipient_as_it_is(family: Family) -> None:
    campaign_id = family.populated()
    first = _claim(family, campaign_id, "consumer-a")

    refused = family.store.claim(campaign_id, PHONE, "consumer-b", family.clock.now() + 99)

    assert refused.claim is None
    assert refused.current == first.recipient


def test_a_claim_whose_answer_was_lost_is_recognised_as_landed(family: Family) -> None:
    campaign_id = family.populated()
    lease_until = family.clock.now() + LEASE_S
    family.lose_next_answer()  # DynamoDB: the UpdateItem lands, its answer is lost, retried

    result = family.store.claim(campaign_id, PHONE, "consumer-a", lease_until)

    assert result.claim is not None
    assert _recipient(family, campaign_id) == result.claim.recipient
    assert result.claim.recipient.attempts == 1


def test_a_second_claim_by_the_same_consumer_is_a_new_claim_and_refused(family: Family) -> None:
    campaign_id = family.populated()
    lease_until = family.clock.now() + LEASE_S
    first = family.store.claim(campaign_id, PHONE, "consumer-a", lease_until)

    again = family.store.claim(campaign_id, PHONE, "consumer-a", lease_until)

    assert first.claim is not None
    assert again.claim is None
    assert again.current == first.claim.recipient
    assert _recipient(family, campaign_id).attempts == 1


def test_a_claim_of_an_absent_recipient_returns_nothing(family: Family) -> None:
    campaign_id = family.populated()

    result = family.store.claim(campaign_id, "919899999999", "consumer-a", 1.0)

    assert (result.claim, result.current) == (None, None)


def test_record_attempt_counts_the_retry_and_extends_the_lease(family: Family) -> None:
    campaign_id = family.populated()
    claim = _claim(family, campaign_id)
    later = claim.lease_until + 30

    again = family.store.record_attempt(claim, later)

    assert again is not None
    assert (again.recipient.attempts, again.lease_until) == (2, later)
    assert _recipient(family, campaign_id).lease_until == later


def test_renew_extends_the_lease_of_the_claim_without_counting_an_attempt(
    family: Family,
) -> None:
    campaign_id = family.populated()
    claim = _claim(family, campaign_id)
    later = claim.lease_until + 45

    renewed = family.store.renew(claim, later)

    assert renewed is not None
    assert (renewed.owner, renewed.lease_until) == (claim.owner, later)
    assert renewed.recipient.attempts == 1
    assert _recipient(family, campaign_id) == renewed.recipient
    assert family.store.renew(renewed, later + 10) is not None  # renewed again, same claim


def test_a_lease_that_ran_out_but_was_not_expired_yet_can_still_be_renewed(
    family: Family,
) -> None:
    campaign_id = family.populated()
    claim = _claim(family, campaign_id)
    family.clock.advance(LEASE_S + 1)

    renewed = family.store.renew(claim, family.clock.now() + LEASE_S)

    assert renewed is not None
    assert not family.store.expire_lease(_recipient(family, campaign_id), family.clock.now())


def test_an_expired_lease_is_not_renewed(family: Family) -> None:
    store, clock = family.store, family.clock
    campaign_id = family.populated()
    claim = _claim(family, campaign_id)
    clock.advance(LEASE_S + 1)
    assert store.expire_lease(_recipient(family, campaign_id), clock.now())

    assert store.renew(claim, clock.now() + LEASE_S) is None
    assert _recipient(family, campaign_id).status is RecipientStatus.UNKNOWN


def test_record_attempt_on_a_stale_claim_is_refused(family: Family) -> None:
    campaign_id = family.populated()
    claim = _claim(family, campaign_id)
    assert family.store.record_attempt(claim, claim.lease_until + 30) is not None

    stale = family.store.record_attempt(claim, claim.lease_until + 60)  # attempts moved on

    assert stale is None
    assert _recipient(family, campaign_id).attempts == 2


def test_release_with_a_refund_returns_the_recipient_untouched(family: Family) -> None:
    campaign_id = family.populated()
    claim = _claim(family, campaign_id)

    assert family.store.release(claim, refund_attempt=True)

    recipient = _recipient(family, campaign_id)
    assert (recipient.status, recipient.attempts, recipient.halted_attempts) == (
        RecipientStatus.PENDING,
        0,
        0,
    )
    assert (recipient.lease_owner, recipient.lease_until) == (None, None)


def test_release_after_a_halting_answer_keeps_the_attempt_and_counts_the_halt(
    family: Family,
) -> None:
    campaign_id = family.populated()
    claim = _claim(family, campaign_id)

    assert family.store.release(claim, refund_attempt=False, halted=True)

    recipient = _recipient(family, campaign_id)
    assert (recipient.status, recipient.attempts, recipient.halted_attempts) == (
        RecipientStatus.PENDING,
        1,
        1,
    )
    assert recipient.tries == 0


def test_commit_sent_records_the_message_id_and_keeps_the_owner(family: Family) -> None:
    campaign_id = family.populated()
    claim = _claim(family, campaign_id)

    result = family.store.commit_sent(claim, "wamid.ONE", family.clock.now())

    assert (result.committed, result.was_unknown) == (True, False)
    recipient = _recipient(family, campaign_id)
    assert (recipient.status, recipient.message_id) == (RecipientStatus.SENT, "wamid.ONE")
    assert (recipient.lease_owner, recipient.lease_until) == (claim.owner, None)


def test_commit_failed_records_the_error_code(family: Family) -> None:
    campaign_id = family.populated()
    claim = _claim(family, campaign_id)

    result = family.store.commit_failed(claim, "META_131026", family.clock.now())

    assert result.committed
    recipient = _recipient(family, campaign_id)
    assert (recipient.status, recipient.error_code) == (RecipientStatus.FAILED, "META_131026")


def test_commit_unknown_records_the_reason(family: Family) -> None:
    campaign_id = family.populated()
    claim = _claim(family, campaign_id)

    result = family.store.commit_unknown(claim, "read timeout", family.clock.now())

    assert (result.committed, result.was_unknown) == (True, False)
    recipient = _recipient(family, campaign_id)
    assert (recipient.status, recipient.unknown_reason) == (RecipientStatus.UNKNOWN, "read timeout")
    assert recipient.lease_until is None


def test_a_repeated_commit_of_the_same_outcome_is_recognised_as_landed(family: Family) -> None:
    campaign_id = family.populated()
    claim = _claim(family, campaign_id)
    family.store.commit_sent(claim, "wamid.ONE", family.clock.now())

    again = family.store.commit_sent(claim, "wamid.ONE", family.clock.now())
    other = family.store.commit_sent(claim, "wamid.TWO", family.clock.now())

    assert (again.committed, again.was_unknown) == (True, False)
    assert not other.committed
    assert _recipient(family, campaign_id).message_id == "wamid.ONE"


def test_an_expired_lease_turns_unknown_and_a_late_commit_still_resolves_it(
    family: Family,
) -> None:
    store, clock = family.store, family.clock
    campaign_id = family.populated()
    claim = _claim(family, campaign_id)
    clock.advance(LEASE_S + 1)

    assert store.expire_lease(_recipient(family, campaign_id), clock.now())
    expired = _recipient(family, campaign_id)
    assert (expired.status, expired.unknown_reason) == (RecipientStatus.UNKNOWN, "lease expired")

    result = store.commit_sent(claim, "wamid.LATE", clock.now())

    assert (result.committed, result.was_unknown) == (True, True)
    recipient = _recipient(family, campaign_id)
    assert (recipient.status, recipient.message_id) == (RecipientStatus.SENT, "wamid.LATE")


def test_commit_unknown_after_expiry_does_not_overwrite_the_unknown(family: Family) -> None:
    campaign_id = family.populated()
    claim = _claim(family, campaign_id)
    family.clock.advance(LEASE_S + 1)
    family.store.expire_lease(_recipient(family, campaign_id), family.clock.now())

    result = family.store.commit_unknown(claim, "read timeout", family.clock.now())

    assert not result.committed
    assert _recipient(family, campaign_id).unknown_reason == "lease expired"


def test_a_live_lease_does_not_expire(family: Family) -> None:
    campaign_id = family.populated()
    claim = _claim(family, campaign_id)

    assert not family.store.expire_lease(claim.recipient, family.clock.now())
    assert not family.store.expire_lease(claim.recipient, claim.lease_until)  # ends, not ended
    assert _recipient(family, campaign_id).status is RecipientStatus.SENDING


def test_a_pending_recipient_does_not_expire(family: Family) -> None:
    campaign_id = family.populated()

    assert not family.store.expire_lease(_recipient(family, campaign_id), family.clock.now())


def test_requeue_unknown_returns_it_to_pending_without_an_owner(family: Family) -> None:
    store, clock = family.store, family.clock
    campaign_id = family.populated()
    claim = _claim(family, campaign_id)
    store.commit_unknown(claim, "read timeout", clock.now())

    assert store.requeue_unknown(_recipient(family, campaign_id))

    recipient = _recipient(family, campaign_id)
    assert (recipient.status, recipient.lease_owner) == (RecipientStatus.PENDING, None)
    assert not store.requeue_unknown(recipient)  # PENDING now: nothing to requeue


def test_a_lost_lease_refuses_every_write_of_its_old_owner(family: Family) -> None:
    store, clock = family.store, family.clock
    campaign_id = family.populated()
    old = _claim(family, campaign_id, "consumer-a")
    clock.advance(LEASE_S + 1)
    store.expire_lease(_recipient(family, campaign_id), clock.now())
    store.requeue_unknown(_recipient(family, campaign_id))
    new = _claim(family, campaign_id, "consumer-b")

    assert store.record_attempt(old, clock.now() + LEASE_S) is None
    assert not store.release(old, refund_attempt=True)
    assert not store.commit_sent(old, "wamid.OLD", clock.now()).committed
    assert not store.commit_failed(old, "META_131026", clock.now()).committed
    assert not store.commit_unknown(old, "read timeout", clock.now()).committed

    assert store.commit_sent(new, "wamid.NEW", clock.now()).committed
    assert _recipient(family, campaign_id).message_id == "wamid.NEW"


def test_count_statuses_counts_every_state(family: Family) -> None:
    store, clock = family.store, family.clock
    campaign_id = family.populated()
    first = store.claim(campaign_id, PHONES[0], "a", clock.now() + LEASE_S).claim
    second = store.claim(campaign_id, PHONES[1], "a", clock.now() + LEASE_S).claim
    assert first is not None
    assert second is not None
    store.commit_sent(first, "wamid.A", clock.now())

    counts = store.count_statuses(campaign_id)

    assert counts.counts == {
        RecipientStatus.SENT: 1,
        RecipientStatus.SENDING: 1,
        RecipientStatus.PENDING: 1,
    }
    assert (counts.total, counts.open) == (3, 2)


def test_a_replayed_release_does_not_undo_a_newer_claim_by_the_same_consumer(
    family: Family,
) -> None:
    """Two threads of one process share its consumer id: T1's release lands (its answer lost),
    T2 claims the recipient again, then T1's release is sent again. The lease owner is per
    claim, so the replay is refused and T2's claim stands."""
    store, clock = family.store, family.clock
    campaign_id = family.populated()
    first = _claim(family, campaign_id, "consumer-a")
    assert store.release(first, refund_attempt=True)
    second = _claim(family, campaign_id, "consumer-a")

    replayed = store.release(first, refund_attempt=True)

    assert not replayed
    recipient = _recipient(family, campaign_id)
    assert (recipient.status, recipient.lease_owner, recipient.attempts) == (
        RecipientStatus.SENDING,
        second.owner,
        1,
    )
    assert store.commit_sent(second, "wamid.SECOND", clock.now()).committed


def test_every_write_of_a_claim_needs_its_own_token_not_just_the_consumer_id(
    family: Family,
) -> None:
    store, clock = family.store, family.clock
    campaign_id = family.populated()
    first = _claim(family, campaign_id, "consumer-a")
    assert store.release(first, refund_attempt=True)
    second = _claim(family, campaign_id, "consumer-a")

    assert first.owner != second.owner
    assert first.consumer == second.consumer == "consumer-a"
    assert store.record_attempt(first, clock.now() + LEASE_S) is None
    assert store.renew(first, clock.now() + LEASE_S) is None
    assert not store.commit_sent(first, "wamid.OLD", clock.now()).committed
    assert not store.commit_failed(first, "META_131026", clock.now()).committed
    assert not store.commit_unknown(first, "read timeout", clock.now()).committed

    assert _recipient(family, campaign_id).lease_owner == second.owner
    assert store.commit_failed(second, "META_131026", clock.now()).committed


def test_a_tokenless_claim_of_older_code_still_expires_to_unknown(family: Family) -> None:
    store, clock = family.store, family.clock
    campaign_id = family.populated()
    family.legacy_claim(campaign_id, PHONE, "old-consumer", clock.now() + LEASE_S)
    legacy = _recipient(family, campaign_id)
    assert (legacy.status, legacy.lease_owner) == (RecipientStatus.SENDING, "old-consumer")
    clock.advance(LEASE_S + 1)

    assert store.expire_lease(legacy, clock.now())

    expired = _recipient(family, campaign_id)
    assert (expired.status, expired.unknown_reason) == (RecipientStatus.UNKNOWN, "lease expired")


def test_a_tokenless_claim_in_flight_during_a_rolling_update_commits_under_its_owner(
    family: Family,
) -> None:
    """Older code holds its claim under the bare consumer id, which the item holds too: the
    commit compares the whole owner and lands; anyone else's write is refused."""
    store, clock = family.store, family.clock
    campaign_id = family.populated()
    lease_until = clock.now() + LEASE_S
    family.legacy_claim(campaign_id, PHONE, "old-consumer", lease_until)
    legacy = _recipient(family, campaign_id)
    old = Claim(legacy, "old-consumer", lease_until)
    theirs = Claim(legacy, "old-consumer#0123456789abcdef", lease_until)

    assert not store.release(theirs, refund_attempt=True)
    assert store.commit_sent(old, "wamid.OLD", clock.now()).committed
    recipient = _recipient(family, campaign_id)
    assert (recipient.status, recipient.message_id) == (RecipientStatus.SENT, "wamid.OLD")


def test_a_stale_read_does_not_expire_a_newer_claim(family: Family) -> None:
    """Reconcile read claim 1 (expired); before its write, claim 1 went UNKNOWN → PENDING and
    claim 2 took it. The expiry is conditioned on the claim it read: claim 2 stands."""
    store, clock = family.store, family.clock
    campaign_id = family.populated()
    _claim(family, campaign_id, "consumer-a")
    clock.advance(LEASE_S + 1)
    stale = _recipient(family, campaign_id)
    assert store.expire_lease(stale, clock.now())
    assert store.requeue_unknown(_recipient(family, campaign_id))
    second = store.claim(campaign_id, PHONE, "consumer-a", clock.now() - 1).claim  # skewed
    assert second is not None

    assert not store.expire_lease(stale, clock.now())

    assert _recipient(family, campaign_id).status is RecipientStatus.SENDING
