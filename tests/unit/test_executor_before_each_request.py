"""What the executor checks right before each request to the Cloud API, on ManualClock: the
campaign still RUNNING (a pause or cancel between two attempts stops the retries) and the claim
still holding one send's worth of lease (renewed, or the recipient given up)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace

import pytest

from campaigns.domain.errors import StoreUnavailable
from campaigns.domain.models import (
    Action,
    CampaignStatus,
    Claim,
    RecipientStatus,
    SendAccepted,
    TemplateMessage,
)
from campaigns.engine.outcomes import BatchOutcome, RecipientOutcome
from campaigns.memory import ManualClock, MemoryCapGuard, Outcome
from campaigns.ports import Reservation
from tests.unit.meta_errors import meta_error
from tests.unit.test_executor import LEASE_S, PHONES, RecordingStore, Rig, running_store

PHONE = PHONES[0]
SEND_BUDGET_S = 5.0 + 30.0 + 5.0  # the executor's default: connect + read timeout + margin


@pytest.fixture
def rig() -> Rig:
    campaign_id, store = running_store(PHONES)
    return Rig(store=store, campaign_id=campaign_id)


@pytest.fixture(autouse=True)
def _no_real_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(seconds: float) -> None:
        raise AssertionError(f"time.sleep({seconds}) called in an executor test")

    monkeypatch.setattr("time.sleep", refuse)


class WaitingLimiter:
    """Every acquire holds the caller ``wait_s`` of the ManualClock (a Retry-After, a slow
    bucket), running ``during`` while it waits."""

    def __init__(
        self, clock: ManualClock, wait_s: float, during: Callable[[], object] | None = None
    ) -> None:
        self.clock = clock
        self.wait_s = wait_s
        self.during = during

    def acquire(self, stop: threading.Event | None = None) -> bool:
        self.clock.advance(self.wait_s)
        if self.during is not None:
            self.during()
        return True

    def throttled(self, retry_after_s: float | None = None) -> None:
        return None


class SlowGuard(MemoryCapGuard):
    """A reservation that takes ``wait_s`` (conflicts retried under contention)."""

    def __init__(self, clock: ManualClock, wait_s: float) -> None:
        super().__init__(cap=100)
        self.clock = clock
        self.wait_s = wait_s

    def reserve(self, now_s: float) -> Reservation | None:
        self.clock.advance(self.wait_s)
        return super().reserve(now_s)


# -- item 9: pause and cancel between attempts ------------------------------------------------


@pytest.mark.parametrize("action", [Action.CANCEL, Action.PAUSE])
def test_a_campaign_stopped_while_a_request_is_in_flight_gets_no_retry(
    rig: Rig, action: Action
) -> None:
    def stop_then_fail(message: TemplateMessage) -> Outcome:
        if len(rig.sender.sent) == 1:  # the sender's lock is held: read its list
            rig.store.transition(rig.campaign_id, action)  # lands while the request is out
        return meta_error(131000)  # retryable

    rig.answer_with(stop_then_fail)

    summary = rig.run()

    assert rig.sender.requests_for(PHONE) == 1  # only the request already in flight
    assert len(rig.sender.sent) == 1
    recipient = rig.recipient(PHONE)
    assert recipient.status is RecipientStatus.PENDING
    assert recipient.attempts == 1  # the request made counts; the next one was never made
    assert recipient.lease_owner is None
    assert rig.guard.refunds == 1
    assert rig.guard.usage(rig.clock.now()).used == 0
    assert summary.outcome is BatchOutcome.NOT_RUNNING
    assert summary.outcomes == {PHONE: RecipientOutcome.RELEASED}
    assert rig.campaign().status is (
        CampaignStatus.CANCELLED if action is Action.CANCEL else CampaignStatus.PAUSED
    )
    for phone in PHONES[1:]:
        assert rig.recipient(phone).status is RecipientStatus.PENDING


@pytest.mark.parametrize("action", [Action.CANCEL, Action.PAUSE])
def test_a_campaign_stopped_between_two_retries_sends_no_further_request(
    rig: Rig, action: Action
) -> None:
    rig.policy = replace(rig.policy, max_send_attempts=5)

    def fail_twice_stopping_after_the_second(message: TemplateMessage) -> Outcome:
        if len(rig.sender.sent) == 2:  # the sender's lock is held: read its list
            rig.store.transition(rig.campaign_id, action)
        return meta_error(131000)

    rig.answer_with(fail_twice_stopping_after_the_second)

    summary = rig.run()

    assert rig.sender.requests_for(PHONE) == 2
    recipient = rig.recipient(PHONE)
    assert (recipient.status, recipient.attempts) == (RecipientStatus.PENDING, 2)
    assert rig.guard.usage(rig.clock.now()).used == 0
    assert summary.outcome is BatchOutcome.NOT_RUNNING


def test_a_paused_recipient_is_sent_after_resume_with_its_retry_budget_left(rig: Rig) -> None:
    first = True

    def pause_once(message: TemplateMessage) -> Outcome:
        nonlocal first
        if first:
            first = False
            rig.store.transition(rig.campaign_id, Action.PAUSE)
            return meta_error(131000)
        return SendAccepted(f"wamid.{message.to}", "accepted")

    rig.answer_with(pause_once)
    rig.run(rig.batch([PHONE]))
    rig.store.transition(rig.campaign_id, Action.RESUME)
    rig.clock.advance(1.0)  # the executor's status cache expires

    summary = rig.run(rig.batch([PHONE]))

    assert summary.outcomes == {PHONE: RecipientOutcome.SENT}
    recipient = rig.recipient(PHONE)
    assert (recipient.status, recipient.attempts) == (RecipientStatus.SENT, 2)
    assert rig.guard.usage(rig.clock.now()).used == 1


def test_a_cancel_during_a_long_pacing_wait_stops_the_first_request(rig: Rig) -> None:
    rig.limiter = WaitingLimiter(
        rig.clock, 30.0, lambda: rig.store.transition(rig.campaign_id, Action.CANCEL)
    )

    summary = rig.run()

    assert rig.sender.sent == []
    assert summary.outcome is BatchOutcome.NOT_RUNNING
    recipient = rig.recipient(PHONE)
    assert (recipient.status, recipient.attempts) == (RecipientStatus.PENDING, 0)
    assert rig.guard.usage(rig.clock.now()).used == 0


# -- item 10: one send's worth of lease before every request ----------------------------------


def _expire_and_requeue(rig: Rig) -> Callable[[], None]:
    """What reconcile and an operator do to a lease that ran out: UNKNOWN, then PENDING."""

    def act() -> None:
        recipient = rig.recipient(PHONE)
        if recipient.status is RecipientStatus.SENDING and recipient.lease_expired(rig.clock.now()):
            assert rig.store.expire_lease(recipient, rig.clock.now())
            assert rig.store.requeue_unknown(rig.recipient(PHONE))

    return act


def test_a_pacing_wait_past_the_lease_sends_nothing_once_the_recipient_was_requeued(
    rig: Rig,
) -> None:
    rig.limiter = WaitingLimiter(rig.clock, LEASE_S + 30, _expire_and_requeue(rig))

    summary = rig.run(rig.batch([PHONE]))

    assert rig.sender.sent == []  # no request under a lease that was taken away
    assert summary.outcomes == {PHONE: RecipientOutcome.SKIPPED}
    assert rig.recipient(PHONE).status is RecipientStatus.PENDING  # the requeue's, untouched
    assert rig.guard.refunds == 1
    assert rig.guard.usage(rig.clock.now()).used == 0


def test_a_slow_reservation_past_the_lease_sends_nothing_once_the_recipient_was_requeued(
    rig: Rig,
) -> None:
    rig.guard = SlowGuard(rig.clock, LEASE_S + 1)
    rig.limiter = WaitingLimiter(rig.clock, 0.0, _expire_and_requeue(rig))

    rig.run(rig.batch([PHONE]))

    assert rig.sender.sent == []
    assert rig.guard.usage(rig.clock.now()).used == 0


def test_a_pacing_wait_that_eats_into_the_lease_renews_it_before_the_request(rig: Rig) -> None:
    rig.limiter = WaitingLimiter(rig.clock, LEASE_S - 10)  # 10 s left: less than one send
    seen: list[float] = []

    def accept(message: TemplateMessage) -> Outcome:
        recipient = rig.recipient(message.to)
        assert recipient.lease_until is not None
        seen.append(recipient.lease_until - rig.clock.now())
        return SendAccepted(f"wamid.{message.to}", "accepted")

    rig.answer_with(accept)

    summary = rig.run(rig.batch([PHONE]))

    assert seen == [LEASE_S]  # renewed to a whole lease right before the request
    assert summary.outcomes == {PHONE: RecipientOutcome.SENT}
    assert rig.recipient(PHONE).attempts == 1  # a renewal is not an attempt


def test_a_lease_with_a_send_left_is_not_renewed(rig: Rig) -> None:
    rig.limiter = WaitingLimiter(rig.clock, LEASE_S - SEND_BUDGET_S)
    writes: list[int] = []

    def accept(message: TemplateMessage) -> Outcome:
        writes.append(rig.store.writes)
        return SendAccepted(f"wamid.{message.to}", "accepted")

    rig.answer_with(accept)
    claim_writes = rig.store.writes

    rig.run(rig.batch([PHONE]))

    assert writes == [claim_writes + 1]  # the claim only: no renewal


class RenewFails(RecordingStore):
    def renew(self, claim: Claim, lease_until: float) -> Claim | None:
        raise StoreUnavailable("DynamoDB UpdateItem failed: InternalServerError")


def test_a_renewal_that_fails_gives_the_recipient_back_unsent() -> None:
    campaign_id, store = running_store(PHONES, RenewFails())
    rig = Rig(store=store, campaign_id=campaign_id)
    rig.limiter = WaitingLimiter(rig.clock, LEASE_S - 10)

    summary = rig.run(rig.batch([PHONE]))

    assert summary.outcome is BatchOutcome.ERROR
    assert rig.sender.sent == []
    recipient = rig.recipient(PHONE)
    assert (recipient.status, recipient.attempts) == (RecipientStatus.PENDING, 0)
    assert rig.guard.usage(rig.clock.now()).used == 0
