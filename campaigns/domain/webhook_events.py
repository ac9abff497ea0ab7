"""The typed events a webhook body becomes (``campaigns.domain.webhooks.parse`` makes them),
and our own callback data read back: what the receipts applier works on."""

from __future__ import annotations

from dataclasses import dataclass

from campaigns.domain.errors import CampaignError
from campaigns.domain.models import CAMPAIGN_ID_RE

PHONE_DIGITS_MIN, PHONE_DIGITS_MAX = 7, 15  # E.164: at most 15 digits


class UndecodableReceipt(CampaignError):
    """The body is not JSON: never acted on, left for the receipts DLQ."""


# -- the events -------------------------------------------------------------------------------


@dataclass(frozen=True)
class StatusEvent:
    """``statuses[]``: what became of one message we sent."""

    message_id: str  # the wamid
    status: str  # sent | delivered | read | failed
    at_s: float
    phone: str | None  # recipient_id (digits); None when the user withholds it
    user_id: str | None  # recipient_user_id (the BSUID)
    callback_data: str | None  # biz_opaque_callback_data, as we set it
    error_codes: tuple[int, ...] = ()
    pricing_category: str | None = None
    billable: bool | None = None


@dataclass(frozen=True)
class InboundMessage:
    """``messages[]``: something a user sent us (only text matters here: opt-out keywords)."""

    message_id: str
    phone: str | None  # from
    user_id: str | None  # from_user_id (the BSUID)
    type: str
    text: str | None
    at_s: float | None


@dataclass(frozen=True)
class ContactSeen:
    """``contacts[]``: one user with both their number and their BSUID (a link to keep)."""

    phone: str
    user_id: str


@dataclass(frozen=True)
class PreferenceEvent:
    """``user_preferences[]``: a user stopped or resumed marketing messages."""

    phone: str | None
    user_id: str | None
    category: str
    value: str  # stop | resume
    at_s: float | None


@dataclass(frozen=True)
class TemplateStatusEvent:
    """``message_template_status_update``."""

    event: str  # APPROVED, PAUSED, DISABLED, REJECTED, …
    template_name: str
    language: str | None
    reason: str | None
    template_id: str | None


@dataclass(frozen=True)
class QualityEvent:
    """``phone_number_quality_update``: the number's quality or limit changed."""

    event: str  # DOWNGRADE, UPGRADE, FLAGGED, UNFLAGGED, ONBOARDING, …
    display_phone_number: str | None
    current_limit: str | None
    old_limit: str | None


@dataclass(frozen=True)
class AccountEvent:
    """``account_update``: a restriction, a violation, a ban, …"""

    event: str  # ACCOUNT_RESTRICTION, ACCOUNT_VIOLATION, DISABLED_UPDATE, …
    account_id: str | None  # the entry's WABA id
    violation_type: str | None
    ban_state: str | None
    restrictions: tuple[str, ...]


@dataclass(frozen=True)
class CapabilityEvent:
    """``business_capability_update``: the portfolio's messaging limit (-1: unlimited)."""

    messaging_limit: int | None
    max_phone_numbers: int | None


Event = (
    StatusEvent
    | InboundMessage
    | ContactSeen
    | PreferenceEvent
    | TemplateStatusEvent
    | QualityEvent
    | AccountEvent
    | CapabilityEvent
)


@dataclass(frozen=True)
class Skipped:
    """One item (or change) not turned into an event: where it was and why, in one line."""

    where: str  # entry[0].changes[1].statuses[2]
    reason: str  # "malformed: status: Input should be 'sent', …" | "unhandled field: history"

    @property
    def kind(self) -> str:
        """A short, bounded label for metrics: the reason's first word."""
        return self.reason.split(":", 1)[0]


@dataclass(frozen=True)
class ParsedReceipt:
    events: tuple[Event, ...]
    skipped: tuple[Skipped, ...]


# -- our own callback data --------------------------------------------------------------------


def callback_target(data: str | None) -> tuple[str, str] | None:
    """``"<campaign_id>:<phone>"`` as the executor sets it → (campaign_id, phone), strictly:
    a campaign id of ours and E.164 digits, else None (someone else's, or damaged)."""
    if not data or data.count(":") != 1:
        return None
    campaign_id, phone = data.split(":")
    if not CAMPAIGN_ID_RE.match(campaign_id):
        return None
    if not (phone.isascii() and phone.isdigit()):
        return None
    if not PHONE_DIGITS_MIN <= len(phone) <= PHONE_DIGITS_MAX:
        return None
    return campaign_id, phone
