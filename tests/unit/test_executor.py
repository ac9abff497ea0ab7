"""The per-batch executor against the in-memory fakes: what happens to each recipient."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial

import pytest
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from campaigns.domain.errors import AmbiguousSend, RetryableSendError, StoreUnavailable
from campaigns.domain.message import BatchMessage, new_batch
from campaigns.domain.models import (
    Action,
    Campaign,
    CampaignStatus,
    Claim,
    DeliveryStatus,
    Recipient,
    RecipientStatus,
    SendAccepted,
    TemplateMessage,
    TemplateParam,
    new_campaign_id,
)
from campaigns.engine.cache import CampaignCache
from campaigns.engine.executor import BatchExecutor
from campaigns.engine.metrics import EngineMetrics
from campaigns.engine.outcomes import BatchOutcome, BatchSummary, RecipientOutcome
from campaigns.engine.retry import RetryPolicy
from campaigns.memory import (
    FakeSender,
    ManualClock,
    MemoryCapGuard,
    MemoryStore,
    Outcome,
    Unlimited,
)
from campaigns.ports import CommitResult, RateLimiter, Reservation
from tests.unit.meta_errors import (
    FAIL_CODES,
    HTML_503,
    PAIR_RATE_CODES,
    PAUSE_CODES,
    SUPPRESS_CODES,
    THROTTLE_CODES,
    TRANSIENT_CODES,
    UNCLASSIFIED_CODE,
    meta_error,
    non_json_error,
)

OWNER = "consumer-under-test"
LEASE_S = 60.0
PHONES = [f"9198765432{i:02d}" for i in range(5)]
TEMPLATE = "vendor_signup_confirmation"


class RecordingLimiter:
    """A rate limiter that never waits and remembers every throttling signal."""

    def __init__(self, *, refuse: bool = False) -> None:
        self.refuse = refuse
        self.acquired = 0
        self.throttles: list[float | None] = []

    def acquire(self, stop: threading.Event | None = None) -> bool:
        self.acquired += 1
        return not self.refuse and not (stop is not None and stop.is_set())

    def throttled(self, retry_after_s: float | None = None) -> None:
        self.throttles.append(retry_after_s)


class RecordingStore(MemoryStore):
    """A MemoryStore that remembers every campaign transition that went through."""

    def __init__(self) -> None:
        super().__init__()
        self.transitions: list[Action] = []

    def transition(
        self,
        campaign_id: str,
        action: Action,
        *,
        pause_reason: str | None = None,
        generation: int | None = None,
    ) -> Campaign:
        campaign = super().transition(
            campaign_id, action, pause_reason=pause_reason, generation=generation
        )
        self.transitions.append(action)
        return campaign


class FailingStore(RecordingStore):
    """Raises ``StoreUnavailable`` when committing ``phone`` as SENT (DynamoDB gone)."""

    def __init__(self, phone: str) -> None:
        super().__init__()
        self.phone = phone

    def commit_sent(
        self, claim: Claim, message_id: str, now_s: float, *, held: bool = False
    ) -> CommitResult:
        if claim.recipient.phone == self.phone:
            raise StoreUnavailable("DynamoDB UpdateItem failed: InternalServerError")
        return super().commit_sent(claim, message_id, now_s, held=held)


@dataclass
class Rig:
    """One RUNNING campaign of ``PHONES`` and every collaborator of the executor, faked.

    A test may swap a collaborator until its first ``run``, which builds the executor."""

    store: RecordingStore
    campaign_id: str
    guard: MemoryCapGuard = field(default_factory=lambda: MemoryCapGuard(cap=100))
    sender: FakeSender = field(default_factory=FakeSender)
    clock: ManualClock = field(default_factory=ManualClock)
    limiter: RateLimiter = field(default_factory=Unlimited)
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    _executor: BatchExecutor | None = None

    @property
    def executor(self) -> BatchExecutor:
        if self._executor is None:
            self._executor = BatchExecutor(
                store=self.store,
                guard=self.guard,
                sender=self.sender,
                limiter=self.limiter,
                clock=self.clock,
                metrics=EngineMetrics(self.registry),
                owner=OWNER,
                lease_s=LEASE_S,
                policy=self.policy,
                cache=CampaignCache(self.store, self.clock),
                rng=random.Random(7),
            )
        return self._executor

    def batch(self, phones: list[str] | None = None) -> BatchMessage:
        return new_batch(self.campaign_id, PHONES if phones is None else phones)

    def run(
        self, message: BatchMessage | None = None, stop: threading.Event | None = None
    ) -> BatchSummary:
        return self.executor.run(message or self.batch(), stop)

    def recipient(self, phone: str) -> Recipient:
        return self.store.recipient(self.campaign_id, phone)

    def campaign(self) -> Campaign:
        campaign = self.store.get_campaign(self.campaign_id)
        assert campaign is not None
        return campaign

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0

    def script(self, phone: str, *outcomes: Outcome) -> None:
        self.sender.script[phone] = list(outcomes)

    def answer_with(self, answer: Callable[[TemplateMessage], Outcome]) -> None:
        self.sender.default = answer


def running_store(
    phones: list[str], store: RecordingStore | None = None
) -> tuple[str, RecordingStore]:
    store = store if store is not None else RecordingStore()
    campaign_id = new_campaign_id()
    store.add_campaign(
        Campaign(campaign_id, "spring sale", TEMPLATE, "en_US", CampaignStatus.RUNNING)
    )
    store.add_recipients(campaign_id, phones, params=(TemplateParam("1", "Asha"),))
    return campaign_id, store


@pytest.fixture
def rig() -> Rig:
    campaign_id, store = running_store(PHONES)
    return Rig(store=store, campaign_id=campaign_id)


def statuses(rig: Rig, phones: list[str]) -> list[RecipientStatus]:
    return [rig.recipient(phone).status for phone in phones]


def assert_untouched(rig: Rig, phones: list[str]) -> None:
    for phone in phones:
        recipient = rig.recipient(phone)
        assert recipient.status is RecipientStatus.PENDING
        assert recipient.attempts == 0
        assert recipient.lease_owner is None
        assert rig.sender.requests_for(phone) == 0


# -- the happy path -------------------------------------------------------------------------


def test_every_recipient_of_a_clean_batch_is_sent_with_its_wamid_and_counted(rig: Rig) -> None:
    rig.answer_with(lambda message: SendAccepted(f"wamid.{message.to}", "accepted"))

    summary = rig.run()

    assert summary.outcome is BatchOutcome.COMPLETED
    assert (summary.sent, summary.failed, summary.unknown, summary.processed) == (5, 0, 0, 5)
    assert summary.outcomes == dict.fromkeys(PHONES, RecipientOutcome.SENT)
    for phone in PHONES:
        recipient = rig.recipient(phone)
        assert recipient.status is RecipientStatus.SENT
        assert recipient.message_id == f"wamid.{phone}"
        assert recipient.attempts == 1
        assert recipient.lease_until is None
    assert rig.sender.accepted == [(phone, f"wamid.{phone}") for phone in PHONES]
    campaign = rig.campaign()
    assert (campaign.sent_count, campaign.failed_count, campaign.unknown_count) == (5, 0, 0)
    assert rig.metric("campaign_messages_sent_total") == 5
    assert rig.metric("campaign_batches_processed_total", outcome="completed") == 1
    assert rig.metric("campaign_send_duration_seconds_count") == 5
    assert rig.metric("campaign_cap_used") == 5
    assert rig.metric("campaign_cap_limit") == 100


def test_a_send_held_for_quality_assessment_is_sent_with_delivery_status_held(rig: Rig) -> None:
    held = set(PHONES[:2])
    rig.answer_with(
        lambda message: SendAccepted(
            f"wamid.{message.to}",
            "held_for_quality_assessment" if message.to in held else "accepted",
        )
    )

    summary = rig.run()

    assert summary.outcomes == dict.fromkeys(PHONES, RecipientOutcome.SENT)
    assert [rig.recipient(phone).delivery_status for phone in PHONES] == [
        DeliveryStatus.HELD,
        DeliveryStatus.HELD,
        None,
        None,
        None,
    ]
    campaign = rig.campaign()
    assert (campaign.sent_count, campaign.held_count) == (5, 2)
    assert rig.metric("campaign_messages_held_total") == 2
    assert campaign.to_public()["heldCount"] == 2


def test_the_campaign_completes_exactly_once_when_its_last_recipient_commits(rig: Rig) -> None:
    statuses_seen_at_send: list[CampaignStatus] = []

    def accept(message: TemplateMessage) -> Outcome:
        statuses_seen_at_send.append(rig.campaign().status)
        return SendAccepted(f"wamid.{message.to}", "accepted")

    rig.answer_with(accept)

    first = rig.run(rig.batch(PHONES[:3]))

    assert first.outcome is BatchOutcome.COMPLETED  # the batch, not the campaign
    assert not first.completed_campaign
    assert rig.campaign().status is CampaignStatus.RUNNING
    assert rig.store.transitions == []

    second = rig.run(rig.batch(PHONES[3:]))

    assert second.outcome is BatchOutcome.COMPLETED
    assert second.completed_campaign
    assert statuses_seen_at_send == [CampaignStatus.RUNNING] * 5
    assert rig.campaign().status is CampaignStatus.COMPLETED
    assert rig.store.transitions == [Action.COMPLETE]


def test_the_template_message_carries_the_recipient_params_and_callback_data(rig: Rig) -> None:
    rig.run(rig.batch(PHONES[:1]))

    [message] = rig.sender.sent
    assert message.to == PHONES[0]
    assert message.template_name == TEMPLATE
    assert message.language == "en_US"
    assert message.params == (TemplateParam("1", "Asha"),)
    assert not message.named_params
    assert message.callback_data == f"{rig.campaign_id}:{PHONES[0]}"


# -- every row of the error table -----------------------------------------------------------

# (test id, the client's exception, the errorCode recorded once the attempts are exhausted)
RETRY_CASES: list[tuple[str, Callable[[], Exception], str]] = [
    *[
        (f"code {code}", partial(meta_error, code), f"META_{code}")
        for code in (*THROTTLE_CODES, *PAIR_RATE_CODES, *TRANSIENT_CODES)
    ],
    ("unclassified 5xx", partial(meta_error, UNCLASSIFIED_CODE, 503), f"META_{UNCLASSIFIED_CODE}"),
    ("html 503", partial(non_json_error, 503, HTML_503), "META_HTTP_503"),
    ("empty 400", partial(non_json_error, 400, b""), "META_HTTP_400"),
]


@pytest.mark.parametrize(
    ("error", "code"), [(e, c) for _, e, c in RETRY_CASES], ids=[i for i, _, _ in RETRY_CASES]
)
def test_a_retryable_error_is_retried_then_fails_with_the_last_code(
    rig: Rig, error: Callable[[], Exception], code: str
) -> None:
    failing = PHONES[2]
    rig.script(failing, error())

    summary = rig.run()

    assert rig.sender.requests_for(failing) == 3
    recipient = rig.recipient(failing)
    assert recipient.status is RecipientStatus.FAILED
    assert recipient.error_code == code
    assert recipient.attempts == 3
    assert rig.guard.refunds == 1
    assert rig.guard.usage(rig.clock.now()).used == 4
    assert summary.outcome is BatchOutcome.COMPLETED
    assert (summary.sent, summary.failed) == (4, 1)
    campaign = rig.campaign()
    assert (campaign.sent_count, campaign.failed_count) == (4, 1)
    assert campaign.status is CampaignStatus.COMPLETED
    assert rig.metric("campaign_messages_failed_total", error_code=code) == 1
    assert rig.metric("campaign_send_retries_total", error_code=code) == 2


@pytest.mark.parametrize("code", [*FAIL_CODES, *SUPPRESS_CODES, UNCLASSIFIED_CODE])
def test_a_recipient_level_rejection_fails_it_after_one_request_and_refunds_its_unit(
    rig: Rig, code: int
) -> None:
    failing = PHONES[2]
    rig.script(failing, meta_error(code))

    summary = rig.run()

    assert rig.sender.requests_for(failing) == 1
    recipient = rig.recipient(failing)
    assert recipient.status is RecipientStatus.FAILED
    assert recipient.error_code == f"META_{code}"
    assert recipient.attempts == 1
    assert rig.guard.refunds == 1
    assert rig.guard.usage(rig.clock.now()).used == 4
    assert summary.outcomes[failing] is RecipientOutcome.FAILED
    assert rig.campaign().failed_count == 1
    assert rig.metric("campaign_messages_failed_total", error_code=f"META_{code}") == 1
    assert rig.metric("campaign_send_retries_total", error_code=f"META_{code}") == 0
    assert rig.store.suppressed == ({failing: {"META_131050"}} if code == 131050 else {})


# -- opted out after the import ----------------------------------------------------------------


class CountingStore(RecordingStore):
    """Counts the suppression reads; optionally fails them (DynamoDB gone)."""

    def __init__(self, *, fail: bool = False) -> None:
        super().__init__()
        self.fail = fail
        self.suppression_reads: list[tuple[str, ...]] = []

    def find_suppressed(self, phones: Sequence[str]) -> set[str]:
        self.suppression_reads.append(tuple(phones))
        if self.fail:
            raise StoreUnavailable("DynamoDB BatchGetItem failed: InternalServerError")
        return super().find_suppressed(phones)


def test_a_pending_recipient_who_opted_out_is_failed_as_suppressed_without_a_request(
    rig: Rig,
) -> None:
    rig.store.suppress(PHONES[1], "keyword")
    rig.store.suppress(PHONES[3], "user_preferences")

    with capture_logs() as logs:
        summary = rig.run()

    for phone in (PHONES[1], PHONES[3]):
        assert rig.sender.requests_for(phone) == 0
        recipient = rig.recipient(phone)
        assert (recipient.status, recipient.error_code) == (RecipientStatus.FAILED, "SUPPRESSED")
        assert summary.outcomes[phone] is RecipientOutcome.FAILED
    assert [m.to for m in rig.sender.sent] == [PHONES[0], PHONES[2], PHONES[4]]
    assert rig.guard.usage(rig.clock.now()).used == 3  # no unit reserved for them
    assert rig.guard.refunds == 0
    campaign = rig.campaign()
    assert (campaign.sent_count, campaign.failed_count, campaign.unknown_count) == (3, 2, 0)
    assert campaign.status is CampaignStatus.COMPLETED  # nobody left pending
    assert rig.metric("campaign_messages_failed_total", error_code="SUPPRESSED") == 2
    events = [e for e in logs if e["event"] == "recipient.suppressed"]
    assert sorted(e["phone"] for e in events) == ["9198******01", "9198******03"]
    assert {e["campaign_id"] for e in events} == {rig.campaign_id}


def test_the_suppression_list_is_read_once_per_batch_not_per_recipient() -> None:
    store = CountingStore()
    campaign_id, _ = running_store(PHONES, store)
    rig = Rig(store=store, campaign_id=campaign_id)

    rig.run(rig.batch(PHONES[:3]))
    rig.run(rig.batch(PHONES[3:]))

    assert store.suppression_reads == [tuple(PHONES[:3]), tuple(PHONES[3:])]


def test_a_batch_whose_suppression_read_fails_sends_nothing_and_is_left_for_redelivery() -> None:
    campaign_id, store = running_store(PHONES, CountingStore(fail=True))
    rig = Rig(store=store, campaign_id=campaign_id)

    summary = rig.run()

    assert summary.outcome is BatchOutcome.ERROR
    assert_untouched(rig, PHONES)


def test_a_number_suppressed_while_its_batch_sends_is_skipped_from_the_next_batch_on(
    rig: Rig,
) -> None:
    """The window of the per-batch check: an opt-out applied after the batch read the list
    does not stop that batch's send to the number; every later batch skips it."""

    def opt_out_meanwhile(message: TemplateMessage) -> Outcome:
        if message.to == PHONES[0]:
            rig.store.suppress(PHONES[1], "keyword")  # the webhook lands mid-batch
            rig.store.suppress(PHONES[3], "keyword")
        return SendAccepted(f"wamid.{message.to}", "accepted")

    rig.answer_with(opt_out_meanwhile)

    rig.run(rig.batch(PHONES[:2]))  # PHONES[1]: in the batch already being sent
    rig.run(rig.batch(PHONES[2:]))  # PHONES[3]: a later batch

    assert rig.recipient(PHONES[1]).status is RecipientStatus.SENT
    assert rig.sender.requests_for(PHONES[3]) == 0
    assert rig.recipient(PHONES[3]).error_code == "SUPPRESSED"


def test_an_unclassified_client_error_is_logged_as_such(rig: Rig) -> None:
    rig.script(PHONES[0], meta_error(UNCLASSIFIED_CODE, 400))

    with capture_logs() as logs:
        rig.run(rig.batch(PHONES[:1]))

    [event] = [e for e in logs if e["event"] == "recipient.unclassified_error"]
    assert event["code"] == f"META_{UNCLASSIFIED_CODE}"


@pytest.mark.parametrize(("code", "reason"), sorted(PAUSE_CODES.items()))
def test_a_campaign_level_error_pauses_the_campaign_and_keeps_the_recipient_pending(
    rig: Rig, code: int, reason: str
) -> None:
    halting = PHONES[2]
    rig.script(halting, meta_error(code))

    summary = rig.run()

    assert summary.outcome is BatchOutcome.PAUSED
    campaign = rig.campaign()
    assert campaign.status is CampaignStatus.PAUSED
    assert campaign.pause_reason is not None
    assert f"META_{code}" in campaign.pause_reason
    assert summary.pause_reason == campaign.pause_reason
    assert rig.metric("campaign_pauses_total", reason=reason) == 1
    assert rig.metric("campaign_batches_processed_total", outcome="paused") == 1
    recipient = rig.recipient(halting)
    assert recipient.status is RecipientStatus.PENDING
    assert recipient.attempts == 1  # the request was made ...
    assert recipient.halted_attempts == 1  # ... but does not count against its retries
    assert recipient.tries == 0
    assert recipient.lease_owner is None
    assert rig.sender.requests_for(halting) == 1
    assert rig.guard.refunds == 1
    assert rig.guard.usage(rig.clock.now()).used == 2
    assert statuses(rig, PHONES[:2]) == [RecipientStatus.SENT] * 2
    assert_untouched(rig, PHONES[3:])
    assert rig.metric("campaign_messages_failed_total", error_code=f"META_{code}") == 0


def test_a_recipient_halted_once_still_gets_its_full_retry_budget_after_resume(rig: Rig) -> None:
    phone = PHONES[0]
    rig.script(phone, meta_error(190), meta_error(131000))
    rig.run(rig.batch([phone]))
    rig.store.transition(rig.campaign_id, Action.RESUME)
    rig.clock.advance(1.0)  # past the executor's status cache

    rig.run(rig.batch([phone]))

    recipient = rig.recipient(phone)
    assert recipient.status is RecipientStatus.FAILED
    assert recipient.error_code == "META_131000"
    assert rig.sender.requests_for(phone) == 1 + 3
    assert recipient.attempts == 4


# -- retries counted exactly ----------------------------------------------------------------


@pytest.mark.parametrize("max_send_attempts", [1, 3, 5])
def test_a_number_that_always_gets_503_is_tried_exactly_max_send_attempts_times(
    rig: Rig, max_send_attempts: int
) -> None:
    rig.policy = RetryPolicy(max_send_attempts=max_send_attempts)
    phone = PHONES[0]
    rig.script(phone, meta_error(131016, 503))

    rig.run(rig.batch([phone]))

    assert rig.sender.requests_for(phone) == max_send_attempts
    recipient = rig.recipient(phone)
    assert recipient.status is RecipientStatus.FAILED
    assert recipient.error_code == "META_131016"
    assert recipient.attempts == max_send_attempts


def test_a_transient_error_that_clears_is_sent_on_the_next_try(rig: Rig) -> None:
    phone = PHONES[0]
    rig.script(phone, meta_error(131000), SendAccepted("wamid.second", "accepted"))

    summary = rig.run(rig.batch([phone]))

    assert summary.outcomes[phone] is RecipientOutcome.SENT
    recipient = rig.recipient(phone)
    assert (recipient.status, recipient.message_id, recipient.attempts) == (
        RecipientStatus.SENT,
        "wamid.second",
        2,
    )
    assert rig.guard.refunds == 0


def test_an_undeliverable_number_is_tried_exactly_once(rig: Rig) -> None:
    phone = PHONES[0]
    rig.script(phone, meta_error(131026))

    rig.run(rig.batch([phone]))

    assert rig.sender.requests_for(phone) == 1
    assert rig.recipient(phone).error_code == "META_131026"


def test_a_read_timeout_makes_the_recipient_unknown_keeps_its_unit_and_is_never_resent(
    rig: Rig,
) -> None:
    phone = PHONES[0]
    rig.script(phone, AmbiguousSend("META_TIMEOUT", "ReadTimeout"))
    batch = rig.batch([phone, PHONES[1]])

    summary = rig.run(batch)

    assert rig.sender.requests_for(phone) == 1
    assert summary.outcomes[phone] is RecipientOutcome.UNKNOWN
    assert rig.recipient(phone).status is RecipientStatus.UNKNOWN
    assert rig.guard.refunds == 0
    assert rig.guard.usage(rig.clock.now()).used == 2
    assert rig.campaign().unknown_count == 1
    assert rig.metric("campaign_messages_unknown_total") == 1

    again = rig.run(batch)  # SQS redelivers the same message

    assert rig.sender.requests_for(phone) == 1
    assert again.outcomes[phone] is RecipientOutcome.SKIPPED
    assert again.outcome is BatchOutcome.COMPLETED
    assert rig.campaign().unknown_count == 1


# -- retry delays ---------------------------------------------------------------------------


def test_retry_delays_grow_exponentially_with_jitter_within_bounds(rig: Rig) -> None:
    rig.policy = RetryPolicy(max_send_attempts=6, backoff_base_s=1.0, backoff_max_s=30.0)
    rig.script(PHONES[0], meta_error(131000))

    rig.run(rig.batch(PHONES[:1]))

    assert len(rig.clock.slept) == 5
    for attempt, delay in enumerate(rig.clock.slept, start=1):
        ceiling = min(30.0, 2.0 ** (attempt - 1))
        assert ceiling / 2 <= delay <= ceiling


def test_the_jitter_spreads_delays_over_the_upper_half_of_the_exponential_step() -> None:
    policy = RetryPolicy(backoff_base_s=1.0, backoff_max_s=30.0)
    rng = random.Random(3)
    error = RetryableSendError("META_131000")

    delays = [policy.delay_s(error, 4, rng) for _ in range(200)]

    assert all(4.0 <= d <= 8.0 for d in delays)
    assert min(delays) < 4.5
    assert max(delays) > 7.5
    assert policy.delay_s(error, 20, rng) <= 30.0


@pytest.mark.parametrize("code", [130429, 131000])
def test_a_retry_after_header_is_honoured(rig: Rig, code: int) -> None:
    rig.script(PHONES[0], meta_error(code, retry_after="7"), SendAccepted("wamid.x", "accepted"))

    rig.run(rig.batch(PHONES[:1]))

    [delay] = rig.clock.slept
    assert delay >= 7.0


def test_a_pair_rate_limited_recipient_waits_four_to_the_n_seconds(rig: Rig) -> None:
    rig.script(PHONES[0], meta_error(131056))

    rig.run(rig.batch(PHONES[:1]))

    assert rig.clock.slept == [4.0, 16.0]
    assert rig.recipient(PHONES[0]).error_code == "META_131056"


@pytest.mark.parametrize("code", THROTTLE_CODES)
def test_a_throttling_code_slows_the_rate_limiter_down(rig: Rig, code: int) -> None:
    limiter = RecordingLimiter()
    rig.limiter = limiter
    rig.script(PHONES[0], meta_error(code, retry_after="2"), SendAccepted("wamid.x", "accepted"))

    rig.run(rig.batch(PHONES[:1]))

    assert limiter.throttles == [2.0]
    assert limiter.acquired == 2


@pytest.mark.parametrize("code", [*TRANSIENT_CODES, *PAIR_RATE_CODES])
def test_a_transient_error_does_not_slow_the_rate_limiter(rig: Rig, code: int) -> None:
    limiter = RecordingLimiter()
    rig.limiter = limiter
    rig.script(PHONES[0], meta_error(code), SendAccepted("wamid.x", "accepted"))

    rig.run(rig.batch(PHONES[:1]))

    assert limiter.throttles == []
    assert limiter.acquired == 2


# -- the cap --------------------------------------------------------------------------------


def test_the_cap_pauses_the_campaign_and_releases_the_recipient_that_hit_it(rig: Rig) -> None:
    rig.guard = MemoryCapGuard(cap=2)

    summary = rig.run()

    assert summary.outcome is BatchOutcome.PAUSED
    assert len(rig.sender.sent) == 2
    assert statuses(rig, PHONES[:2]) == [RecipientStatus.SENT] * 2
    third = rig.recipient(PHONES[2])
    assert third.status is RecipientStatus.PENDING
    assert third.attempts == 0
    assert third.lease_owner is None
    assert summary.outcomes[PHONES[2]] is RecipientOutcome.RELEASED
    assert_untouched(rig, PHONES[2:])
    campaign = rig.campaign()
    assert campaign.status is CampaignStatus.PAUSED
    assert campaign.pause_reason == "Daily limit reached: 2/2 conversations"
    assert summary.pause_reason == campaign.pause_reason
    assert rig.metric("campaign_pauses_total", reason="daily_limit") == 1
    assert rig.metric("campaign_batches_processed_total", outcome="paused") == 1
    assert rig.metric("campaign_cap_used") == 2


# -- redelivery, pause, cancel, stop --------------------------------------------------------


def test_a_redelivered_batch_sends_nothing_twice(rig: Rig) -> None:
    batch = rig.batch(PHONES[:3])  # the campaign has more: it stays RUNNING
    rig.run(batch)
    requests_before = len(rig.sender.sent)

    again = rig.run(batch)

    assert len(rig.sender.sent) == requests_before == 3
    assert again.outcome is BatchOutcome.COMPLETED
    assert again.outcomes == dict.fromkeys(PHONES[:3], RecipientOutcome.SKIPPED)
    assert (again.sent, again.skipped) == (0, 3)
    assert rig.campaign().sent_count == 3


@pytest.mark.parametrize("action", [Action.PAUSE, Action.CANCEL])
def test_a_campaign_stopped_before_the_batch_sends_nothing(rig: Rig, action: Action) -> None:
    rig.store.transition(rig.campaign_id, action)

    summary = rig.run()

    assert summary.outcome is BatchOutcome.NOT_RUNNING
    assert rig.sender.sent == []
    assert_untouched(rig, PHONES)
    assert rig.metric("campaign_batches_processed_total", outcome="not_running") == 1


@pytest.mark.parametrize("action", [Action.PAUSE, Action.CANCEL])
def test_a_campaign_stopped_mid_batch_sends_nothing_more(rig: Rig, action: Action) -> None:
    def stop_campaign_during_second_send(message: TemplateMessage) -> Outcome:
        if message.to == PHONES[1]:
            rig.store.transition(rig.campaign_id, action)
            rig.clock.advance(1.0)  # the executor's status cache expires
        return SendAccepted(f"wamid.{message.to}", "accepted")

    rig.answer_with(stop_campaign_during_second_send)

    summary = rig.run()

    assert summary.outcome is BatchOutcome.NOT_RUNNING
    assert [m.to for m in rig.sender.sent] == PHONES[:2]
    assert statuses(rig, PHONES[:2]) == [RecipientStatus.SENT] * 2  # already accepted by Meta
    assert_untouched(rig, PHONES[2:])


def test_a_pause_between_batches_takes_effect_once_the_status_cache_expires(rig: Rig) -> None:
    rig.run(rig.batch(PHONES[:1]))  # the executor now holds RUNNING in its cache
    rig.store.transition(rig.campaign_id, Action.PAUSE)
    rig.clock.advance(1.0)

    summary = rig.run(rig.batch(PHONES[1:]))

    assert summary.outcome is BatchOutcome.NOT_RUNNING
    assert len(rig.sender.sent) == 1
    assert_untouched(rig, PHONES[1:])


def test_a_pause_inside_the_status_cache_ttl_lets_at_most_one_more_send_through(rig: Rig) -> None:
    rig.run(rig.batch(PHONES[:1]))
    rig.store.transition(rig.campaign_id, Action.PAUSE)

    summary = rig.run(rig.batch(PHONES[1:]))  # no time has passed: the cache says RUNNING

    assert summary.outcome is BatchOutcome.NOT_RUNNING
    assert len(rig.sender.sent) == 2
    assert_untouched(rig, PHONES[2:])


def test_a_stop_request_leaves_the_remaining_recipients_pending(rig: Rig) -> None:
    stop = threading.Event()

    def stop_after_first(message: TemplateMessage) -> Outcome:
        stop.set()
        return SendAccepted(f"wamid.{message.to}", "accepted")

    rig.answer_with(stop_after_first)

    summary = rig.run(stop=stop)

    assert summary.outcome is BatchOutcome.RELEASED
    assert not summary.outcome.deletes_message
    assert rig.recipient(PHONES[0]).status is RecipientStatus.SENT
    assert_untouched(rig, PHONES[1:])
    assert summary.released == 4
    assert rig.metric("campaign_batches_processed_total", outcome="released") == 1


def test_a_stop_during_a_retry_backoff_releases_the_recipient_and_refunds_its_unit(
    rig: Rig,
) -> None:
    stop = threading.Event()

    def stop_with_a_transient_error(message: TemplateMessage) -> Outcome:
        stop.set()
        return meta_error(131000)

    rig.answer_with(stop_with_a_transient_error)

    summary = rig.run(stop=stop)

    assert summary.outcome is BatchOutcome.RELEASED
    recipient = rig.recipient(PHONES[0])
    assert recipient.status is RecipientStatus.PENDING
    assert recipient.attempts == 1  # that request was made and answered
    assert recipient.lease_owner is None
    assert rig.guard.refunds == 1
    assert rig.guard.usage(rig.clock.now()).used == 0
    assert_untouched(rig, PHONES[1:])
    assert summary.released == 5
    assert summary.outcomes == dict.fromkeys(PHONES, RecipientOutcome.RELEASED)


def test_a_pacing_wait_cut_short_refunds_both_the_attempt_and_the_unit(rig: Rig) -> None:
    rig.limiter = RecordingLimiter(refuse=True)

    summary = rig.run()

    assert summary.outcome is BatchOutcome.RELEASED
    assert rig.sender.sent == []
    assert rig.guard.refunds == 1
    assert_untouched(rig, PHONES)
    assert summary.released == 5


# -- leases and other consumers -------------------------------------------------------------


def hold(rig: Rig, phone: str, *, owner: str, lease_until: float) -> None:
    key = (rig.campaign_id, phone)
    rig.store.recipients[key] = replace(
        rig.store.recipients[key],
        status=RecipientStatus.SENDING,
        attempts=1,
        lease_owner=owner,
        lease_until=lease_until,
    )


def test_a_recipient_left_sending_under_an_expired_lease_becomes_unknown(rig: Rig) -> None:
    hold(rig, PHONES[0], owner="dead-consumer", lease_until=rig.clock.now() - 1)

    summary = rig.run(rig.batch(PHONES[:2]))

    assert rig.sender.requests_for(PHONES[0]) == 0
    assert rig.recipient(PHONES[0]).status is RecipientStatus.UNKNOWN
    assert summary.outcomes[PHONES[0]] is RecipientOutcome.SKIPPED
    assert rig.campaign().unknown_count == 1
    assert rig.metric("campaign_messages_unknown_total") == 1
    assert rig.recipient(PHONES[1]).status is RecipientStatus.SENT


def test_a_recipient_sending_under_a_live_lease_is_left_to_its_owner(rig: Rig) -> None:
    hold(rig, PHONES[0], owner="other-consumer", lease_until=rig.clock.now() + 30)

    summary = rig.run(rig.batch(PHONES[:2]))

    assert summary.outcome is BatchOutcome.COMPLETED
    assert summary.outcomes[PHONES[0]] is RecipientOutcome.SKIPPED
    recipient = rig.recipient(PHONES[0])
    assert (recipient.status, recipient.lease_owner) == (RecipientStatus.SENDING, "other-consumer")
    assert rig.sender.requests_for(PHONES[0]) == 0
    assert rig.campaign().unknown_count == 0


def test_a_lease_lost_during_a_backoff_leaves_the_recipient_to_its_new_state(rig: Rig) -> None:
    phone = PHONES[0]

    def lose_the_lease(message: TemplateMessage) -> Outcome:
        rig.clock.advance(LEASE_S + 1)  # a reconcile finds the lease expired
        assert rig.store.expire_lease(rig.recipient(phone), rig.clock.now())
        return meta_error(131000)

    rig.answer_with(lose_the_lease)

    summary = rig.run(rig.batch([phone]))

    assert summary.outcomes[phone] is RecipientOutcome.SKIPPED
    assert rig.sender.requests_for(phone) == 1
    assert rig.recipient(phone).status is RecipientStatus.UNKNOWN
    assert rig.guard.refunds == 1


def test_a_send_accepted_after_its_lease_expired_resolves_the_unknown(rig: Rig) -> None:
    phone = PHONES[0]

    def accept_late(message: TemplateMessage) -> Outcome:
        rig.clock.advance(LEASE_S + 1)
        assert rig.store.expire_lease(rig.recipient(phone), rig.clock.now())
        rig.store.add_counts(rig.campaign_id, unknown=1)  # as the reconciler counts it
        return SendAccepted("wamid.late", "accepted")

    rig.answer_with(accept_late)

    rig.run(rig.batch([phone]))

    recipient = rig.recipient(phone)
    assert (recipient.status, recipient.message_id) == (RecipientStatus.SENT, "wamid.late")
    campaign = rig.campaign()
    assert (campaign.sent_count, campaign.unknown_count) == (1, 0)


def test_a_batch_for_an_unknown_campaign_is_poison(rig: Rig) -> None:
    summary = rig.run(new_batch(new_campaign_id(), PHONES))

    assert summary.outcome is BatchOutcome.POISON
    assert not summary.outcome.deletes_message
    assert rig.sender.sent == []
    assert rig.metric("campaign_batches_processed_total", outcome="poison") == 1


def test_a_store_failure_mid_batch_ends_it_with_an_error_for_redelivery() -> None:
    campaign_id, store = running_store(PHONES, FailingStore(PHONES[1]))
    rig = Rig(store=store, campaign_id=campaign_id)

    summary = rig.run()

    assert summary.outcome is BatchOutcome.ERROR
    assert not summary.outcome.deletes_message
    assert rig.recipient(PHONES[0]).status is RecipientStatus.SENT
    assert [m.to for m in rig.sender.sent] == PHONES[:2]
    assert_untouched(rig, PHONES[2:])
    assert rig.metric("campaign_batches_processed_total", outcome="error") == 1


class UnavailableGuard(MemoryCapGuard):
    """The cap guard's table cannot be reached (or its item kept conflicting)."""

    def reserve(self, now_s: float) -> Reservation | None:
        raise StoreUnavailable("cap reservation kept conflicting; try again later")


def test_a_cap_guard_failure_gives_the_claimed_recipient_back(rig: Rig) -> None:
    rig.guard = UnavailableGuard(cap=100)

    summary = rig.run()

    assert summary.outcome is BatchOutcome.ERROR
    assert rig.sender.sent == []
    assert_untouched(rig, PHONES)  # not left SENDING, to turn UNKNOWN when its lease runs out


def test_the_campaign_is_not_completed_while_a_recipient_is_open_whatever_the_counters_say(
    rig: Rig,
) -> None:
    rig.store.add_counts(rig.campaign_id, sent=1)  # an ADD applied twice by a retry

    summary = rig.run(rig.batch(PHONES[:4]))

    assert not summary.completed_campaign
    assert rig.campaign().pending_count == 0
    assert rig.campaign().status is CampaignStatus.RUNNING
    assert rig.recipient(PHONES[4]).status is RecipientStatus.PENDING
    assert Action.COMPLETE not in rig.store.transitions


@pytest.fixture(autouse=True)
def _no_real_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every wait goes through the ManualClock: a real sleep here would be a bug."""

    def refuse(seconds: float) -> None:
        raise AssertionError(f"time.sleep({seconds}) called in an executor test")

    monkeypatch.setattr("time.sleep", refuse)
