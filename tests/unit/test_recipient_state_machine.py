"""Property: no sequence of claim, commit, crash, lease expiry, reconcile, pause, resume and
redelivery reaches a second send of one recipient (hypothesis drives the sequences)."""

from __future__ import annotations

import contextlib
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from campaigns.domain.errors import (
    AmbiguousSend,
    CampaignHalted,
    InvalidTransition,
    RecipientRejected,
    RetryableSendError,
)
from campaigns.domain.message import new_batch
from campaigns.domain.models import (
    Action,
    Campaign,
    CampaignStatus,
    RecipientStatus,
    SendAccepted,
    TemplateMessage,
    new_campaign_id,
)
from campaigns.engine.executor import BatchExecutor
from campaigns.engine.metrics import EngineMetrics
from campaigns.engine.retry import RetryPolicy
from campaigns.memory import ManualClock, MemoryCapGuard, MemoryStore, Unlimited
from campaigns.ports import ClaimResult, CommitResult

PHONES = [f"9190000000{i:02d}" for i in range(5)]
LEASE_S = 30.0
OUTCOMES = ["accept", "accept", "retryable", "reject", "ambiguous", "halt", "accept_then_crash"]
CRASH_POINTS = [None, "after_claim", "before_commit", "after_commit", "before_count"]


class Crash(BaseException):
    """The process dies here (SIGKILL): nothing after this point runs."""


class CrashingStore(MemoryStore):
    crash_at: str | None = None

    def _maybe(self, point: str) -> None:
        if self.crash_at == point:
            self.crash_at = None
            raise Crash(point)

    def claim(self, campaign_id: str, phone: str, owner: str, lease_until: float) -> ClaimResult:
        result = super().claim(campaign_id, phone, owner, lease_until)
        if result.claim is not None:
            self._maybe("after_claim")
        return result

    def _commit(self, claim: Any, *, from_unknown: bool = True, **changes: Any) -> CommitResult:
        self._maybe("before_commit")
        result = super()._commit(claim, from_unknown=from_unknown, **changes)
        self._maybe("after_commit")
        return result

    def add_counts(self, campaign_id: str, **deltas: Any) -> Campaign | None:
        self._maybe("before_count")
        return super().add_counts(campaign_id, **deltas)


class LedgerSender:
    """Meta as seen from outside: every accepted message is in the ledger."""

    def __init__(self) -> None:
        self.accepted: dict[str, list[str]] = {}
        self.next_outcome = "accept"
        self.count = 0

    def send(self, message: TemplateMessage) -> SendAccepted:
        outcome = self.next_outcome
        if outcome in ("accept", "accept_then_crash"):
            self.count += 1
            wamid = f"wamid.{self.count}"
            self.accepted.setdefault(message.to, []).append(wamid)
            if outcome == "accept_then_crash":
                raise Crash("after Meta accepted")
            return SendAccepted(wamid, "accepted")
        if outcome == "retryable":
            raise RetryableSendError("META_131016", "flaky")
        if outcome == "reject":
            raise RecipientRejected("META_131026", "undeliverable")
        if outcome == "ambiguous":
            self.count += 1  # it may have been accepted: say it was, the worst case
            self.accepted.setdefault(message.to, []).append(f"wamid.{self.count}")
            raise AmbiguousSend("META_TIMEOUT", "read timeout")
        raise CampaignHalted("META_190", "auth", "token expired")


class RecipientLifecycle(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock()
        self.store = CrashingStore()
        self.sender = LedgerSender()
        self.campaign_id = new_campaign_id()
        self.store.add_campaign(
            Campaign(self.campaign_id, "c", "tpl", "en_US", CampaignStatus.RUNNING)
        )
        self.store.add_recipients(self.campaign_id, PHONES)
        self.incarnation = 0

    @rule(
        phones=st.lists(st.sampled_from(PHONES), min_size=1, max_size=5, unique=True),
        outcome=st.sampled_from(OUTCOMES),
        crash=st.sampled_from(CRASH_POINTS),
    )
    def deliver_a_batch(self, phones: list[str], outcome: str, crash: str | None) -> None:
        """A (re)delivered message reaches a fresh consumer process, which may die in it."""
        self.incarnation += 1
        self.sender.next_outcome = outcome
        self.store.crash_at = crash
        executor = BatchExecutor(
            store=self.store,
            guard=MemoryCapGuard(0),
            sender=self.sender,
            limiter=Unlimited(),
            clock=self.clock,
            metrics=EngineMetrics(),
            owner=f"consumer-{self.incarnation}",
            lease_s=LEASE_S,
            policy=RetryPolicy(max_send_attempts=2),
        )
        with contextlib.suppress(Crash):
            executor.run(new_batch(self.campaign_id, phones))
        self.store.crash_at = None

    @rule(seconds=st.sampled_from([1.0, 10.0, LEASE_S + 1]))
    def time_passes(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule()
    def reconcile(self) -> None:
        now = self.clock.now()
        for recipient in list(self.store.recipients.values()):
            if recipient.lease_expired(now):
                self.store.expire_lease(recipient, now)

    @precondition(lambda self: self._status() is CampaignStatus.RUNNING)
    @rule()
    def pause(self) -> None:
        self.store.transition(self.campaign_id, Action.PAUSE)

    @precondition(lambda self: self._status() is CampaignStatus.PAUSED)
    @rule()
    def resume(self) -> None:
        with contextlib.suppress(InvalidTransition):
            self.store.transition(self.campaign_id, Action.RESUME)

    def _status(self) -> CampaignStatus:
        campaign = self.store.get_campaign(self.campaign_id)
        assert campaign is not None
        return campaign.status

    @invariant()
    def nobody_is_messaged_twice(self) -> None:
        twice = {phone: ids for phone, ids in self.sender.accepted.items() if len(ids) > 1}
        assert not twice

    @invariant()
    def a_reached_recipient_is_never_pending_again(self) -> None:
        for phone in self.sender.accepted:
            recipient = self.store.recipient(self.campaign_id, phone)
            assert recipient.status not in (RecipientStatus.PENDING, RecipientStatus.FAILED)

    @invariant()
    def sent_means_accepted_with_that_message_id(self) -> None:
        for phone in PHONES:
            recipient = self.store.recipient(self.campaign_id, phone)
            if recipient.status is RecipientStatus.SENT:
                assert recipient.message_id in self.sender.accepted.get(phone, [])


RecipientLifecycle.TestCase.settings = settings(
    max_examples=150, stateful_step_count=25, deadline=None
)
test_no_sequence_reaches_a_second_send = RecipientLifecycle.TestCase
