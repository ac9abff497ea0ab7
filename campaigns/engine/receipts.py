"""Applying webhook events: delivery truth, opt-outs, and Meta's account-level stops.

Each event is applied through the ports, idempotently, so a redelivered or reordered webhook
gives the same end state: a status is merged into its recipient by rank (``apply_delivery``),
a suppression is a put, a pause is a conditional transition (a second one is refused). A store
failure propagates: the consumer then leaves the message for redelivery.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

from campaigns.domain import tallies
from campaigns.domain.errors import InvalidTransition
from campaigns.domain.models import (
    Action,
    Campaign,
    DeliveryReport,
    DeliveryStatus,
    PauseReason,
)
from campaigns.domain.webhook_events import (
    AccountEvent,
    CapabilityEvent,
    ContactSeen,
    Event,
    InboundMessage,
    PreferenceEvent,
    QualityEvent,
    Skipped,
    StatusEvent,
    TemplateStatusEvent,
    callback_target,
)
from campaigns.engine.cache import CampaignCache
from campaigns.engine.metrics import EngineMetrics
from campaigns.logging import get_logger
from campaigns.ports import CampaignStore, DeliveryStore

OPTED_OUT_CODE = 131050  # the user stopped marketing messages: suppress the number
REASON_131050 = "META_131050"
REASON_PREFERENCES = "user_preferences"
REASON_KEYWORD = "keyword"
MARKETING = "marketing_messages"
# Events that stop sending (Meta's values); anything else is logged and counted only.
TEMPLATE_STOPS = frozenset({"PAUSED", "DISABLED", "REJECTED"})
QUALITY_STOPS = frozenset({"DOWNGRADE", "FLAGGED"})
ACCOUNT_STOPS = frozenset({"ACCOUNT_RESTRICTION", "ACCOUNT_VIOLATION", "DISABLED_UPDATE"})
BAN_LIFTED = "REINSTATE"  # a DISABLED_UPDATE that lifts the ban stops nothing
# The ``kind`` label of ``campaign_receipts_applied_total``.
EVENT_KINDS: dict[type[Event], str] = {
    StatusEvent: "status",
    InboundMessage: "message",
    ContactSeen: "contact",
    PreferenceEvent: "preference",
    TemplateStatusEvent: "template",
    QualityEvent: "quality",
    AccountEvent: "account",
    CapabilityEvent: "capability",
}


def mask_id(value: str | None) -> str | None:
    """A wamid or BSUID in a log line: enough of its end to correlate, not the identifier."""
    if value is None:
        return None
    return "…" + value[-6:] if len(value) > 8 else "*" * len(value)


LINKS_REMEMBERED = 10_000  # BSUID -> phone pairs this process knows are stored


@dataclass
class ApplySummary:
    """What one ``apply`` call did (the consumer logs it; tests assert on it)."""

    events: int = 0
    changed: int = 0  # statuses that moved a recipient
    unmatched: int = 0
    resolved_unknown: int = 0
    suppressed: int = 0
    unsuppressed: int = 0
    paused: int = 0
    skipped: int = 0


def _language_key(language: str | None) -> str | None:
    return None if language is None else language.replace("-", "_").lower()


class ReceiptApplier:
    def __init__(
        self,
        deliveries: DeliveryStore,
        campaigns: CampaignStore,
        metrics: EngineMetrics,
        opt_out_keywords: frozenset[str],
        cache: CampaignCache | None = None,
    ) -> None:
        self._deliveries = deliveries
        self._campaigns = campaigns
        self._metrics = metrics
        self._keywords = frozenset(k.strip().upper() for k in opt_out_keywords if k.strip())
        self._cache = cache
        # BSUID -> phone known to be stored (bounded, FIFO). The receipts loop applies several
        # messages at once from one applier: the memo is read and trimmed under its own lock
        # (the store calls are not, so links of different users never wait on each other).
        self._linked: dict[str, str] = {}
        self._linked_lock = threading.Lock()
        self._log = get_logger()

    def apply(self, events: Iterable[Event], skipped: Iterable[Skipped] = ()) -> ApplySummary:
        """Apply every event in order; count the items the parser skipped."""
        started = time.monotonic()
        summary = ApplySummary()
        for item in skipped:
            summary.skipped += 1
            self._metrics.receipts_skipped.labels(kind=item.kind).inc()
            self._log.info("receipt.item_skipped", where=item.where, reason=item.reason)
        for event in events:
            summary.events += 1
            self._one(event, summary)
        self._metrics.receipt_apply_duration.observe(time.monotonic() - started)
        return summary

    def _one(self, event: Event, summary: ApplySummary) -> None:
        match event:
            case StatusEvent():
                self._status(event, summary)
            case InboundMessage():
                self._inbound(event, summary)
            case ContactSeen():
                self._link(event.user_id, event.phone)
            case PreferenceEvent():
                self._preference(event, summary)
            case TemplateStatusEvent():
                self._template(event, summary)
            case QualityEvent():
                self._quality(event, summary)
            case AccountEvent():
                self._account(event, summary)
            case CapabilityEvent():
                self._capability(event)
        self._metrics.receipts_applied.labels(kind=EVENT_KINDS[type(event)]).inc()

    # -- statuses ------------------------------------------------------------------------

    def _status(self, event: StatusEvent, summary: ApplySummary) -> None:
        target = callback_target(event.callback_data) or self._deliveries.find_by_message_id(
            event.message_id
        )
        opted_out = event.status == "failed" and OPTED_OUT_CODE in event.error_codes
        if target is None:
            self._unmatched(event, summary, "no recipient for the callback data or wamid")
            if opted_out:  # not one of our campaigns' sends, but the number did opt out
                self._suppress(self._phone_of(event.phone, event.user_id), REASON_131050, summary)
            return
        campaign_id, phone = target
        if event.user_id is not None:
            self._link(event.user_id, phone)
        report = DeliveryReport(
            campaign_id=campaign_id,
            phone=phone,
            status=DeliveryStatus(event.status.upper()),
            at_s=event.at_s,
            message_id=event.message_id,
            error_code=f"META_{event.error_codes[0]}" if event.error_codes else None,
            user_id=event.user_id,
            pricing_category=event.pricing_category,
            billable=event.billable,
        )
        applied = self._deliveries.apply_delivery(report)
        if opted_out:
            self._suppress(phone, REASON_131050, summary)
        if not applied.found:
            self._unmatched(event, summary, "the callback data names no recipient")
            return
        if applied.changed and applied.after is not None:
            summary.changed += 1
            self._metrics.deliveries.labels(status=applied.after.value).inc()
            if applied.after is DeliveryStatus.FAILED:
                code = tallies.code_label(report.error_code)
                self._metrics.delivery_failures.labels(error_code=code).inc()
        if applied.resolved_unknown:
            summary.resolved_unknown += 1
            self._metrics.unknown_resolved.inc()
            self._log.info(
                "recipient.unknown_resolved",
                campaign_id=campaign_id,
                phone=phone,
                message_id=mask_id(event.message_id),
            )

    def _unmatched(self, event: StatusEvent, summary: ApplySummary, why: str) -> None:
        summary.unmatched += 1
        self._metrics.receipts_unmatched.inc()
        self._log.warning(
            "receipt.unmatched",
            status=event.status,
            message_id=mask_id(event.message_id),
            phone=event.phone,  # masked by the logging set-up
            user_id=mask_id(event.user_id),
            reason=why,
        )

    # -- opt-outs ------------------------------------------------------------------------

    def _phone_of(self, phone: str | None, user_id: str | None) -> str | None:
        """The number, given it or through the BSUID link (linking it when both are given)."""
        if phone is not None:
            if user_id is not None:
                self._link(user_id, phone)
            return phone
        return self._deliveries.phone_for_user(user_id) if user_id is not None else None

    def _link(self, user_id: str, phone: str) -> None:
        """BSUID → phone, written only when it is new or changed (a read costs less), and not
        even read again for a pair this process already stored: every status of a user carries
        the BSUID, so without the memo each one cost a read."""
        with self._linked_lock:
            if self._linked.get(user_id) == phone:
                return
        # Two threads may both get here for one pair: both read, at worst both write the same
        # link (idempotent). A BSUID names one number, so links never disagree.
        if self._deliveries.phone_for_user(user_id) != phone:
            self._deliveries.link_user(user_id, phone)
        with self._linked_lock:
            self._linked[user_id] = phone
            while len(self._linked) > LINKS_REMEMBERED:
                del self._linked[next(iter(self._linked))]

    def _suppress(self, phone: str | None, reason: str, summary: ApplySummary) -> None:
        if phone is None:
            return
        self._campaigns.suppress(phone, reason)
        summary.suppressed += 1
        self._metrics.suppressions.labels(reason=reason).inc()
        self._log.info("recipient.suppressed", phone=phone, reason=reason)

    def _inbound(self, event: InboundMessage, summary: ApplySummary) -> None:
        phone = self._phone_of(event.phone, event.user_id)
        if event.text is None or event.text.strip().upper() not in self._keywords:
            return
        if phone is None:
            self._log.warning("receipt.opt_out_unresolved", user_id=mask_id(event.user_id))
            return
        self._suppress(phone, REASON_KEYWORD, summary)

    def _preference(self, event: PreferenceEvent, summary: ApplySummary) -> None:
        phone = self._phone_of(event.phone, event.user_id)
        if event.category != MARKETING:
            return
        if phone is None:
            self._log.warning(
                "receipt.preference_unresolved", value=event.value, user_id=mask_id(event.user_id)
            )
            return
        if event.value == "stop":
            self._suppress(phone, REASON_PREFERENCES, summary)
        elif self._deliveries.unsuppress(phone, REASON_PREFERENCES):
            summary.unsuppressed += 1
            self._log.info("recipient.unsuppressed", phone=phone, reason=REASON_PREFERENCES)

    # -- account-level stops ---------------------------------------------------------------

    def _template(self, event: TemplateStatusEvent, summary: ApplySummary) -> None:
        if event.event not in TEMPLATE_STOPS:
            self._log.info(
                "receipt.template_status", template=event.template_name, meta_event=event.event
            )
            return
        language = _language_key(event.language)
        label = (
            f"{event.template_name} ({event.language})" if event.language else event.template_name
        )
        text = f"Template {label} {event.event} by Meta"
        if event.reason and event.reason.upper() != "NONE":
            text += f": {event.reason}"
        for campaign in self._deliveries.running_campaigns():
            if campaign.template_name != event.template_name:
                continue
            if language is not None and _language_key(campaign.template_language) != language:
                continue
            self._pause(campaign, PauseReason.TEMPLATE, text, summary)

    def _quality(self, event: QualityEvent, summary: ApplySummary) -> None:
        if event.event not in QUALITY_STOPS:
            self._log.info(
                "receipt.quality_update", meta_event=event.event, limit=event.current_limit
            )
            return
        text = f"Phone number quality {event.event} by Meta"
        if event.current_limit:
            text += f" (limit {event.current_limit})"
        self._pause_all(PauseReason.QUALITY, text, summary)

    def _account(self, event: AccountEvent, summary: ApplySummary) -> None:
        lifted = event.event == "DISABLED_UPDATE" and event.ban_state == BAN_LIFTED
        if event.event not in ACCOUNT_STOPS or lifted:
            self._log.info(
                "receipt.account_update", meta_event=event.event, ban_state=event.ban_state
            )
            return
        detail = event.violation_type or event.ban_state or ", ".join(event.restrictions)
        text = f"Account {event.event} by Meta" + (f": {detail}" if detail else "")
        self._pause_all(PauseReason.ACCOUNT, text, summary)

    def _capability(self, event: CapabilityEvent) -> None:
        if event.messaging_limit is not None:
            self._metrics.messaging_limit.set(event.messaging_limit)
        self._log.info(
            "receipt.messaging_limit",
            messaging_limit=event.messaging_limit,
            max_phone_numbers=event.max_phone_numbers,
        )

    def _pause_all(self, reason: PauseReason, text: str, summary: ApplySummary) -> None:
        """One number and one account per deployment: every RUNNING campaign stops."""
        for campaign in self._deliveries.running_campaigns():
            self._pause(campaign, reason, text, summary)

    def _pause(
        self, campaign: Campaign, reason: PauseReason, text: str, summary: ApplySummary
    ) -> None:
        try:
            paused = self._campaigns.transition(
                campaign.campaign_id, Action.PAUSE, pause_reason=text
            )
        except InvalidTransition:
            return  # paused (or cancelled, completed) by someone else meanwhile
        if self._cache is not None:
            self._cache.put(campaign.campaign_id, paused)
        summary.paused += 1
        self._metrics.pauses.labels(reason=reason.value).inc()
        self._log.warning(
            "campaign.paused", campaign_id=campaign.campaign_id, reason=reason.value, text=text
        )
