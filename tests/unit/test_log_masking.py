"""Masking by value in the real log pipeline (campaigns.logging.configure, JSON to stderr): no
wamid (base64 of the recipient's number), BSUID or phone number reaches a log line whole,
whatever field carries it, and the values that are not personal stay as they were."""

from __future__ import annotations

import base64
import io
import json
import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st

from campaigns import logging as logs
from campaigns.domain.message import new_batch
from campaigns.domain.models import (
    Campaign,
    CampaignStatus,
    SendAccepted,
    TemplateMessage,
    TemplateParam,
    new_campaign_id,
)
from campaigns.domain.phones import mask
from campaigns.domain.redaction import mask_string, mask_value
from campaigns.domain.webhooks import parse
from campaigns.engine.cache import CampaignCache
from campaigns.engine.executor import BatchExecutor
from campaigns.engine.metrics import EngineMetrics
from campaigns.engine.receipts import ReceiptApplier
from campaigns.memory import FakeSender, ManualClock, MemoryCapGuard, MemoryStore, Unlimited

PHONE = "919876543210"
OTHER_PHONE = "447700900123"
BSUID = "IN.1502576394655843"
LEASE_S = 60.0


def wamid_for(phone: str, rng: random.Random) -> str:
    """A wamid shaped as Meta's: base64 of the number and a random message id, tagged."""
    message_id = "".join(rng.choice("0123456789ABCDEF") for _ in range(18)).encode()
    raw = b"\x1c\x18" + bytes([len(phone)]) + phone.encode() + b"\x15\x02\x00\x11\x18\x12"
    return "wamid." + base64.b64encode(raw + message_id + b"\x00").decode()


class LogLines:
    """The process's own logging set-up (``configure``: every processor and the JSON renderer)
    printing to a buffer instead of stderr; the lines it printed, parsed."""

    def __init__(self) -> None:
        self.buffer = io.StringIO()
        logs.configure("json", "debug")
        structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=self.buffer))

    def text(self) -> str:
        return self.buffer.getvalue()

    def __call__(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text().splitlines() if line]


@contextmanager
def configured() -> Iterator[LogLines]:
    saved = structlog.get_config()
    try:
        yield LogLines()
    finally:
        structlog.configure(**saved)


@pytest.fixture
def log_lines() -> Iterator[LogLines]:
    with configured() as lines:
        yield lines


def _raw_leaks(lines: list[dict[str, Any]], *secrets: str) -> list[str]:
    text = json.dumps(lines)
    return [secret for secret in secrets if secret in text]


# -- real code paths ---------------------------------------------------------------------------


class _LeaseStolen:
    """Meta accepts, but meanwhile the lease ran out, reconcile marked the recipient UNKNOWN,
    an operator requeued it and another consumer claimed it: this consumer's commit is lost."""

    def __init__(self, store: MemoryStore, clock: ManualClock, wamid: str) -> None:
        self.store, self.clock, self.wamid = store, clock, wamid

    def __call__(self, message: TemplateMessage) -> SendAccepted:
        campaign_id = message.callback_data.split(":", 1)[0] if message.callback_data else ""
        self.clock.advance(LEASE_S + 1)
        recipient = self.store.recipient(campaign_id, message.to)
        assert self.store.expire_lease(recipient, self.clock.now())
        assert self.store.requeue_unknown(self.store.recipient(campaign_id, message.to))
        lease_until = self.clock.now() + LEASE_S
        assert self.store.claim(campaign_id, message.to, "other-consumer", lease_until).claim
        return SendAccepted(self.wamid, "accepted")


def test_a_lost_commit_logs_neither_the_wamid_nor_the_number(log_lines: LogLines) -> None:
    clock = ManualClock()
    store = MemoryStore(clock=clock)
    campaign_id = new_campaign_id()
    store.add_campaign(Campaign(campaign_id, "c", "order_update", "en_US", CampaignStatus.RUNNING))
    store.add_recipients(campaign_id, [PHONE], params=(TemplateParam("1", "Asha"),))
    wamid = wamid_for(PHONE, random.Random(1))
    sender = FakeSender(default=_LeaseStolen(store, clock, wamid))
    executor = BatchExecutor(
        store=store,
        guard=MemoryCapGuard(cap=10),
        sender=sender,
        limiter=Unlimited(),
        clock=clock,
        metrics=EngineMetrics(),
        owner="consumer-under-test",
        lease_s=LEASE_S,
        cache=CampaignCache(store, clock),
    )

    executor.run(new_batch(campaign_id, [PHONE]))

    lines = log_lines()
    (lost,) = [line for line in lines if line["event"] == "recipient.commit_lost"]
    assert _raw_leaks(lines, wamid, wamid.removeprefix("wamid."), PHONE) == []
    assert lost["message_id"] == "wamid.…" + wamid[-6:], "its end is kept to correlate"
    assert lost["campaign_id"] == campaign_id, "a campaign id is not mangled"


def _status_body(wamid: str, phone: str, user_id: str) -> str:
    status = {
        "id": wamid,
        "status": "delivered",
        "timestamp": "1767225700",
        "recipient_id": phone,
        "recipient_user_id": user_id,
        "biz_opaque_callback_data": f"{new_campaign_id()}:{phone}",
    }
    value = {"messaging_product": "whatsapp", "statuses": [status]}
    entry = {"id": "102290129340398", "changes": [{"field": "messages", "value": value}]}
    return json.dumps({"object": "whatsapp_business_account", "entry": [entry]})


def test_an_unmatched_receipt_logs_neither_the_wamid_the_number_nor_the_bsuid(
    log_lines: LogLines,
) -> None:
    store = MemoryStore(clock=ManualClock())
    applier = ReceiptApplier(store, store, EngineMetrics(), frozenset({"STOP"}))
    wamid = wamid_for(OTHER_PHONE, random.Random(2))

    summary = applier.apply(parse(_status_body(wamid, OTHER_PHONE, BSUID)).events, [])

    assert summary.unmatched == 1
    lines = log_lines()
    assert [line["event"] for line in lines] == ["receipt.unmatched"]
    assert _raw_leaks(lines, wamid, OTHER_PHONE, BSUID) == []
    assert lines[0]["phone"] == mask(OTHER_PHONE)


def test_an_exceptions_text_and_traceback_are_masked(log_lines: LogLines) -> None:
    wamid = wamid_for(PHONE, random.Random(3))
    log = logs.get_logger()
    try:
        raise RuntimeError(f"commit of {wamid} for +{PHONE} refused")
    except RuntimeError as exc:
        log.exception("receipts.apply_failed", error=f"{type(exc).__name__}: {exc}")

    lines = log_lines()
    assert _raw_leaks(lines, wamid, PHONE) == []
    assert "+" + mask(PHONE) in lines[0]["error"]
    assert "RuntimeError" in lines[0]["exception"]


def test_values_that_are_not_personal_are_logged_as_they_are(log_lines: LogLines) -> None:
    fields = {
        "campaign_id": "cmp_1234567-0000-4000-8000-123456789012",
        "bare_uuid": "12345678-1234-4234-8234-123456789012",
        "hex": "3f2a1234567b9c0d",
        "error_code": "META_131026",
        "code": "131026",
        "at": "2026-01-01T00:00:00.123456+00:00",
        "epoch": "1767225600.5",
        "duration_s": 12.5,
        "sent": 1234567890,
        "held": True,
        "counter": "DAILY_COUNTER#2026-01-01#s2",
        "url": "https://graph.facebook.com/v25.0/106540352242922/messages",
        "consumer": "ip-10-0-1-7:1234567:12345678",  # host, pid, suffix: our own id
        "owner": "ip-10-0-1-7:1234567:12345678",
    }

    logs.get_logger().info("batch.completed", **fields)

    (line,) = log_lines()
    assert {key: line[key] for key in fields} == fields


# -- any field, any shape ----------------------------------------------------------------------

phones = st.builds(
    lambda cc, rest: cc + rest,
    st.sampled_from(["1", "44", "91", "55", "234", "62"]),
    st.text(alphabet="0123456789", min_size=8, max_size=11),
)
SEPARATORS = " :=,;()[]{}'\"#@\n\t"
# Text around a value: the separators a log message or an error puts next to one.
glue = st.text(alphabet=SEPARATORS, max_size=6)
separator = st.text(alphabet=SEPARATORS, min_size=1, max_size=6)


@st.composite
def embedded(draw: st.DrawFn) -> tuple[Any, list[str]]:
    """A log field holding phones and wamids in free text, nested in dicts and lists."""
    found: list[str] = []

    def text() -> str:
        phone = draw(phones)
        plus = draw(st.sampled_from(["", "+"]))
        wamid = wamid_for(phone, random.Random(draw(st.integers(0, 2**32))))
        found.extend([phone, wamid.removeprefix("wamid.")])
        parts = [plus + phone, wamid]
        draw(st.randoms(use_true_random=False)).shuffle(parts)
        return str(draw(glue) + parts[0] + draw(separator) + parts[1] + draw(glue))

    shape = draw(st.sampled_from(["str", "dict", "list", "nested"]))
    if shape == "str":
        return text(), found
    if shape == "dict":
        return {"to": text(), "detail": text()}, found
    if shape == "list":
        return [text(), 3, text()], found
    return {"errors": [{"message": text(), "href": None}], "keys": {text(): text()}}, found


@settings(max_examples=150, deadline=None)
@given(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12).filter(
        lambda key: key not in {"event", "level", "timestamp"}
    ),
    embedded(),
)
def test_phones_and_wamids_in_any_field_never_reach_a_log_line_whole(
    key: str, field: tuple[Any, list[str]]
) -> None:
    value, secrets = field
    with configured() as lines:
        structlog.get_logger().info("receipt.unmatched", **{key: value})

    assert [secret for secret in secrets if secret in lines.text()] == []
    assert len(lines()) == 1


@given(phones, st.integers(0, 2**32))
def test_masking_a_masked_value_changes_nothing(phone: str, seed: int) -> None:
    text = f"to {phone} id {wamid_for(phone, random.Random(seed))} user {BSUID}"
    once = mask_string(text)
    assert mask_string(once) == once
    assert mask_value({"x": [once]}) == {"x": [once]}
