"""Every port of the system: the small protocols the executor, the consumer loop and the
operator core are built from. Each has a real adapter (campaigns/aws, campaigns/meta) and an
in-memory one (campaigns/memory); tests/contract holds both to the same behaviour."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from campaigns.domain.models import (
    Action,
    Campaign,
    Claim,
    DeliveryApplied,
    DeliveryReport,
    Recipient,
    RecipientStatus,
    SendAccepted,
    StatusCounts,
    TemplateMessage,
    TemplateParam,
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
    # commit_sent(held=True) marked the recipient's deliveryStatus HELD (so heldCount +1); not
    # when a status webhook had reached the recipient first.
    marked_held: bool = False


class CampaignStore(Protocol):
    def get_campaign(self, campaign_id: str) -> Campaign | None: ...

    def transition(
        self,
        campaign_id: str,
        action: Action,
        *,
        pause_reason: str | None = None,
        generation: int | None = None,
    ) -> Campaign:
        """One conditional write (``InvalidTransition`` when refused). START and RESUME bump
        ``pending_generation``; COMPLETE with ``generation`` (the value read before its scan)
        is refused if it changed since, or while a requeue-unknown is under way."""
        ...

    def add_counts(
        self,
        campaign_id: str,
        *,
        sent: int = 0,
        failed: int = 0,
        unknown: int = 0,
        held: int = 0,
        slot: str | None = None,
    ) -> Campaign | None: ...

    def count_statuses(self, campaign_id: str) -> StatusCounts: ...

    def suppress(self, phone: str, reason: str) -> None:
        """Add ``reason`` to the number's suppression reasons (idempotent)."""
        ...

    def find_suppressed(self, phones: Sequence[str]) -> set[str]:
        """The numbers among ``phones`` on the suppression list, in one read (the send path
        calls it once per batch)."""
        ...


class RecipientStore(Protocol):
    def claim(self, campaign_id: str, phone: str, owner: str, lease_until: float) -> ClaimResult:
        """PENDING → SENDING for consumer ``owner``: the item's lease owner is a fresh
        per-claim ``<owner>#<token>`` (``Claim.owner``), which every later write of this claim
        is conditioned on. A second call is a new claim (refused: it is SENDING)."""
        ...

    def record_attempt(self, claim: Claim, lease_until: float) -> Claim | None:
        """Before a retry: one more attempt, the lease extended; None if the claim is lost."""
        ...

    def renew(self, claim: Claim, lease_until: float) -> Claim | None:
        """Extend the claim's lease to ``lease_until`` (still SENDING under this very claim);
        None if it is no longer held (expired to UNKNOWN, released, claimed again)."""
        ...

    def release(self, claim: Claim, *, refund_attempt: bool, halted: bool = False) -> bool:
        """SENDING → PENDING, only under this very claim (a replay after a newer claim of the
        same consumer is refused)."""
        ...

    def commit_sent(
        self, claim: Claim, message_id: str, now_s: float, *, held: bool = False
    ) -> CommitResult:
        """SENDING (or UNKNOWN, our lease expired) → SENT; with ``held`` (Meta answered
        held_for_quality_assessment) also deliveryStatus HELD unless a status came first."""
        ...

    def commit_failed(self, claim: Claim, error_code: str, now_s: float) -> CommitResult: ...

    def commit_unknown(self, claim: Claim, reason: str, now_s: float) -> CommitResult: ...

    def expire_lease(self, recipient: Recipient, now_s: float) -> bool: ...


class DeliveryStore(Protocol):
    """What the status webhooks write (campaigns/engine/receipts.py): delivery reports merged
    into recipients and counters, the BSUID → phone link, lifting a suppression reason, and the
    campaigns a template or account event pauses."""

    def apply_delivery(self, report: DeliveryReport) -> DeliveryApplied:
        """Merge one report (monotonic max by ``DELIVERY_RANK``; ``campaigns.domain.delivery``)
        and move the campaign counters with it, atomically; exact under duplicates, any order
        and concurrent callers. A missing recipient: ``found=False``, nothing written."""
        ...

    def find_by_message_id(self, message_id: str) -> tuple[str, str] | None:
        """(campaign_id, phone) of the recipient sent that wamid, if any. Eventually
        consistent on DynamoDB (a GSI): a send committed a moment ago may not be found yet."""
        ...

    def link_user(self, user_id: str, phone: str) -> None:
        """Remember BSUID → phone (idempotent; a later link for the same BSUID replaces it)."""
        ...

    def phone_for_user(self, user_id: str) -> str | None: ...

    def unsuppress(self, phone: str, reason: str) -> bool:
        """Remove ``reason`` from the number's suppression reasons; the number stays suppressed
        while any other reason stands. True if ``reason`` was held (and is now lifted); False,
        changing nothing, if it was not."""
        ...

    def running_campaigns(self) -> list[Campaign]:
        """Every RUNNING campaign, oldest first."""
        ...


class Store(CampaignStore, RecipientStore, Protocol):
    """Both halves, as one DynamoDB adapter implements them."""


class OperatorStore(CampaignStore, Protocol):
    """What the operator core (campaigns/operator) does to campaigns and recipients: create and
    list them, count, repair counters, expire leases, requeue UNKNOWN, hold the import lock."""

    def create_campaign(self, campaign: Campaign) -> Campaign: ...

    def require_campaign(self, campaign_id: str) -> Campaign:
        """The campaign, or ``CampaignNotFound``."""
        ...

    def list_campaigns(self) -> list[Campaign]:
        """Every campaign, oldest first."""
        ...

    def add_total(self, campaign_id: str, inserted: int) -> None: ...

    def set_counter(self, campaign_id: str, name: str, expected: int | None, value: int) -> bool:
        """Make counter ``name`` (``sentCount``..., or a tally key) ``value`` if it still is
        ``expected``."""
        ...

    def prune_count_tokens(self, campaign_id: str, older_than_s: float) -> int: ...

    def iter_recipients(
        self, campaign_id: str, status: RecipientStatus | None = None, *, after: str | None = None
    ) -> Iterator[Recipient]:
        """The campaign's recipients in key (phone) order, read page by page; with ``after``,
        only those whose phone sorts strictly after it (where the previous page ended)."""
        ...

    def expire_lease(self, recipient: Recipient, now_s: float) -> bool: ...

    def requeue_unknown(self, recipient: Recipient) -> bool: ...

    def begin_requeue(self, campaign_id: str, until_s: float) -> None:
        """Hold off completion until ``end_requeue`` (or ``until_s``); refused with
        ``InvalidTransition`` when the campaign is COMPLETED or CANCELLED."""
        ...

    def end_requeue(self, campaign_id: str) -> None:
        """Bump ``pending_generation`` and lift the hold: a completion whose scan began before
        this is refused."""
        ...

    def lock_import(self, campaign_id: str, token: str, now_s: float) -> None:
        """Hold the campaign for one populate (refused: ``ImportLocked`` / ``InvalidInput``)."""
        ...

    def unlock_import(self, campaign_id: str, token: str) -> None: ...


class RecipientBulk(Protocol):
    """Batched existence checks and writes for populate."""

    def known(self, campaign_id: str, phones: Sequence[str]) -> tuple[set[str], set[str]]:
        """(phones already in the campaign, phones on the suppression list)."""
        ...

    def write_pending(
        self, campaign_id: str, rows: Sequence[tuple[str, tuple[TemplateParam, ...]]]
    ) -> int:
        """Write new PENDING recipients (the caller checked they are new); returns how many."""
        ...


@dataclass(frozen=True)
class ReceivedMessage:
    message_id: str
    receipt_handle: str
    body: str
    receive_count: int = 1


class BatchQueue(Protocol):
    """The consumer's side of the batch queue (and the operator's view of the DLQ)."""

    def receive(
        self, max_messages: int, wait_s: int, visibility_timeout_s: int | None = None
    ) -> list[ReceivedMessage]: ...

    def delete(self, receipt_handles: Sequence[str]) -> list[str]:
        """Returns the receipt handles that could not be deleted."""
        ...

    def change_visibility(self, receipt_handles: Sequence[str], timeout_s: int) -> list[str]: ...


class SendQueue(Protocol):
    """The producer's side of the batch queue: enqueue, and look at its depth."""

    def send(self, bodies: Sequence[str], delay_s: int = 0) -> int: ...

    def depth(self) -> tuple[int, int]:
        """(visible, in flight) approximate message counts."""
        ...


@dataclass(frozen=True)
class Reservation:
    """One unit of the cap, held in the hour bucket it was charged to."""

    bucket: str  # the counter item's key
    hour: int  # 0..23, the hour attribute charged
    used: int  # units used in the window after this reservation (for the gauge)
    limit: int  # the cap it was checked against (0: unlimited)
    shard: int = 0  # which cap shard holds it (COUNTER_SHARDS > 1)
    # Names this reservation's refund, so a retried refund whose first try landed is
    # recognised instead of giving the unit back twice.
    id: str = field(default_factory=lambda: uuid.uuid4().hex)


@dataclass(frozen=True)
class CapUsage:
    used: int
    limit: int


class CapGuard(Protocol):
    def reserve(self, now_s: float) -> Reservation | None: ...

    def refund(self, reservation: Reservation) -> None:
        """Give the unit back, once: a retry of this refund whose earlier try landed (answer
        lost) is recognised and not counted again. Raises ``StoreUnavailable`` when the store
        stays unavailable through the adapter's retries (the unit then stays charged)."""
        ...

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
