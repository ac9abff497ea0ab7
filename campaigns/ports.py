"""The small protocols the executor is built from; each has a real and an in-memory adapter."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Protocol

from campaigns.domain.models import (
    Action,
    Campaign,
    Claim,
    Recipient,
    SendAccepted,
    StatusCounts,
    TemplateMessage,
)


@dataclass(frozen=True)
class ClaimResult:
    """Either the claim, or the recipient as it was when the claim was refused (None: absent)."""

    claim: Claim | None
    current: Recipient | None = None


@dataclass(frozen=True)
class CommitResult:
    """``committed`` is False when the lease was lost; ``was_unknown`` when it had expired to
    UNKNOWN and this commit resolved it (so the UNKNOWN counter must move too)."""

    committed: bool
    was_unknown: bool = False


class CampaignStore(Protocol):
    def get_campaign(self, campaign_id: str) -> Campaign | None: ...

    def transition(
        self, campaign_id: str, action: Action, *, pause_reason: str | None = None
    ) -> Campaign: ...

    def add_counts(
        self,
        campaign_id: str,
        *,
        sent: int = 0,
        failed: int = 0,
        unknown: int = 0,
        slot: str | None = None,
    ) -> Campaign | None: ...

    def count_statuses(self, campaign_id: str) -> StatusCounts: ...

    def suppress(self, phone: str, reason: str) -> None: ...


class RecipientStore(Protocol):
    def claim(
        self, campaign_id: str, phone: str, owner: str, lease_until: float
    ) -> ClaimResult: ...

    def record_attempt(self, claim: Claim, lease_until: float) -> Claim | None: ...

    def release(self, claim: Claim, *, refund_attempt: bool, halted: bool = False) -> bool: ...

    def commit_sent(self, claim: Claim, message_id: str, now_s: float) -> CommitResult: ...

    def commit_failed(self, claim: Claim, error_code: str, now_s: float) -> CommitResult: ...

    def commit_unknown(self, claim: Claim, reason: str, now_s: float) -> CommitResult: ...

    def expire_lease(self, recipient: Recipient, now_s: float) -> bool: ...


class Store(CampaignStore, RecipientStore, Protocol):
    """Both halves, as one DynamoDB adapter implements them."""


@dataclass(frozen=True)
class Reservation:
    """One unit of the cap, held in the hour bucket it was charged to."""

    bucket: str  # the counter item's key
    hour: int  # 0..23, the hour attribute charged
    used: int  # units used in the window after this reservation (for the gauge)
    limit: int  # the cap it was checked against (0: unlimited)
    shard: int = 0  # which cap shard holds it (COUNTER_SHARDS > 1)


@dataclass(frozen=True)
class CapUsage:
    used: int
    limit: int


class CapGuard(Protocol):
    def reserve(self, now_s: float) -> Reservation | None: ...

    def refund(self, reservation: Reservation) -> None: ...

    def usage(self, now_s: float) -> CapUsage: ...


class Sender(Protocol):
    def send(self, message: TemplateMessage) -> SendAccepted: ...


class RateLimiter(Protocol):
    def acquire(self, stop: threading.Event | None = None) -> bool: ...

    def throttled(self, retry_after_s: float | None = None) -> None: ...


class Clock(Protocol):
    def now(self) -> float: ...

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> bool:
        """Sleep; return False if ``stop`` was set before the time was up."""
        ...
