"""In-memory adapters of every port, with the same semantics as the real ones.

Unit tests use these (fakes with lists you can assert on), not mocks of boto3.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from campaigns.domain.errors import CampaignNotFound, InvalidTransition
from campaigns.domain.models import (
    TRANSITIONS,
    Action,
    Campaign,
    Claim,
    Recipient,
    RecipientStatus,
    SendAccepted,
    StatusCounts,
    TemplateMessage,
    TemplateParam,
)
from campaigns.ports import CapUsage, ClaimResult, CommitResult, Reservation


class MemoryStore:
    """Implements ``campaigns.ports.Store``; one lock stands in for DynamoDB's item atomicity."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.campaigns: dict[str, Campaign] = {}
        self.recipients: dict[tuple[str, str], Recipient] = {}
        self.suppressed: dict[str, str] = {}
        self.writes = 0

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

    # -- CampaignStore -------------------------------------------------------------------

    def get_campaign(self, campaign_id: str) -> Campaign | None:
        with self._lock:
            return self.campaigns.get(campaign_id)

    def transition(
        self, campaign_id: str, action: Action, *, pause_reason: str | None = None
    ) -> Campaign:
        with self._lock:
            campaign = self.campaigns.get(campaign_id)
            if campaign is None:
                raise CampaignNotFound(campaign_id)
            sources, target = TRANSITIONS[action]
            if campaign.status not in sources:
                raise InvalidTransition(campaign.status.value, action.value)
            reason = None
            if action is Action.PAUSE:
                reason = pause_reason or "Paused by operator"
            elif action is Action.CANCEL:
                reason = campaign.pause_reason
            updated = replace(campaign, status=target, pause_reason=reason)
            self.campaigns[campaign_id] = updated
            self.writes += 1
            return updated

    def add_counts(
        self,
        campaign_id: str,
        *,
        sent: int = 0,
        failed: int = 0,
        unknown: int = 0,
        slot: str | None = None,
    ) -> Campaign | None:
        with self._lock:
            campaign = self.campaigns.get(campaign_id)
            if campaign is None:
                return None
            updated = replace(
                campaign,
                sent_count=campaign.sent_count + sent,
                failed_count=campaign.failed_count + failed,
                unknown_count=campaign.unknown_count + unknown,
            )
            self.campaigns[campaign_id] = updated
            self.writes += 1
            return updated

    def count_statuses(self, campaign_id: str) -> StatusCounts:
        with self._lock:
            counts: dict[RecipientStatus, int] = {}
            for (cid, _), recipient in self.recipients.items():
                if cid == campaign_id:
                    counts[recipient.status] = counts.get(recipient.status, 0) + 1
            return StatusCounts(counts)

    def suppress(self, phone: str, reason: str) -> None:
        with self._lock:
            self.suppressed[phone] = reason

    # -- RecipientStore ------------------------------------------------------------------

    def claim(self, campaign_id: str, phone: str, owner: str, lease_until: float) -> ClaimResult:
        with self._lock:
            current = self.recipients.get((campaign_id, phone))
            if current is None or current.status is not RecipientStatus.PENDING:
                return ClaimResult(claim=None, current=current)
            claimed = replace(
                current,
                status=RecipientStatus.SENDING,
                attempts=current.attempts + 1,
                lease_owner=owner,
                lease_until=lease_until,
            )
            self.recipients[(campaign_id, phone)] = claimed
            self.writes += 1
            return ClaimResult(claim=Claim(claimed, owner, lease_until))

    def _held(self, claim: Claim, *, or_unknown: bool = False) -> Recipient | None:
        current = self.recipients.get((claim.recipient.campaign_id, claim.recipient.phone))
        allowed = {RecipientStatus.SENDING} | ({RecipientStatus.UNKNOWN} if or_unknown else set())
        if current is None or current.lease_owner != claim.owner or current.status not in allowed:
            return None
        return current

    def record_attempt(self, claim: Claim, lease_until: float) -> Claim | None:
        with self._lock:
            current = self._held(claim)
            if current is None:
                return None
            updated = replace(current, attempts=current.attempts + 1, lease_until=lease_until)
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
        with self._lock:
            current = self._held(claim, or_unknown=from_unknown)
            if current is None:
                return CommitResult(committed=False)
            was_unknown = current.status is RecipientStatus.UNKNOWN
            self.recipients[(current.campaign_id, current.phone)] = replace(
                current, lease_until=None, **changes
            )
            self.writes += 1
            return CommitResult(committed=True, was_unknown=was_unknown)

    def commit_sent(self, claim: Claim, message_id: str, now_s: float) -> CommitResult:
        return self._commit(claim, status=RecipientStatus.SENT, message_id=message_id)

    def commit_failed(self, claim: Claim, error_code: str, now_s: float) -> CommitResult:
        return self._commit(claim, status=RecipientStatus.FAILED, error_code=error_code)

    def commit_unknown(self, claim: Claim, reason: str, now_s: float) -> CommitResult:
        return self._commit(claim, status=RecipientStatus.UNKNOWN, from_unknown=False)

    def expire_lease(self, recipient: Recipient, now_s: float) -> bool:
        with self._lock:
            key = (recipient.campaign_id, recipient.phone)
            current = self.recipients.get(key)
            if current is None or not current.lease_expired(now_s):
                return False
            self.recipients[key] = replace(current, status=RecipientStatus.UNKNOWN)
            self.writes += 1
            return True


class MemoryCapGuard:
    """A moving-window cap over hour buckets, like the DynamoDB guard (without the items)."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._lock = threading.Lock()
        self._hours: dict[int, int] = {}
        self.refunds = 0

    def _window(self, hour: int) -> int:
        return sum(n for h, n in self._hours.items() if hour - 24 <= h <= hour)

    def reserve(self, now_s: float) -> Reservation | None:
        hour = int(now_s // 3600)
        with self._lock:
            used = self._window(hour)
            if self.cap and used >= self.cap:
                return None
            self._hours[hour] = self._hours.get(hour, 0) + 1
            return Reservation(bucket="memory", hour=hour, used=used + 1, limit=self.cap)

    def refund(self, reservation: Reservation) -> None:
        with self._lock:
            if self._hours.get(reservation.hour, 0) > 0:
                self._hours[reservation.hour] -= 1
                self.refunds += 1

    def usage(self, now_s: float) -> CapUsage:
        with self._lock:
            return CapUsage(used=self._window(int(now_s // 3600)), limit=self.cap)


Outcome = SendAccepted | Exception


@dataclass
class FakeSender:
    """Answers from a script per phone (a list consumed in order; the last one repeats), else
    accepts. ``sent`` records every request made, in order."""

    script: dict[str, list[Outcome]] = field(default_factory=dict)
    default: Callable[[TemplateMessage], Outcome] | None = None
    sent: list[TemplateMessage] = field(default_factory=list)
    accepted: list[tuple[str, str]] = field(default_factory=list)  # (phone, wamid)
    _ids: Iterator[int] = field(default_factory=itertools.count)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, message: TemplateMessage) -> SendAccepted:
        with self._lock:
            self.sent.append(message)
            queue = self.script.get(message.to)
            if queue:
                outcome = queue.pop(0) if len(queue) > 1 else queue[0]
            elif self.default is not None:
                outcome = self.default(message)
            else:
                outcome = SendAccepted(f"wamid.fake{next(self._ids)}", "accepted")
            if isinstance(outcome, Exception):
                raise outcome
            self.accepted.append((message.to, outcome.message_id))
            return outcome

    def requests_for(self, phone: str) -> int:
        with self._lock:
            return sum(1 for m in self.sent if m.to == phone)
