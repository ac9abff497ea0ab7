"""The per-batch executor: decides what happens to each recipient of one batch message.

It makes no boto3 or HTTP calls of its own; its collaborators are passed in. Once per batch,
before the first send, it reads which of the batch's numbers are on the suppression list (one
read, not one per recipient). Then for each recipient, in this order, and nothing sent before
its guard passed: the campaign must still be RUNNING; claim it (PENDING → SENDING); a
suppressed number is committed FAILED (``SUPPRESSED``: no unit reserved, no request to Meta);
reserve one unit of the cap; send (paced); commit the outcome; count it. The order is chosen
so a crash between two writes errs on the safe side (see docs/reliability.md). The writes of
each outcome are in ``commit.py``. Right before every request, first or retry, ``preflight.py``
checks the campaign is still RUNNING and the claim still has a send's worth of lease (renewed
if not); otherwise the request is not made.

The suppression check is per batch: a number suppressed after the batch's read (an opt-out
webhook applied while the batch is sending, at most one batch of ``MAX_BATCH_SIZE`` numbers
paced at the send rate) is still sent to in that batch; every later batch skips it.
"""

from __future__ import annotations

import contextlib
import random
import threading
from dataclasses import dataclass
from typing import Any, NoReturn

from campaigns.domain.errors import (
    AmbiguousSend,
    CampaignHalted,
    PairRateLimited,
    RecipientRejected,
    RetryableSendError,
    StoreUnavailable,
    ThrottledSendError,
)
from campaigns.domain.message import BatchMessage
from campaigns.domain.models import (
    Campaign,
    CampaignStatus,
    Claim,
    PauseReason,
    Recipient,
    SendAccepted,
    TemplateMessage,
)
from campaigns.engine.breaker import SendBreaker
from campaigns.engine.cache import CampaignCache
from campaigns.engine.commit import Committer
from campaigns.engine.completion import complete_after_batch
from campaigns.engine.metrics import EngineMetrics
from campaigns.engine.outcomes import BatchOutcome, BatchSummary, RecipientOutcome
from campaigns.engine.preflight import DEFAULT_SEND_BUDGET_S, Preflight
from campaigns.engine.retry import RetryPolicy
from campaigns.logging import get_logger
from campaigns.ports import CapGuard, Clock, RateLimiter, Reservation, Sender, Store

MAX_INLINE_HOLD_S = 2.0  # a longer send-storm hold defers the batch instead of waiting


class _Stop(Exception):
    """Internal: end the batch with this outcome."""

    def __init__(self, outcome: BatchOutcome) -> None:
        super().__init__(outcome.value)
        self.outcome = outcome


# What one request to the Cloud API came to: accepted, or the error that says what to do.
_SendResult = SendAccepted | RetryableSendError | RecipientRejected | CampaignHalted | AmbiguousSend


@dataclass(frozen=True)
class _InFlight:
    """One claimed recipient being sent to: what every outcome handler needs besides the claim
    (which changes with each attempt)."""

    phone: str
    message: TemplateMessage
    reservation: Reservation
    summary: BatchSummary
    stop: threading.Event
    log: Any  # bound to the campaign and the (masked) phone


def _template_message(campaign: Campaign, recipient: Recipient) -> TemplateMessage:
    return TemplateMessage(
        to=recipient.phone,
        template_name=campaign.template_name,
        language=campaign.template_language,
        params=recipient.params,
        named_params=campaign.parameter_format == "NAMED",
        callback_data=f"{campaign.campaign_id}:{recipient.phone}",
    )


class BatchExecutor:
    def __init__(
        self,
        *,
        store: Store,
        guard: CapGuard,
        sender: Sender,
        limiter: RateLimiter,
        clock: Clock,
        metrics: EngineMetrics,
        owner: str,
        lease_s: float,
        policy: RetryPolicy | None = None,
        cache: CampaignCache | None = None,
        rng: random.Random | None = None,
        breaker: SendBreaker | None = None,
        send_budget_s: float = DEFAULT_SEND_BUDGET_S,
    ) -> None:
        self._store = store
        self._guard = guard
        self._sender = sender
        self._limiter = limiter
        self._clock = clock
        self._metrics = metrics
        self._owner = owner
        self._lease_s = lease_s
        self._policy = policy or RetryPolicy()
        self._cache = cache or CampaignCache(store, clock)
        self._rng = rng or random.Random()
        self._breaker = breaker
        self._log = get_logger(owner=owner)
        self._commit = Committer(
            store=store, guard=guard, clock=clock, metrics=metrics, cache=self._cache, log=self._log
        )
        self._preflight = Preflight(
            store=store,
            cache=self._cache,
            clock=clock,
            lease_s=lease_s,
            send_budget_s=send_budget_s,
        )
        self._request_started_s = 0.0  # monotonic: when the last request began

    def run(self, message: BatchMessage, stop: threading.Event | None = None) -> BatchSummary:
        stop = stop or threading.Event()
        summary = BatchSummary(campaign_id=message.campaign_id, batch_id=message.batch_id)
        log = self._log.bind(campaign_id=message.campaign_id, batch_id=message.batch_id)
        try:
            suppressed = self._store.find_suppressed(message.phones)
            for phone in message.phones:
                if stop.is_set():
                    raise _Stop(BatchOutcome.RELEASED)
                self._one(message.campaign_id, phone, summary, stop, phone in suppressed)
        except _Stop as stopped:
            summary.outcome = stopped.outcome
            if stopped.outcome in (BatchOutcome.RELEASED, BatchOutcome.DEFERRED):
                for rest in message.phones:
                    if rest not in summary.outcomes:
                        summary.record(rest, RecipientOutcome.RELEASED)
        except StoreUnavailable as exc:
            log.warning("batch.store_unavailable", error=str(exc))
            summary.outcome = BatchOutcome.ERROR
        else:
            self._complete_after_batch(message.campaign_id, summary, log)
        self._metrics.batches.labels(outcome=summary.outcome.value).inc()
        return summary

    # -- one recipient -------------------------------------------------------------------

    def _one(
        self,
        campaign_id: str,
        phone: str,
        summary: BatchSummary,
        stop: threading.Event,
        suppressed: bool,
    ) -> None:
        campaign = self._cache.get(campaign_id)
        if campaign is None:
            raise _Stop(BatchOutcome.POISON)
        if campaign.status is not CampaignStatus.RUNNING:
            raise _Stop(BatchOutcome.NOT_RUNNING)
        now = self._clock.now()
        result = self._store.claim(campaign_id, phone, self._owner, now + self._lease_s)
        if result.claim is None:
            self._not_claimed(campaign_id, phone, result.current, summary)
            return
        claim = result.claim
        if suppressed:  # opted out after the import: nobody is silently dropped
            self._commit.suppressed(claim, summary)
            return
        try:
            reservation = self._guard.reserve(self._clock.now())
        except StoreUnavailable:
            # Nothing was sent and no unit charged: give the recipient back rather than leave
            # it SENDING to turn UNKNOWN (never resent) when its lease runs out.
            with contextlib.suppress(StoreUnavailable):
                self._store.release(claim, refund_attempt=True)
            raise
        if reservation is None:
            self._store.release(claim, refund_attempt=True)
            summary.record(phone, RecipientOutcome.RELEASED)
            usage = self._guard.usage(self._clock.now())
            self._metrics.cap_used.set(usage.used)
            self._commit.pause(
                campaign_id,
                PauseReason.DAILY_LIMIT,
                f"Daily limit reached: {usage.used}/{usage.limit} conversations",
                summary,
            )
            raise _Stop(BatchOutcome.PAUSED)
        self._metrics.cap_used.set(reservation.used)
        self._metrics.cap_limit.set(reservation.limit)
        self._send(campaign, claim, reservation, summary, stop)

    def _not_claimed(
        self, campaign_id: str, phone: str, current: Recipient | None, summary: BatchSummary
    ) -> None:
        if current is None:
            self._log.warning("recipient.missing", campaign_id=campaign_id, phone=phone)
        elif current.lease_expired(now_s := self._clock.now()) and self._store.expire_lease(
            current, now_s
        ):
            # Claimed by a process that died mid-send: it may or may not have been sent.
            self._metrics.unknown.inc()
            self._log.warning("recipient.lease_expired", campaign_id=campaign_id, phone=phone)
            self._commit.count(campaign_id, unknown=1)
        summary.record(phone, RecipientOutcome.SKIPPED)

    # -- the send loop: pace, send, hand the answer to its handler ------------------------

    def _send(
        self,
        campaign: Campaign,
        claim: Claim,
        reservation: Reservation,
        summary: BatchSummary,
        stop: threading.Event,
    ) -> None:
        phone = claim.recipient.phone
        flight = _InFlight(
            phone=phone,
            message=_template_message(campaign, claim.recipient),
            reservation=reservation,
            summary=summary,
            stop=stop,
            log=self._log.bind(campaign_id=campaign.campaign_id, phone=phone),
        )
        attempt: Claim | None = claim
        while attempt is not None:
            self._pace(attempt, flight)
            attempt = self._cleared(attempt, flight)
            if attempt is None:
                return
            result = self._try_send(flight.message)
            attempt = self._handle(result, attempt, flight)

    def _pace(self, claim: Claim, flight: _InFlight) -> None:
        """Wait out a send storm and the rate limiter; give the recipient back if stopped."""
        self._hold_for_storm(claim, flight)
        if not self._limiter.acquire(flight.stop):
            self._give_back(claim, flight, refund_attempt=True)
            raise _Stop(BatchOutcome.RELEASED)

    def _cleared(self, claim: Claim, flight: _InFlight) -> Claim | None:
        """Right before the request: the claim to send with (its lease renewed if a send's
        worth was not left), or None — the lease was lost, or (raised) the campaign stopped."""
        try:
            cleared = self._preflight.check(claim)
        except StoreUnavailable:  # the renewal failed: nothing was sent, give it back
            with contextlib.suppress(StoreUnavailable):
                self._give_back(claim, flight, refund_attempt=True)
            raise
        if cleared.stopped:  # paused or cancelled since: the request is never made
            flight.log.info("recipient.stopped_before_send", attempt=claim.recipient.attempts)
            self._give_back(claim, flight, refund_attempt=True)
            raise _Stop(BatchOutcome.NOT_RUNNING)
        if cleared.claim is None:  # expired (and perhaps requeued) while we waited
            flight.log.warning("recipient.lease_lost", before="request")
            self._commit.lease_lost(flight.phone, flight.reservation, flight.summary)
        elif cleared.renewed:
            flight.log.info("recipient.lease_renewed", lease_until=cleared.claim.lease_until)
        return cleared.claim

    def _try_send(self, message: TemplateMessage) -> _SendResult:
        """The request, timed; Meta's answer or the error that says what to do with it."""
        started = self._clock.monotonic()
        self._request_started_s = started
        result: _SendResult
        try:
            result = self._sender.send(message)
        except (RetryableSendError, RecipientRejected, CampaignHalted, AmbiguousSend) as exc:
            result = exc
        self._metrics.send_duration.observe(self._clock.monotonic() - started)
        return result

    def _handle(self, result: _SendResult, claim: Claim, flight: _InFlight) -> Claim | None:
        """None when the recipient is done; otherwise the claim to send again with."""
        match result:
            case RetryableSendError():
                return self._retryable(result, claim, flight)
            case RecipientRejected():
                self._rejected(result, claim, flight)
            case CampaignHalted():
                self._halted(result, claim, flight)
            case AmbiguousSend():
                self._ambiguous(result, claim, flight)
            case SendAccepted():
                self._accepted(result, claim, flight)
        return None

    # -- one handler per answer ----------------------------------------------------------

    def _retryable(self, exc: RetryableSendError, claim: Claim, flight: _InFlight) -> Claim | None:
        if not isinstance(exc, ThrottledSendError | PairRateLimited):
            self._storm(failed=True)
        if isinstance(exc, ThrottledSendError):
            self._limiter.throttled(exc.retry_after_s)
        tries = claim.recipient.tries
        if tries >= self._policy.max_send_attempts:
            flight.log.warning("recipient.retries_exhausted", code=exc.code, attempts=tries)
            self._commit.failed(claim, flight.reservation, exc.code, flight.summary)
            return None
        self._metrics.retries.labels(error_code=exc.code).inc()
        delay_s = self._policy.delay_s(exc, tries, self._rng)
        # Long enough that the status the retry is checked against is read after this request.
        since_request_s = self._clock.monotonic() - self._request_started_s
        delay_s = max(delay_s, self._preflight.min_backoff_s(since_request_s))
        flight.log.info("recipient.retry", code=exc.code, attempt=tries, delay_s=delay_s)
        if not self._clock.sleep(delay_s, flight.stop):
            self._give_back(claim, flight, refund_attempt=False)
            raise _Stop(BatchOutcome.RELEASED)
        return self._next_attempt(claim, flight)

    def _next_attempt(self, claim: Claim, flight: _InFlight) -> Claim | None:
        """Count one more attempt on a fresh lease; None if the lease was taken from us."""
        try:
            extended = self._store.record_attempt(claim, self._clock.now() + self._lease_s)
        except StoreUnavailable:
            # The last request was answered with an error, so nothing was accepted:
            # giving the recipient back is safe (and better than UNKNOWN later).
            with contextlib.suppress(StoreUnavailable):
                self._give_back(claim, flight, refund_attempt=False)
            raise
        if extended is None:  # the lease was taken from us: leave it to its new state
            flight.log.warning("recipient.lease_lost")
            self._commit.lease_lost(flight.phone, flight.reservation, flight.summary)
        return extended

    def _rejected(self, exc: RecipientRejected, claim: Claim, flight: _InFlight) -> None:
        self._storm(failed=False)
        if not exc.classified:
            flight.log.warning("recipient.unclassified_error", code=exc.code, detail=exc.detail)
        if exc.suppress:
            self._store.suppress(flight.phone, exc.code)
        self._commit.failed(claim, flight.reservation, exc.code, flight.summary)

    def _halted(self, exc: CampaignHalted, claim: Claim, flight: _InFlight) -> NoReturn:
        self._storm(failed=False)
        # One expired token must not burn the whole list: the recipient stays PENDING.
        self._commit.halted(claim, flight.reservation, flight.summary)
        flight.log.error("campaign.halted", code=exc.code, reason=exc.reason)
        self._commit.pause(
            claim.recipient.campaign_id, PauseReason(exc.reason), exc.detail, flight.summary
        )
        raise _Stop(BatchOutcome.PAUSED)

    def _ambiguous(self, exc: AmbiguousSend, claim: Claim, flight: _InFlight) -> None:
        self._storm(failed=True)
        # Meta may have accepted it: keep the unit, never resend automatically.
        flight.log.warning("recipient.unknown", code=exc.code, detail=exc.detail)
        self._commit.unknown(claim, exc.code, flight.summary)

    def _accepted(self, accepted: SendAccepted, claim: Claim, flight: _InFlight) -> None:
        self._metrics.sent.inc()
        self._storm(failed=False)
        self._commit.sent(claim, accepted, flight.summary, flight.log)

    def _give_back(self, claim: Claim, flight: _InFlight, *, refund_attempt: bool) -> None:
        self._commit.give_back(
            claim, flight.reservation, flight.summary, refund_attempt=refund_attempt
        )

    # -- storms ---------------------------------------------------------------------------

    def _storm(self, *, failed: bool) -> None:
        if self._breaker is None:
            return
        if failed:
            self._breaker.failure()
        else:
            self._breaker.success()

    def _hold_for_storm(self, claim: Claim, flight: _InFlight) -> None:
        """While Meta keeps failing, hold off: a short hold waits here; a long one gives the
        recipient back (its retry budget untouched) and defers the rest of the batch."""
        if self._breaker is None:
            return
        while (hold_s := self._breaker.wait_s()) > 0:
            if hold_s > MAX_INLINE_HOLD_S:
                self._give_back(claim, flight, refund_attempt=True)
                flight.summary.defer_s = hold_s
                self._log.warning("batch.deferred", reason="send storm", defer_s=round(hold_s, 1))
                raise _Stop(BatchOutcome.DEFERRED)
            if not self._clock.sleep(hold_s, flight.stop):
                self._give_back(claim, flight, refund_attempt=True)
                raise _Stop(BatchOutcome.RELEASED)

    # -- the campaign ----------------------------------------------------------------------

    def _complete_after_batch(self, campaign_id: str, summary: BatchSummary, log: Any) -> None:
        try:
            completed = complete_after_batch(self._store, self._cache, campaign_id)
        except StoreUnavailable as exc:  # the batch itself is done; reconcile completes later
            log.warning("batch.completion_check_failed", error=str(exc))
            return
        if completed is not None:
            summary.completed_campaign = True
            self._log.info("campaign.completed", campaign_id=campaign_id)
