"""The in-memory store: ``campaigns.ports.Store`` (the executor's), ``OperatorStore`` (the
operator core's) and ``DeliveryStore`` (the status webhooks', in ``campaigns.memory.deliveries``),
with the DynamoDB store's semantics; tests/contract holds them together."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

from campaigns.domain.clock import SystemClock, iso_utc
from campaigns.domain.errors import CampaignNotFound, ImportLocked, InvalidInput, InvalidTransition
from campaigns.domain.models import (
    IMPORT_LOCK_S,
    LEASE_EXPIRED,
    OPERATOR_PAUSE_REASON,
    POPULATE_STATUSES,
    TRANSITIONS,
    Action,
    Campaign,
    CampaignStatus,
    Claim,
    DeliveryStatus,
    Recipient,
    RecipientStatus,
    StatusCounts,
    TemplateParam,
    new_lease_owner,
)
from campaigns.domain.tallies import is_tally
from campaigns.memory.deliveries import MemoryDeliveries
from campaigns.ports import ClaimResult, Clock, CommitResult

STAMPS = {
    Action.START: "started_at",
    Action.PAUSE: "paused_at",
    Action.CANCEL: "cancelled_at",
    Action.COMPLETE: "completed_at",
}
COUNTERS = {
    "sentCount": "sent_count",
    "failedCount": "failed_count",
    "unknownCount": "unknown_count",
    "totalRecipients": "total_recipients",
    "deliveredCount": "delivered_count",
    "readCount": "read_count",
    "deliveryFailedCount": "delivery_failed_count",
    "heldCount": "held_count",
}


class MemoryStore(MemoryDeliveries):
    """One lock stands in for DynamoDB's item atomicity. ``campaigns``, ``recipients``,
    ``suppressed`` and ``user_links`` are plain dicts a test may read (or arrange) directly."""

    def __init__(self, clock: Clock | None = None, counter_shards: int = 1) -> None:
        self._lock = threading.RLock()
        self._clock: Clock = clock or SystemClock()
        self._shards = counter_shards
        self.campaigns: dict[str, Campaign] = {}
        self.recipients: dict[tuple[str, str], Recipient] = {}
        self.suppressed: dict[str, set[str]] = {}  # phone -> the reasons it is suppressed for
        self.user_links: dict[str, str] = {}  # BSUID -> phone
        self.import_locks: dict[str, tuple[str, int]] = {}  # campaign -> (token, until_s)
        self.count_tokens: dict[str, dict[str, str]] = {}  # campaign -> slot -> "<s>:<hex>"
        self.requeue_holds: dict[str, int] = {}  # campaign -> until_s: completion held off
        self.writes = 0
        self._lost_answers = 0

    # -- setup helpers for tests ---------------------------------------------------------

    def add_campaign(self, campaign: Campaign) -> None:
        with self._lock:
            self.campaigns[campaign.campaign_id] = campaign

    def add_recipients(
        self, campaign_id: str, phones: list[str], params: tuple[TemplateParam, ...] = ()
    ) -> None:
        with self._lock:
            for phone in phones:
                key = (campaign_id, phone)
                if key not in self.recipients:
                    self.recipients[key] = Recipient(
                        campaign_id, phone, RecipientStatus.PENDING, params=params
                    )
            campaign = self.campaigns[campaign_id]
            total = sum(1 for c, _ in self.recipients if c == campaign_id)
            self.campaigns[campaign_id] = replace(campaign, total_recipients=total)

    def recipient(self, campaign_id: str, phone: str) -> Recipient:
        with self._lock:
            return self.recipients[(campaign_id, phone)]

    def import_lock(self, campaign_id: str) -> str | None:
        """The token of the import holding the campaign (expired or not), if any."""
        with self._lock:
            held = self.import_locks.get(campaign_id)
            return held[0] if held else None

    def lose_next_answer(self) -> None:
        """The next counter ADD lands but its answer is lost, so it is retried as sent (the
        case DynamoDB's idempotency slot exists for)."""
        with self._lock:
            self._lost_answers += 1

    # -- campaigns -----------------------------------------------------------------------

    def create_campaign(self, campaign: Campaign) -> Campaign:
        with self._lock:
            if campaign.campaign_id in self.campaigns:
                raise InvalidInput(f"Campaign already exists: {campaign.campaign_id}")
            self.campaigns[campaign.campaign_id] = Campaign(
                campaign_id=campaign.campaign_id,
                name=campaign.name,
                template_name=campaign.template_name,
                template_language=campaign.template_language,
                status=campaign.status,
                parameter_format=campaign.parameter_format,
                created_at=campaign.created_at,
            )
            self.writes += 1
            return campaign

    def get_campaign(self, campaign_id: str) -> Campaign | None:
        with self._lock:
            return self.campaigns.get(campaign_id)

    def require_campaign(self, campaign_id: str) -> Campaign:
        campaign = self.get_campaign(campaign_id)
        if campaign is None:
            raise CampaignNotFound(campaign_id)
        return campaign

    def list_campaigns(self) -> list[Campaign]:
        with self._lock:
            return sorted(self.campaigns.values(), key=lambda c: c.created_at or "")

    def transition(
        self,
        campaign_id: str,
        action: Action,
        *,
        pause_reason: str | None = None,
        generation: int | None = None,
    ) -> Campaign:
        with self._lock:
            campaign = self.campaigns.get(campaign_id)
            if campaign is None:
                raise CampaignNotFound(campaign_id)
            sources, target = TRANSITIONS[action]
            if campaign.status not in sources or not self._may_complete(
                campaign, action, generation
            ):
                raise InvalidTransition(campaign.status.value, action.value)
            held = self.import_locks.get(campaign_id)
            if (
                action in (Action.START, Action.RESUME)
                and held
                and held[1] >= int(self._clock.now())
            ):
                # Not while a populate is writing: its late recipients would never be enqueued.
                raise ImportLocked(
                    f"Campaign is being populated: cannot {action.value} until the import ends"
                )
            reason = None
            if action is Action.PAUSE:
                reason = pause_reason or OPERATOR_PAUSE_REASON
            elif action is Action.CANCEL:
                reason = campaign.pause_reason
            changes: dict[str, Any] = {"status": target, "pause_reason": reason}
            if action in (Action.START, Action.RESUME):
                changes["pending_generation"] = campaign.pending_generation + 1
            if action in STAMPS:
                changes[STAMPS[action]] = iso_utc(self._clock.now())
            updated = replace(campaign, **changes)
            self.campaigns[campaign_id] = updated
            self.writes += 1
            return updated

    def _may_complete(self, campaign: Campaign, action: Action, generation: int | None) -> bool:
        """As DynamoDB's COMPLETE condition: the generation read before the scan, no hold."""
        if action is not Action.COMPLETE or generation is None:
            return True
        hold = self.requeue_holds.get(campaign.campaign_id)
        held = hold is not None and not hold < int(self._clock.now())
        return campaign.pending_generation == generation and not held

    def begin_requeue(self, campaign_id: str, until_s: float) -> None:
        with self._lock:
            campaign = self.require_campaign(campaign_id)
            if campaign.status in (CampaignStatus.COMPLETED, CampaignStatus.CANCELLED):
                raise InvalidTransition(campaign.status.value, "requeue-unknown")
            self.requeue_holds[campaign_id] = int(until_s)
            self.writes += 1

    def end_requeue(self, campaign_id: str) -> None:
        with self._lock:
            campaign = self.require_campaign(campaign_id)
            self.requeue_holds.pop(campaign_id, None)
            self.campaigns[campaign_id] = replace(
                campaign, pending_generation=campaign.pending_generation + 1
            )
            self.writes += 1

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
        if not (sent or failed or unknown or held):
            return self.get_campaign(campaign_id)
        # With a slot, a fresh token goes with the ADD, and a write whose slot already holds
        # it is a retry of one that landed: it is recognised, not counted twice.
        token = f"{int(self._clock.now())}:{uuid.uuid4().hex[:12]}" if slot else None
        with self._lock:
            if campaign_id not in self.campaigns:
                return None
            deltas = (sent, failed, unknown, held)
            updated = self._add(campaign_id, deltas, slot=slot, token=token)
            if self._lost_answers:  # it landed, the answer was lost: the same write again
                self._lost_answers -= 1
                updated = self._add(campaign_id, deltas, slot=slot, token=token)
            return None if self._shards > 1 else updated

    def _add(
        self,
        campaign_id: str,
        deltas: tuple[int, int, int, int],
        *,
        slot: str | None,
        token: str | None,
    ) -> Campaign:
        campaign = self.campaigns[campaign_id]
        tokens = self.count_tokens.setdefault(campaign_id, {})
        if slot is not None and token is not None:
            if tokens.get(slot) == token:
                return campaign
            tokens[slot] = token
        sent, failed, unknown, held = deltas
        updated = replace(
            campaign,
            sent_count=campaign.sent_count + sent,
            failed_count=campaign.failed_count + failed,
            unknown_count=campaign.unknown_count + unknown,
            held_count=campaign.held_count + held,
        )
        self.campaigns[campaign_id] = updated
        self.writes += 1
        return updated

    def prune_count_tokens(self, campaign_id: str, older_than_s: float) -> int:
        with self._lock:
            tokens = self.count_tokens.get(campaign_id, {})
            cutoff = self._clock.now() - older_than_s
            stale = [slot for slot, token in tokens.items() if float(token.split(":")[0]) < cutoff]
            for slot in stale:
                del tokens[slot]
            return len(stale)

    def add_total(self, campaign_id: str, inserted: int) -> None:
        with self._lock:
            campaign = self.require_campaign(campaign_id)
            self.campaigns[campaign_id] = replace(
                campaign, total_recipients=campaign.total_recipients + inserted
            )
            self.writes += 1

    def set_counter(self, campaign_id: str, name: str, expected: int | None, value: int) -> bool:
        with self._lock:
            campaign = self.campaigns.get(campaign_id)
            if campaign is None:
                return False
            if is_tally(name):
                if campaign.tallies.get(name, 0) != (expected or 0):
                    return False
                tallies = {**campaign.tallies, name: value}
                tallies = {key: count for key, count in tallies.items() if count}
                self.campaigns[campaign_id] = replace(campaign, tallies=tallies)
                self.writes += 1
                return True
            if getattr(campaign, COUNTERS[name]) != (expected or 0):
                return False
            changes: dict[str, Any] = {COUNTERS[name]: value}
            self.campaigns[campaign_id] = replace(campaign, **changes)
            self.writes += 1
            return True

    def count_statuses(self, campaign_id: str) -> StatusCounts:
        with self._lock:
            counts: dict[RecipientStatus, int] = {}
            for (cid, _), recipient in self.recipients.items():
                if cid == campaign_id:
                    counts[recipient.status] = counts.get(recipient.status, 0) + 1
            return StatusCounts(counts)

    def iter_recipients(
        self, campaign_id: str, status: RecipientStatus | None = None, *, after: str | None = None
    ) -> Iterator[Recipient]:
        """In phone order, as DynamoDB's sort key returns them (a snapshot); with ``after``,
        only the phones that sort strictly after it."""
        with self._lock:
            found = sorted(
                (
                    r
                    for (cid, phone), r in self.recipients.items()
                    if cid == campaign_id and (after is None or phone > after)
                ),
                key=lambda r: r.phone,
            )
        return iter([r for r in found if status is None or r.status is status])

    def suppress(self, phone: str, reason: str) -> None:
        with self._lock:
            self.suppressed.setdefault(phone, set()).add(reason)
            self.writes += 1

    def find_suppressed(self, phones: Sequence[str]) -> set[str]:
        with self._lock:
            return {p for p in phones if p in self.suppressed}

    # -- the import lock -------------------------------------------------------------------

    def lock_import(self, campaign_id: str, token: str, now_s: float) -> None:
        with self._lock:
            campaign = self.require_campaign(campaign_id)
            held = self.import_locks.get(campaign_id)
            if campaign.status not in POPULATE_STATUSES:
                raise InvalidInput(
                    f"Campaign status is {campaign.status.value}: cannot populate "
                    "(only DRAFT or PAUSED campaigns take recipients)"
                )
            if held is not None and held[0] != token and held[1] >= int(now_s):
                raise ImportLocked(
                    "Another import is running for this campaign; try again when it ends"
                )
            self.import_locks[campaign_id] = (token, int(now_s + IMPORT_LOCK_S))
            self.writes += 1

    def unlock_import(self, campaign_id: str, token: str) -> None:
        with self._lock:
            held = self.import_locks.get(campaign_id)
            if held is not None and held[0] == token:
                del self.import_locks[campaign_id]

    # -- recipients: the hot path ----------------------------------------------------------

    def claim(self, campaign_id: str, phone: str, owner: str, lease_until: float) -> ClaimResult:
        """The lease owner written is a fresh ``<owner>#<token>``: one per claim."""
        token_owner = new_lease_owner(owner)
        with self._lock:
            current = self.recipients.get((campaign_id, phone))
            if current is None or current.status is not RecipientStatus.PENDING:
                return ClaimResult(claim=None, current=current)
            claimed = replace(
                current,
                status=RecipientStatus.SENDING,
                attempts=current.attempts + 1,
                lease_owner=token_owner,
                lease_until=lease_until,
            )
            self.recipients[(campaign_id, phone)] = claimed
            self.writes += 1
            if self._lost_answers:  # it landed, the answer was lost: the retry finds its own
                self._lost_answers -= 1
            return ClaimResult(claim=Claim(claimed, token_owner, lease_until))

    def _held(self, claim: Claim, *, or_unknown: bool = False) -> Recipient | None:
        current = self.recipients.get((claim.recipient.campaign_id, claim.recipient.phone))
        allowed = {RecipientStatus.SENDING} | ({RecipientStatus.UNKNOWN} if or_unknown else set())
        if current is None or current.lease_owner != claim.owner or current.status not in allowed:
            return None
        return current

    def record_attempt(self, claim: Claim, lease_until: float) -> Claim | None:
        """Conditional on the attempts the claim saw, so one request is never counted twice."""
        with self._lock:
            current = self._held(claim)
            if current is None or current.attempts != claim.recipient.attempts:
                if current is not None and current.lease_until == lease_until:
                    return Claim(current, claim.owner, lease_until)  # this very write landed
                return None
            updated = replace(current, attempts=current.attempts + 1, lease_until=lease_until)
            self.recipients[(current.campaign_id, current.phone)] = updated
            self.writes += 1
            return Claim(updated, claim.owner, lease_until)

    def renew(self, claim: Claim, lease_until: float) -> Claim | None:
        """Conditional on this very claim (owner and token), still SENDING."""
        with self._lock:
            current = self._held(claim)
            if current is None:
                return None
            updated = replace(current, lease_until=lease_until)
            self.recipients[(current.campaign_id, current.phone)] = updated
            self.writes += 1
            return Claim(updated, claim.owner, lease_until)

    def release(self, claim: Claim, *, refund_attempt: bool, halted: bool = False) -> bool:
        with self._lock:
            current = self._held(claim)
            if current is None:
                return False
            self.recipients[(current.campaign_id, current.phone)] = replace(
                current,
                status=RecipientStatus.PENDING,
                attempts=current.attempts - (1 if refund_attempt else 0),
                halted_attempts=current.halted_attempts + (1 if halted else 0),
                lease_owner=None,
                lease_until=None,
            )
            self.writes += 1
            return True

    def _commit(self, claim: Claim, *, from_unknown: bool = True, **changes: Any) -> CommitResult:
        """Conditional on our lease (SENDING, or UNKNOWN after it expired); the owner stays. The
        same outcome already in place is recognised as this commit having landed (whenever it
        finished: ``finished_at`` is not compared)."""
        with self._lock:
            current = self._held(claim, or_unknown=from_unknown)
            if current is None:
                now = self.recipients.get((claim.recipient.campaign_id, claim.recipient.phone))
                landed = (
                    now is not None
                    and now.lease_owner == claim.owner
                    and all(
                        getattr(now, name) == value
                        for name, value in changes.items()
                        if name != "finished_at"
                    )
                )
                return CommitResult(committed=landed)
            was_unknown = current.status is RecipientStatus.UNKNOWN
            self.recipients[(current.campaign_id, current.phone)] = replace(
                current, lease_until=None, **changes
            )
            self.writes += 1
            return CommitResult(committed=True, was_unknown=was_unknown)

    def commit_sent(
        self, claim: Claim, message_id: str, now_s: float, *, held: bool = False
    ) -> CommitResult:
        with self._lock:
            result = self._commit(
                claim, status=RecipientStatus.SENT, message_id=message_id, finished_at=now_s
            )
            key = (claim.recipient.campaign_id, claim.recipient.phone)
            current = self.recipients.get(key)
            if not (held and result.committed and current is not None):
                return result
            if current.delivery_status is None:  # no status webhook came first
                self.recipients[key] = replace(current, delivery_status=DeliveryStatus.HELD)
                return replace(result, marked_held=True)
            # A replay of a commit that landed: it was this commit that marked it HELD.
            return replace(result, marked_held=current.delivery_status is DeliveryStatus.HELD)

    def commit_failed(self, claim: Claim, error_code: str, now_s: float) -> CommitResult:
        return self._commit(
            claim, status=RecipientStatus.FAILED, error_code=error_code, finished_at=now_s
        )

    def commit_unknown(self, claim: Claim, reason: str, now_s: float) -> CommitResult:
        return self._commit(
            claim,
            status=RecipientStatus.UNKNOWN,
            unknown_reason=reason,
            finished_at=now_s,
            from_unknown=False,
        )

    def expire_lease(self, recipient: Recipient, now_s: float) -> bool:
        with self._lock:
            key = (recipient.campaign_id, recipient.phone)
            current = self.recipients.get(key)
            if (
                current is None
                or current.status is not RecipientStatus.SENDING
                or current.lease_owner != recipient.lease_owner  # the very claim that was read
                or current.lease_until is None
                or not current.lease_until < now_s  # as DynamoDB's ``leaseUntil < :now``
            ):
                return False
            self.recipients[key] = replace(
                current,
                status=RecipientStatus.UNKNOWN,
                unknown_reason=LEASE_EXPIRED,
                finished_at=now_s,
            )
            self.writes += 1
            return True

    def requeue_unknown(self, recipient: Recipient) -> bool:
        with self._lock:
            key = (recipient.campaign_id, recipient.phone)
            current = self.recipients.get(key)
            if current is None or current.status is not RecipientStatus.UNKNOWN:
                return False
            self.recipients[key] = replace(
                current, status=RecipientStatus.PENDING, lease_owner=None, finished_at=None
            )
            self.writes += 1
            return True
