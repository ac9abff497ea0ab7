"""Campaign and recipient records and the state machines that govern them."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from campaigns.domain import tallies
from campaigns.domain.errors import InvalidInput

CAMPAIGN_ID_RE = re.compile(
    r"^cmp_[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
)


class CampaignStatus(StrEnum):
    DRAFT = "DRAFT"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"


class RecipientStatus(StrEnum):
    PENDING = "PENDING"
    SENDING = "SENDING"
    SENT = "SENT"
    FAILED = "FAILED"
    UNKNOWN = "UNKNOWN"


class DeliveryStatus(StrEnum):
    """What Meta's status webhooks say became of a sent message (``deliveryStatus``)."""

    HELD = "HELD"  # accepted as held_for_quality_assessment (template pacing)
    SENT = "SENT"
    FAILED = "FAILED"
    DELIVERED = "DELIVERED"
    READ = "READ"


# A recipient's deliveryStatus is the max by rank of every report applied: commutative and
# idempotent, so duplicates and any order give one end state. A "failed" after "read" is
# ignored; a late "delivered" after "failed" wins (Meta delivered it after all).
DELIVERY_RANK: Mapping[DeliveryStatus, int] = {
    DeliveryStatus.HELD: 0,
    DeliveryStatus.SENT: 1,
    DeliveryStatus.FAILED: 2,
    DeliveryStatus.DELIVERED: 3,
    DeliveryStatus.READ: 4,
}


class Action(StrEnum):
    """Operator and engine actions on a campaign, each a transition."""

    START = "start"
    PAUSE = "pause"
    RESUME = "resume"
    CANCEL = "cancel"
    COMPLETE = "complete"


# action -> (statuses it may start from, status it leads to)
TRANSITIONS: Mapping[Action, tuple[frozenset[CampaignStatus], CampaignStatus]] = {
    Action.START: (frozenset({CampaignStatus.DRAFT}), CampaignStatus.RUNNING),
    Action.PAUSE: (frozenset({CampaignStatus.RUNNING}), CampaignStatus.PAUSED),
    Action.RESUME: (frozenset({CampaignStatus.PAUSED}), CampaignStatus.RUNNING),
    Action.CANCEL: (
        frozenset({CampaignStatus.DRAFT, CampaignStatus.RUNNING, CampaignStatus.PAUSED}),
        CampaignStatus.CANCELLED,
    ),
    Action.COMPLETE: (frozenset({CampaignStatus.RUNNING}), CampaignStatus.COMPLETED),
}

# Statuses in which recipients may be added to a campaign.
POPULATE_STATUSES = frozenset({CampaignStatus.DRAFT, CampaignStatus.PAUSED})
# An import holds the campaign this long between renewals (start/resume wait for it).
IMPORT_LOCK_S = 900
# How long a requeue-unknown holds off completion (a dead one's hold lapses after this).
REQUEUE_HOLD_S = 900
# The pause reason of an operator's pause, and the UNKNOWN reason of a lease that ran out.
OPERATOR_PAUSE_REASON = "Paused by operator"
LEASE_EXPIRED = "lease expired"
# The errorCode of a PENDING recipient whose number was on the suppression list when its batch
# was sent: failed without a request to Meta (the user opted out after it was imported).
SUPPRESSED_CODE = "SUPPRESSED"


def new_campaign_id() -> str:
    return f"cmp_{uuid.uuid4()}"


def validate_campaign_id(campaign_id: str) -> str:
    if not CAMPAIGN_ID_RE.match(campaign_id):
        raise InvalidInput(f"Malformed campaign id: {campaign_id!r} (expected cmp_<uuid4>)")
    return campaign_id


class PauseReason(StrEnum):
    """The short enum used as the ``reason`` label of ``campaign_pauses_total``."""

    DAILY_LIMIT = "daily_limit"
    AUTH = "auth"
    ACCOUNT = "account"
    TEMPLATE = "template"
    QUALITY = "quality"
    OPERATOR = "operator"


@dataclass(frozen=True)
class TemplateParam:
    """One per-recipient template parameter; ``name`` is the CSV column it came from."""

    name: str
    value: str


@dataclass(frozen=True)
class Campaign:
    campaign_id: str
    name: str
    template_name: str
    template_language: str
    status: CampaignStatus
    total_recipients: int = 0
    sent_count: int = 0
    failed_count: int = 0
    unknown_count: int = 0
    delivered_count: int = 0  # recipients delivered or read (a read implies delivered)
    read_count: int = 0
    delivery_failed_count: int = 0  # failed after acceptance (by webhook)
    held_count: int = 0  # sent, answered held_for_quality_assessment, no status since
    # Keyed counters (campaigns.domain.tallies): failures by code, billable deliveries; the
    # stores leave out the ones at zero, so equal counts make equal campaigns.
    tallies: Mapping[str, int] = field(default_factory=dict, hash=False)
    pause_reason: str | None = None
    parameter_format: str = "POSITIONAL"
    created_at: str | None = None
    started_at: str | None = None
    paused_at: str | None = None
    completed_at: str | None = None
    cancelled_at: str | None = None
    # Bumped by every path that makes closed recipients PENDING again while the campaign can
    # run (start, resume, requeue-unknown); COMPLETE requires the value read before its scan.
    # Items written before it existed read as 0.
    pending_generation: int = 0

    @property
    def pending_count(self) -> int:
        """Recipients not yet in a final state (PENDING or SENDING), from the counters."""
        done = self.sent_count + self.failed_count + self.unknown_count
        return max(self.total_recipients - done, 0)

    @property
    def progress_percent(self) -> float:
        if self.total_recipients == 0:
            return 100.0 if self.status is CampaignStatus.COMPLETED else 0.0
        done = self.total_recipients - self.pending_count
        return round(100.0 * done / self.total_recipients, 1)

    @property
    def delivery_rate(self) -> float | None:
        """Delivered ÷ sent (0..1); None while nothing was sent."""
        return _ratio(self.delivered_count, self.sent_count)

    @property
    def read_rate(self) -> float | None:
        """Read ÷ delivered (0..1); None while nothing was delivered."""
        return _ratio(self.read_count, self.delivered_count)

    @property
    def delivery_failures(self) -> dict[str, int]:
        """Error code → recipients whose delivery failed with it."""
        return tallies.failures(self.tallies)

    @property
    def billed(self) -> dict[tuple[str, str], int]:
        """(pricing category, calling code) → billable deliveries."""
        return tallies.billed(self.tallies)

    def to_public(self) -> dict[str, Any]:
        """The shape the CLI prints with ``--json`` (the table's attribute names)."""
        return {
            "campaignId": self.campaign_id,
            "name": self.name,
            "templateName": self.template_name,
            "templateLanguage": self.template_language,
            "status": self.status.value,
            "totalRecipients": self.total_recipients,
            "sentCount": self.sent_count,
            "failedCount": self.failed_count,
            "unknownCount": self.unknown_count,
            "pendingCount": self.pending_count,
            "deliveredCount": self.delivered_count,
            "readCount": self.read_count,
            "deliveryFailedCount": self.delivery_failed_count,
            "deliveryFailures": self.delivery_failures,
            "heldCount": self.held_count,
            "billable": [
                {"category": category, "callingCode": code, "count": count}
                for (category, code), count in self.billed.items()
            ],
            "deliveryRate": self.delivery_rate,
            "readRate": self.read_rate,
            "progress": self.progress_percent,
            "pauseReason": self.pause_reason,
            "createdAt": self.created_at,
            "startedAt": self.started_at,
            "pausedAt": self.paused_at,
            "completedAt": self.completed_at,
            "cancelledAt": self.cancelled_at,
        }


def _ratio(part: int, whole: int) -> float | None:
    if whole <= 0:
        return None
    return min(max(part / whole, 0.0), 1.0)


@dataclass(frozen=True)
class Recipient:
    campaign_id: str
    phone: str
    status: RecipientStatus
    attempts: int = 0
    halted_attempts: int = 0  # requests answered with a campaign-level error (not this number's)
    params: tuple[TemplateParam, ...] = ()
    lease_owner: str | None = None
    lease_until: float | None = None
    message_id: str | None = None
    error_code: str | None = None
    unknown_reason: str | None = None  # why it became UNKNOWN ("lease expired", ...)
    finished_at: float | None = None  # epoch seconds of the write that made it final
    # What the status webhooks said (None on items written before them, or not yet reported).
    delivery_status: DeliveryStatus | None = None
    delivered_at: float | None = None  # epoch s of the first report at DELIVERED or above
    read_at: float | None = None
    delivery_error_code: str | None = None  # "META_131050" of a FAILED report
    user_id: str | None = None  # the business-scoped user id (BSUID) a report carried
    # The category of the first billable pricing object a report carried (None: none yet, or
    # every one said billable false).
    pricing_category: str | None = None

    @property
    def tries(self) -> int:
        """Requests that count against the retry budget."""
        return self.attempts - self.halted_attempts

    def lease_expired(self, now_s: float) -> bool:
        return self.status is RecipientStatus.SENDING and (
            self.lease_until is None or self.lease_until <= now_s
        )


# The lease owner a claim writes is ``<consumer id>#<claim token>``: one per claim, not one per
# process, so a replayed write of an earlier claim (a release whose answer was lost, retried
# after another thread of the same process claimed the recipient again) is refused. Items
# written by older code hold the bare consumer id; every condition compares the whole owner,
# so those claims are committed by the code that made them and expire as before.
LEASE_TOKEN_SEPARATOR = "#"  # noqa: S105 (a separator, not a secret)


def new_lease_owner(consumer: str) -> str:
    """A fresh per-claim lease owner for ``consumer`` (the stores call it in ``claim``)."""
    return f"{consumer}{LEASE_TOKEN_SEPARATOR}{uuid.uuid4().hex[:16]}"


@dataclass(frozen=True)
class Claim:
    """A recipient this consumer holds as SENDING under ``owner`` until ``lease_until``.
    ``owner`` is the per-claim lease owner (``<consumer>#<token>``) every later write of the
    claim is conditioned on: renew, record_attempt, release and the commits."""

    recipient: Recipient
    owner: str
    lease_until: float

    @property
    def consumer(self) -> str:
        """The consumer id part of the owner (the whole owner on an older, tokenless claim)."""
        return self.owner.split(LEASE_TOKEN_SEPARATOR, 1)[0]


@dataclass(frozen=True)
class StatusCounts:
    """Recipient items of one campaign counted by status."""

    counts: Mapping[RecipientStatus, int] = field(default_factory=dict)

    def __getitem__(self, status: RecipientStatus) -> int:
        return self.counts.get(status, 0)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def open(self) -> int:
        return self[RecipientStatus.PENDING] + self[RecipientStatus.SENDING]


@dataclass(frozen=True)
class TemplateMessage:
    """What to send to one recipient (the Meta adapter turns it into the request body)."""

    to: str  # E.164 digits without '+'
    template_name: str
    language: str
    params: tuple[TemplateParam, ...] = ()
    named_params: bool = False
    callback_data: str | None = None


# The send answer's message_status of a message Meta holds back while it assesses the
# template's quality (template pacing); the recipient is SENT with deliveryStatus HELD.
HELD_FOR_QUALITY = "held_for_quality_assessment"


@dataclass(frozen=True)
class SendAccepted:
    message_id: str  # the wamid
    message_status: str  # "accepted" or "held_for_quality_assessment"


@dataclass(frozen=True)
class DeliveryReport:
    """One status webhook about one recipient, as the store applies it."""

    campaign_id: str
    phone: str  # digits, E.164 without +
    status: DeliveryStatus  # SENT | DELIVERED | READ | FAILED from webhooks
    at_s: float  # the webhook's timestamp (epoch s)
    message_id: str | None  # the wamid
    error_code: str | None  # "META_131050" for FAILED
    user_id: str | None  # the BSUID (recipient_user_id)
    pricing_category: str | None = None  # pricing.category, as is
    billable: bool | None = None  # pricing.billable (None: not said; counted as billable)


@dataclass(frozen=True)
class DeliveryApplied:
    """What ``DeliveryStore.apply_delivery`` did."""

    found: bool  # the recipient exists
    changed: bool  # its deliveryStatus moved up (counters moved)
    resolved_unknown: bool  # UNKNOWN → SENT by this report (unknownCount -1, sentCount +1)
    before: DeliveryStatus | None
    after: DeliveryStatus | None
