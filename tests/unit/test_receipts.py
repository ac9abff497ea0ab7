"""The receipt applier on the in-memory store: delivery truth, UNKNOWN resolved, opt-outs and
their effect on populate and sending, and Meta's template/quality/account stops."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from campaigns.domain.errors import AmbiguousSend
from campaigns.domain.message import new_batch
from campaigns.domain.models import (
    Campaign,
    CampaignStatus,
    DeliveryStatus,
    RecipientStatus,
    new_campaign_id,
)
from campaigns.domain.webhooks import parse
from campaigns.engine.cache import CampaignCache
from campaigns.engine.executor import BatchExecutor
from campaigns.engine.metrics import EngineMetrics
from campaigns.engine.outcomes import BatchOutcome
from campaigns.engine.receipts import ApplySummary, ReceiptApplier
from campaigns.memory import FakeSender, ManualClock, MemoryCapGuard, MemoryStore, Unlimited
from tests.unit.producer_support import PHONE_NUMBER_ID, SANDBOX_TOKEN, Cli, e164

PHONES = [f"91900000{i:04d}" for i in range(6)]
BSUID = "IN.1502576394655843"
T0 = 1_767_225_700


def envelope(field_name: str, value: dict[str, Any]) -> str:
    return json.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [
                {"id": "102290129340398", "changes": [{"field": field_name, "value": value}]}
            ],
        }
    )


def status_body(
    wamid: str,
    status: str,
    at_s: int,
    *,
    callback: str | None = None,
    phone: str | None = None,
    user_id: str | None = None,
    code: int | None = None,
) -> str:
    item: dict[str, Any] = {"id": wamid, "status": status, "timestamp": str(at_s)}
    if callback is not None:
        item["biz_opaque_callback_data"] = callback
    if phone is not None:
        item["recipient_id"] = phone
    if user_id is not None:
        item["recipient_user_id"] = user_id
    if code is not None:
        item["errors"] = [{"code": code, "title": "failed"}]
    if status in ("sent", "delivered"):
        item["pricing"] = {"billable": True, "pricing_model": "PMP", "category": "marketing"}
    return envelope("messages", {"messaging_product": "whatsapp", "statuses": [item]})


def preference_body(value: str, *, phone: str | None = None, user_id: str | None = None) -> str:
    item: dict[str, Any] = {"category": "marketing_messages", "value": value, "timestamp": T0}
    if phone:
        item["wa_id"] = phone
    if user_id:
        item["user_id"] = user_id
    return envelope("user_preferences", {"user_preferences": [item]})


def text_body(text: str, *, phone: str | None = None, user_id: str | None = None) -> str:
    message: dict[str, Any] = {"id": "wamid.in", "type": "text", "text": {"body": text}}
    contact: dict[str, Any] = {"profile": {"name": "x"}}
    if phone:
        message["from"] = contact["wa_id"] = phone
    if user_id:
        message["from_user_id"] = contact["user_id"] = user_id
    return envelope("messages", {"contacts": [contact], "messages": [message]})


def template_body(event: str, name: str, language: str | None, reason: str = "NONE") -> str:
    value: dict[str, Any] = {"event": event, "message_template_name": name, "reason": reason}
    if language:
        value["message_template_language"] = language
    return envelope("message_template_status_update", value)


@dataclass
class World:
    """A MemoryStore with RUNNING campaigns sent through the real executor (wamids and callback
    data as the executor sets them), and the applier on it."""

    store: MemoryStore = field(default_factory=lambda: MemoryStore(clock=ManualClock()))
    sender: FakeSender = field(default_factory=FakeSender)
    metrics: EngineMetrics = field(default_factory=EngineMetrics)
    keywords: frozenset[str] = frozenset({"STOP", "UNSUBSCRIBE"})

    def __post_init__(self) -> None:
        self.clock = ManualClock()
        self.cache = CampaignCache(self.store, self.clock)
        self.applier = ReceiptApplier(
            self.store, self.store, self.metrics, self.keywords, cache=self.cache
        )

    def executor(self) -> BatchExecutor:
        return BatchExecutor(
            store=self.store,
            guard=MemoryCapGuard(0),
            sender=self.sender,
            limiter=Unlimited(),
            clock=self.clock,
            metrics=self.metrics,
            owner="test",
            lease_s=60,
            cache=self.cache,
        )

    def campaign(
        self,
        phones: list[str] = PHONES,
        template: str = "order_update",
        language: str = "en_US",
        campaign_id: str | None = None,
    ) -> str:
        campaign_id = campaign_id or new_campaign_id()
        self.store.add_campaign(
            Campaign(campaign_id, "c", template, language, CampaignStatus.RUNNING)
        )
        self.store.add_recipients(campaign_id, list(phones))
        return campaign_id

    def send(self, campaign_id: str, phones: list[str]) -> dict[str, str]:
        """Run the executor on one batch; phone → wamid of what it sent."""
        self.executor().run(new_batch(campaign_id, phones))
        return {phone: wamid for phone, wamid in self.sender.accepted if phone in phones}

    def apply(self, *bodies: str) -> ApplySummary:
        total = ApplySummary()
        for body in bodies:
            parsed = parse(body)
            one = self.applier.apply(parsed.events, parsed.skipped)
            for name in vars(total):
                setattr(total, name, getattr(total, name) + getattr(one, name))
        return total

    def sample(self, name: str, **labels: str) -> float:
        return self.metrics.registry.get_sample_value(name, labels) or 0.0


# -- delivery truth ----------------------------------------------------------------------------


CAMPAIGN_ID = "cmp_2f1d3c4b-5a69-4788-9a0b-1c2d3e4f5a6b"


def status_stream(wamids: dict[str, str]) -> list[str]:
    """Every status Meta sends for six recipients: the whole stream, in its natural order."""
    p = PHONES

    def s(phone: str, status: str, at: int, **kw: Any) -> str:
        return status_body(wamids[phone], status, T0 + at, callback=f"{CAMPAIGN_ID}:{phone}", **kw)

    return [
        s(p[0], "sent", 1),
        s(p[0], "delivered", 2),
        s(p[0], "read", 3),
        s(p[1], "sent", 1),
        s(p[1], "delivered", 5),
        s(p[2], "sent", 1),
        s(p[2], "read", 4),  # delivered skipped: read implies it
        s(p[3], "sent", 1),
        s(p[3], "failed", 2, code=131026),
        s(p[4], "failed", 2, code=131049),
        s(p[4], "delivered", 9),  # delivered after all
        # no callback data: found by the wamid; a BSUID and no phone
        status_body(wamids[p[5]], "sent", T0 + 1, user_id=BSUID),
        status_body(wamids[p[5]], "read", T0 + 6, user_id=BSUID),
        s(p[5], "failed", 7, code=131026),  # failed after read: ignored
    ]


def _world_with_sent_campaign() -> tuple[World, dict[str, str]]:
    world = World()
    world.campaign(campaign_id=CAMPAIGN_ID)
    return world, world.send(CAMPAIGN_ID, PHONES)


def _end_state(world: World) -> tuple[Any, ...]:
    campaign = world.store.get_campaign(CAMPAIGN_ID)
    # The lease owner carries a fresh token per claim: the same claims, not the same tokens.
    recipients = tuple(
        replace(world.store.recipient(CAMPAIGN_ID, p), lease_owner=None) for p in PHONES
    )
    return campaign, recipients, dict(world.store.user_links), dict(world.store.suppressed)


def test_the_status_stream_in_order_gives_the_documented_counters() -> None:
    world, wamids = _world_with_sent_campaign()

    world.apply(*status_stream(wamids))

    campaign = world.store.get_campaign(CAMPAIGN_ID)
    assert campaign is not None
    assert (campaign.delivered_count, campaign.read_count, campaign.delivery_failed_count) == (
        5,
        3,
        1,
    )
    assert (campaign.sent_count, campaign.unknown_count) == (6, 0)
    statuses = [world.store.recipient(CAMPAIGN_ID, p).delivery_status for p in PHONES]
    assert statuses == [
        DeliveryStatus.READ,
        DeliveryStatus.DELIVERED,
        DeliveryStatus.READ,
        DeliveryStatus.FAILED,
        DeliveryStatus.DELIVERED,
        DeliveryStatus.READ,
    ]
    assert world.store.recipient(CAMPAIGN_ID, PHONES[3]).delivery_error_code == "META_131026"
    assert world.store.recipient(CAMPAIGN_ID, PHONES[5]).user_id == BSUID
    assert world.store.user_links == {BSUID: PHONES[5]}  # the wamid named the phone
    # p4's 131049 was voided by its later delivered; p5's failed came after read.
    assert campaign.delivery_failures == {"META_131026": 1}
    assert campaign.billed == {("marketing", "91"): 5}  # every delivered one, once
    # The metric counts the failures as they happened (p4's included).
    assert world.sample("campaign_delivery_failures_total", error_code="META_131026") == 1
    assert world.sample("campaign_delivery_failures_total", error_code="META_131049") == 1


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_a_replay_of_the_whole_stream_in_random_order_with_duplicates_gives_one_end_state(
    seed: int,
) -> None:
    reference, wamids = _world_with_sent_campaign()
    stream = status_stream(wamids)
    reference.apply(*stream)
    rng = random.Random(seed)
    replayed = [body for body in stream for _ in range(rng.randint(1, 3))]
    rng.shuffle(replayed)

    world, again = _world_with_sent_campaign()
    assert again == wamids
    world.apply(*replayed)

    assert _end_state(world) == _end_state(reference)


def test_an_unknown_recipient_is_resolved_exactly_once() -> None:
    world = World()
    campaign_id = world.campaign(PHONES[:1])
    world.sender.script[PHONES[0]] = [AmbiguousSend("META_TIMEOUT", "read timeout")]
    world.send(campaign_id, PHONES[:1])
    assert world.store.recipient(campaign_id, PHONES[0]).status is RecipientStatus.UNKNOWN
    callback = f"{campaign_id}:{PHONES[0]}"

    summary = world.apply(
        *[
            status_body("wamid.late", s, T0 + i, callback=callback)
            for i, s in enumerate(["sent", "sent", "delivered", "read", "delivered"])
        ]
    )

    recipient = world.store.recipient(campaign_id, PHONES[0])
    campaign = world.store.get_campaign(campaign_id)
    assert campaign is not None
    assert (recipient.status, recipient.message_id) == (RecipientStatus.SENT, "wamid.late")
    assert (campaign.unknown_count, campaign.sent_count) == (0, 1)
    assert summary.resolved_unknown == 1
    assert world.sample("campaign_unknown_resolved_total") == 1


def test_a_status_for_no_recipient_of_ours_is_unmatched_logged_masked_and_counted() -> None:
    world = World()
    wamid = "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJDQjZCMzlEQUE4OTJBMTE4RTUA"

    with capture_logs() as logs:
        summary = world.apply(
            status_body(wamid, "delivered", T0, callback="someone-else", phone=PHONES[0]),
            status_body("wamid.x2", "read", T0, callback=f"{new_campaign_id()}:{PHONES[1]}"),
        )

    assert summary.unmatched == 2
    assert world.sample("campaign_receipts_unmatched_total") == 2
    unmatched = [e for e in logs if e["event"] == "receipt.unmatched"]
    assert len(unmatched) == 2
    assert wamid not in str(unmatched)
    assert unmatched[0]["message_id"].endswith(wamid[-6:])


def test_deliveries_are_counted_only_when_a_report_changed_something() -> None:
    world, wamids = _world_with_sent_campaign()
    callback = f"{CAMPAIGN_ID}:{PHONES[0]}"
    delivered = status_body(wamids[PHONES[0]], "delivered", T0, callback=callback)

    world.apply(delivered, delivered, delivered)

    assert world.sample("campaign_deliveries_total", status="DELIVERED") == 1
    assert world.sample("campaign_receipts_applied_total", kind="status") == 3


# -- opt-outs ------------------------------------------------------------------------------------


def test_131050_after_acceptance_suppresses_the_number() -> None:
    world, wamids = _world_with_sent_campaign()

    world.apply(
        status_body(
            wamids[PHONES[0]], "failed", T0, callback=f"{CAMPAIGN_ID}:{PHONES[0]}", code=131050
        )
    )

    assert world.store.suppressed == {PHONES[0]: {"META_131050"}}
    recipient = world.store.recipient(CAMPAIGN_ID, PHONES[0])
    assert recipient.delivery_error_code == "META_131050"
    assert world.sample("campaign_suppressions_total", reason="META_131050") == 1


def test_131049_is_recorded_and_suppresses_nothing() -> None:
    world, wamids = _world_with_sent_campaign()

    world.apply(
        status_body(
            wamids[PHONES[0]], "failed", T0, callback=f"{CAMPAIGN_ID}:{PHONES[0]}", code=131049
        )
    )

    assert world.store.recipient(CAMPAIGN_ID, PHONES[0]).delivery_error_code == "META_131049"
    assert world.store.suppressed == {}


def test_user_preferences_stop_suppresses_by_number_or_by_a_linked_bsuid() -> None:
    world = World()

    world.apply(preference_body("stop", phone=PHONES[0]))
    world.apply(text_body("hello", phone=PHONES[1], user_id=BSUID))  # the contact links them
    world.apply(preference_body("stop", user_id=BSUID))

    assert world.store.suppressed == {
        PHONES[0]: {"user_preferences"},
        PHONES[1]: {"user_preferences"},
    }


def test_a_stop_for_an_unknown_bsuid_is_logged_and_suppresses_nothing() -> None:
    world = World()

    with capture_logs() as logs:
        world.apply(preference_body("stop", user_id=BSUID))

    assert world.store.suppressed == {}
    assert [e["event"] for e in logs if "unresolved" in e["event"]] == [
        "receipt.preference_unresolved"
    ]


def test_resume_lifts_only_a_user_preferences_suppression() -> None:
    world = World()
    world.store.suppress(PHONES[1], "META_131050")
    world.store.suppress(PHONES[2], "keyword")
    world.apply(preference_body("stop", phone=PHONES[0]))

    summary = world.apply(*[preference_body("resume", phone=p) for p in PHONES[:3]])

    assert summary.unsuppressed == 1
    assert world.store.suppressed == {PHONES[1]: {"META_131050"}, PHONES[2]: {"keyword"}}


def test_a_keyword_stop_stands_after_a_user_preferences_stop_and_resume() -> None:
    world = World()
    world.apply(text_body("STOP", phone=PHONES[0]))
    world.apply(preference_body("stop", phone=PHONES[0]))

    summary = world.apply(preference_body("resume", phone=PHONES[0]))

    assert summary.unsuppressed == 1  # the user_preferences reason is lifted...
    assert world.store.suppressed == {PHONES[0]: {"keyword"}}  # ...the keyword opt-out stands


@pytest.mark.parametrize(
    ("text", "suppressed"),
    [
        ("STOP", True),
        ("  stop \n", True),
        ("Unsubscribe", True),
        ("stop please", False),
        ("please STOP", False),
        ("hello", False),
    ],
)
def test_an_inbound_keyword_suppresses_only_when_it_is_the_whole_message(
    text: str, suppressed: bool
) -> None:
    world = World()

    world.apply(text_body(text, phone=PHONES[0]))

    assert world.store.suppressed == ({PHONES[0]: {"keyword"}} if suppressed else {})


def test_a_keyword_from_a_username_user_reaches_the_number_through_the_status_link() -> None:
    world, wamids = _world_with_sent_campaign()
    # A status with the BSUID, tied to the number by our callback data, links them.
    world.apply(
        status_body(
            wamids[PHONES[2]], "delivered", T0, callback=f"{CAMPAIGN_ID}:{PHONES[2]}", user_id=BSUID
        )
    )

    world.apply(text_body("stop", user_id=BSUID))  # the number withheld

    assert world.store.suppressed == {PHONES[2]: {"keyword"}}


def test_a_users_later_statuses_do_not_read_the_bsuid_link_again() -> None:
    world, wamids = _world_with_sent_campaign()
    reads: list[str] = []
    looked_up = world.store.phone_for_user

    def counting(user_id: str) -> str | None:
        reads.append(user_id)
        return looked_up(user_id)

    world.store.phone_for_user = counting  # type: ignore[method-assign]
    callback = f"{CAMPAIGN_ID}:{PHONES[2]}"
    for status in ("sent", "delivered", "read"):
        world.apply(status_body(wamids[PHONES[2]], status, T0, callback=callback, user_id=BSUID))

    assert reads == [BSUID]  # the first status only
    assert looked_up(BSUID) == PHONES[2]


@pytest.mark.parametrize(
    "opt_out",
    [
        status_body(
            "wamid.z", "failed", T0, callback=f"{CAMPAIGN_ID}:{e164('9876500002')}", code=131050
        ),
        preference_body("stop", phone=e164("9876500002")),
        text_body("STOP", phone=e164("9876500002")),
    ],
    ids=["131050", "user_preferences", "keyword"],
)
def test_an_opted_out_number_is_skipped_by_populate_and_never_sent_to(
    cli: Cli, opt_out: str
) -> None:
    cli.env(META_ACCESS_TOKEN=SANDBOX_TOKEN, META_PHONE_NUMBER_ID=PHONE_NUMBER_ID)
    metrics = EngineMetrics()
    applier = ReceiptApplier(cli.store, cli.store, metrics, frozenset({"STOP"}))
    parsed = parse(opt_out)
    applier.apply(parsed.events, parsed.skipped)
    campaign_id = cli.create()

    result = cli.populate(campaign_id, "9876500001\n9876500002\n")
    cli.ok("start", campaign_id)
    cli.ok("execute-batch", campaign_id)

    assert (result["inserted"], result["suppressed"]) == (1, 1)
    assert [m.to for m in cli.world.sender.sent] == [e164("9876500001")]


# -- Meta's stops ------------------------------------------------------------------------------


def test_a_paused_template_pauses_the_running_campaigns_using_it_and_nothing_is_sent_after() -> (
    None
):
    world = World()
    using = world.campaign(PHONES[:3])
    other_template = world.campaign(PHONES[3:4], template="welcome")
    other_language = world.campaign(PHONES[4:5], language="hi")
    world.send(using, PHONES[:1])  # primes the executor's campaign cache as RUNNING
    sent_before = len(world.sender.sent)

    world.apply(template_body("PAUSED", "order_update", "en_US", reason="LOW_QUALITY"))
    summary = world.executor().run(new_batch(using, PHONES[1:3]))

    campaign = world.store.get_campaign(using)
    assert campaign is not None
    assert campaign.status is CampaignStatus.PAUSED
    assert campaign.pause_reason == "Template order_update (en_US) PAUSED by Meta: LOW_QUALITY"
    assert summary.outcome is BatchOutcome.NOT_RUNNING
    assert len(world.sender.sent) == sent_before  # the sender got no request after the pause
    for untouched in (other_template, other_language):
        assert world.store.get_campaign(untouched).status is CampaignStatus.RUNNING  # type: ignore[union-attr]
    assert world.sample("campaign_pauses_total", reason="template") == 1


@pytest.mark.parametrize("event", ["DISABLED", "REJECTED"])
def test_a_disabled_or_rejected_template_pauses_it_whatever_the_language(event: str) -> None:
    world = World()
    english = world.campaign(PHONES[:1])
    hindi = world.campaign(PHONES[1:2], language="hi")

    world.apply(template_body(event, "order_update", None))

    for campaign_id in (english, hindi):
        campaign = world.store.get_campaign(campaign_id)
        assert campaign is not None
        assert campaign.status is CampaignStatus.PAUSED
        assert campaign.pause_reason == f"Template order_update {event} by Meta"


def test_an_approved_template_and_a_redelivered_pause_change_nothing_more() -> None:
    world = World()
    campaign_id = world.campaign(PHONES[:1])
    pause = template_body("PAUSED", "order_update", "en_US")

    world.apply(template_body("APPROVED", "order_update", "en_US"))
    assert world.store.get_campaign(campaign_id).status is CampaignStatus.RUNNING  # type: ignore[union-attr]
    world.apply(pause, pause)

    assert world.store.get_campaign(campaign_id).status is CampaignStatus.PAUSED  # type: ignore[union-attr]
    assert world.sample("campaign_pauses_total", reason="template") == 1


@pytest.mark.parametrize(
    ("field_name", "value", "reason"),
    [
        (
            "phone_number_quality_update",
            {"event": "FLAGGED", "current_limit": "TIER_1K"},
            "quality",
        ),
        ("phone_number_quality_update", {"event": "DOWNGRADE"}, "quality"),
        ("account_update", {"event": "ACCOUNT_RESTRICTION"}, "account"),
        (
            "account_update",
            {"event": "ACCOUNT_VIOLATION", "violation_info": {"violation_type": "SPAM"}},
            "account",
        ),
        (
            "account_update",
            {"event": "DISABLED_UPDATE", "ban_info": {"waba_ban_state": "DISABLE"}},
            "account",
        ),
    ],
)
def test_a_quality_or_account_stop_pauses_every_running_campaign(
    field_name: str, value: dict[str, Any], reason: str
) -> None:
    world = World()
    running = [world.campaign(PHONES[:1]), world.campaign(PHONES[1:2], template="welcome")]
    draft = new_campaign_id()
    world.store.add_campaign(Campaign(draft, "d", "order_update", "en_US", CampaignStatus.DRAFT))

    world.apply(envelope(field_name, value))

    for campaign_id in running:
        campaign = world.store.get_campaign(campaign_id)
        assert campaign is not None
        assert campaign.status is CampaignStatus.PAUSED
        assert campaign.pause_reason is not None
        assert value["event"] in campaign.pause_reason
    assert world.store.get_campaign(draft).status is CampaignStatus.DRAFT  # type: ignore[union-attr]
    assert world.sample("campaign_pauses_total", reason=reason) == 2


@pytest.mark.parametrize(
    ("field_name", "value"),
    [
        ("phone_number_quality_update", {"event": "UPGRADE", "current_limit": "TIER_10K"}),
        ("phone_number_quality_update", {"event": "UNFLAGGED"}),
        (
            "account_update",
            {"event": "DISABLED_UPDATE", "ban_info": {"waba_ban_state": "REINSTATE"}},
        ),
        ("account_update", {"event": "PARTNER_ADDED"}),
    ],
)
def test_good_news_from_meta_pauses_nothing(field_name: str, value: dict[str, Any]) -> None:
    world = World()
    campaign_id = world.campaign(PHONES[:1])

    world.apply(envelope(field_name, value))

    assert world.store.get_campaign(campaign_id).status is CampaignStatus.RUNNING  # type: ignore[union-attr]


def test_a_new_messaging_limit_is_a_gauge() -> None:
    world = World()

    world.apply(
        envelope("business_capability_update", {"max_daily_conversations_per_business": 2000})
    )
    assert world.sample("campaign_messaging_limit") == 2000
    world.apply(
        envelope(
            "business_capability_update", {"max_daily_conversations_per_business": "TIER_UNLIMITED"}
        )
    )

    assert world.sample("campaign_messaging_limit") == -1
    assert world.sample("campaign_receipts_applied_total", kind="capability") == 2


def test_skipped_items_are_counted_by_kind() -> None:
    world = World()

    summary = world.apply(
        envelope("messages", {"statuses": [{"id": "w", "status": "played", "timestamp": "1"}]}),
        envelope("history", {}),
    )

    assert summary.skipped == 2
    assert world.sample("campaign_receipt_items_skipped_total", kind="malformed") == 1
    assert world.sample("campaign_receipt_items_skipped_total", kind="unhandled field") == 1
