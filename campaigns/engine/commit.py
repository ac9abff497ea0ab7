"""Writing the outcome the executor decided for one recipient, and what it does to the campaign.

The recipient's item is written first, then what follows from it: the metrics, the campaign's
counters (the campaign they return is remembered in the shared cache), its unit of the cap
refunded (or kept), the batch summary last. The executor decides; this writes.

A refund comes after the writes that must not be skipped, and a refund that fails (DynamoDB
unavailable through the guard's retries) is a metric and one warning line, never an error:
the unit stays charged, the safe direction for the cap, and reconcile never needs to repair
a counter or a pause for it.
"""

from __future__ import annotations

import uuid
from typing import Any

from campaigns.domain.errors import InvalidTransition, StoreUnavailable
from campaigns.domain.models import (
    HELD_FOR_QUALITY,
    SUPPRESSED_CODE,
    Action,
    Claim,
    PauseReason,
    SendAccepted,
)
from campaigns.domain.phones import mask
from campaigns.engine.cache import CampaignCache
from campaigns.engine.metrics import EngineMetrics
from campaigns.engine.outcomes import BatchSummary, RecipientOutcome
from campaigns.ports import CapGuard, Clock, Reservation, Store


class Committer:
    """One per executor: its counter ADDs carry the executor's own idempotency slot."""

    def __init__(
        self,
        *,
        store: Store,
        guard: CapGuard,
        clock: Clock,
        metrics: EngineMetrics,
        cache: CampaignCache,
        log: Any,
    ) -> None:
        self._store = store
        self._guard = guard
        self._clock = clock
        self._metrics = metrics
        self._cache = cache
        self._log = log
        self._slot = uuid.uuid4().hex[:12]  # this executor's idempotency slot for counter ADDs

    def sent(self, claim: Claim, accepted: SendAccepted, summary: BatchSummary, log: Any) -> None:
        held = accepted.message_status == HELD_FOR_QUALITY
        message_id = accepted.message_id
        result = self._store.commit_sent(claim, message_id, self._clock.now(), held=held)
        if held:
            self._metrics.held.inc()
        if result.committed:
            unknown = -1 if result.was_unknown else 0
            self.count(
                claim.recipient.campaign_id,
                sent=1,
                unknown=unknown,
                held=int(result.marked_held),
            )
        else:
            log.warning("recipient.commit_lost", message_id=message_id)
        summary.record(claim.recipient.phone, RecipientOutcome.SENT)

    def failed(
        self, claim: Claim, reservation: Reservation, code: str, summary: BatchSummary
    ) -> None:
        result = self._store.commit_failed(claim, code, self._clock.now())
        self._metrics.failed.labels(error_code=code).inc()
        if result.committed:
            unknown = -1 if result.was_unknown else 0
            self.count(claim.recipient.campaign_id, failed=1, unknown=unknown)
            self._log.warning(
                "recipient.failed",
                campaign_id=claim.recipient.campaign_id,
                phone=mask(claim.recipient.phone),
                error_code=code,
            )
        # Meta answered with a rejection, so nobody was reached: refund the unit.
        self.refund(reservation, claim.recipient.campaign_id)
        summary.record(claim.recipient.phone, RecipientOutcome.FAILED)

    def suppressed(self, claim: Claim, summary: BatchSummary) -> None:
        """The number opted out after it was imported: FAILED without a request to Meta and
        without a unit of the cap (none was reserved), counted in failedCount."""
        result = self._store.commit_failed(claim, SUPPRESSED_CODE, self._clock.now())
        self._metrics.failed.labels(error_code=SUPPRESSED_CODE).inc()
        if result.committed:
            unknown = -1 if result.was_unknown else 0
            self.count(claim.recipient.campaign_id, failed=1, unknown=unknown)
            self._log.info(
                "recipient.suppressed",
                campaign_id=claim.recipient.campaign_id,
                phone=mask(claim.recipient.phone),
                error_code=SUPPRESSED_CODE,
            )
        summary.record(claim.recipient.phone, RecipientOutcome.FAILED)

    def unknown(self, claim: Claim, code: str, summary: BatchSummary) -> None:
        """Meta may have accepted it: the unit stays charged and it is never resent."""
        result = self._store.commit_unknown(claim, code, self._clock.now())
        if result.committed:
            self._metrics.unknown.inc()
            self.count(claim.recipient.campaign_id, unknown=1)
        summary.record(claim.recipient.phone, RecipientOutcome.UNKNOWN)

    def give_back(
        self,
        claim: Claim,
        reservation: Reservation,
        summary: BatchSummary,
        *,
        refund_attempt: bool,
    ) -> None:
        """Back to PENDING, its unit of the cap refunded."""
        self._store.release(claim, refund_attempt=refund_attempt)
        self.refund(reservation, claim.recipient.campaign_id)
        summary.record(claim.recipient.phone, RecipientOutcome.RELEASED)

    def halted(self, claim: Claim, reservation: Reservation, summary: BatchSummary) -> None:
        """A campaign-level answer, not this number's fault: back to PENDING, the attempt kept
        and marked as halted, the unit refunded. The pause the caller writes next never
        depends on the refund: a failed refund is only logged (``refund``)."""
        self._store.release(claim, refund_attempt=False, halted=True)
        self.refund(reservation, claim.recipient.campaign_id)
        summary.record(claim.recipient.phone, RecipientOutcome.RELEASED)

    def lease_lost(self, phone: str, reservation: Reservation, summary: BatchSummary) -> None:
        """Another consumer holds the recipient now: leave it to its new state."""
        self.refund(reservation, None)
        summary.record(phone, RecipientOutcome.SKIPPED)

    def refund(self, reservation: Reservation, campaign_id: str | None) -> None:
        """Give the unit back; if the store stays unavailable, keep it charged (never more
        than the cap) and say so once, without failing what comes after."""
        try:
            self._guard.refund(reservation)
        except StoreUnavailable as exc:
            self._metrics.refund_failures.inc()
            self._log.warning(
                "cap.refund_failed",
                campaign_id=campaign_id,
                hour=reservation.hour,
                error=str(exc),
            )

    def count(
        self,
        campaign_id: str,
        *,
        sent: int = 0,
        failed: int = 0,
        unknown: int = 0,
        held: int = 0,
    ) -> None:
        campaign = self._store.add_counts(
            campaign_id, sent=sent, failed=failed, unknown=unknown, held=held, slot=self._slot
        )
        if campaign is not None:
            self._cache.put(campaign_id, campaign)

    def pause(
        self, campaign_id: str, reason: PauseReason, text: str, summary: BatchSummary
    ) -> None:
        summary.pause_reason = text
        try:
            campaign = self._store.transition(campaign_id, Action.PAUSE, pause_reason=text)
        except InvalidTransition:
            return  # already paused (by a racing consumer) or cancelled
        self._cache.put(campaign_id, campaign)
        self._metrics.pauses.labels(reason=reason.value).inc()
        self._log.warning(
            "campaign.paused", campaign_id=campaign_id, reason=reason.value, text=text
        )
