"""``campaign-producer`` run in-process on the in-memory adapters: the CLI's real parsing,
core and rendering, with ``main(argv, build=...)`` handed a world of fakes (a ``MemoryStore``,
its bulk, two ``MemoryQueue``s, a ``FakeSender``). State is arranged and read back through
the fakes, in the DynamoDB attribute names the CLI's ``--json`` output also uses."""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
import structlog

from campaigns.domain.clock import SystemClock
from campaigns.domain.message import BatchMessage, decode
from campaigns.domain.models import (
    Campaign,
    CampaignStatus,
    DeliveryStatus,
    Recipient,
    RecipientStatus,
)
from campaigns.domain.tallies import is_tally
from campaigns.engine.executor import BatchExecutor
from campaigns.engine.metrics import EngineMetrics
from campaigns.engine.retry import RetryPolicy
from campaigns.memory import (
    FakeSender,
    MemoryBulk,
    MemoryCapGuard,
    MemoryQueue,
    MemoryStore,
    Unlimited,
)
from campaigns.operator.commands import Producer
from campaigns.settings import Settings, load_settings
from producer.cli import main

PROG = "campaign-producer: "
SANDBOX_TOKEN = "sandbox-token"
PHONE_NUMBER_ID = "100000000000001"
STATUSES = ("DRAFT", "RUNNING", "PAUSED", "COMPLETED", "CANCELLED")
# Every environment variable the settings read, cleared so the host cannot leak into a test.
SETTINGS_VARIABLES = [name.upper() for name in Settings.model_fields if name != "aws_region"]
# The campaign and recipient fields by the attribute names the store and the CLI use.
CAMPAIGN_FIELDS = {
    "sentCount": "sent_count",
    "failedCount": "failed_count",
    "unknownCount": "unknown_count",
    "totalRecipients": "total_recipients",
    "pauseReason": "pause_reason",
    "status": "status",
    "deliveredCount": "delivered_count",
    "readCount": "read_count",
    "deliveryFailedCount": "delivery_failed_count",
    "heldCount": "held_count",
}
RECIPIENT_FIELDS = {
    "status": "status",
    "attempts": "attempts",
    "haltedAttempts": "halted_attempts",
    "leaseOwner": "lease_owner",
    "leaseUntil": "lease_until",
    "messageId": "message_id",
    "errorCode": "error_code",
    "unknownReason": "unknown_reason",
    "deliveryStatus": "delivery_status",
    "deliveryErrorCode": "delivery_error_code",
    "pricingCategory": "pricing_category",
}


@pytest.fixture(autouse=True)
def own_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No host variable reaches the settings; structlog's config is restored after. Imported
    by the conftest of each suite that builds an HTTP app (tests/api, tests/webhooks)."""
    for name in SETTINGS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


def national(count: int, start: int = 0) -> list[str]:
    """Valid Indian mobile numbers as an operator types them (``9876500000``...)."""
    return [f"98765{n:05d}" for n in range(start, start + count)]


def e164(phone: str) -> str:
    return "91" + phone


def unknown_campaign_id() -> str:
    return f"cmp_{uuid.uuid4()}"


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str

    @property
    def data(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.out)
        return parsed

    @property
    def err_lines(self) -> list[str]:
        return self.err.splitlines()


@dataclass
class MemoryWorld:
    """The fakes one test's CLI runs share, and the wiring that builds the core on them."""

    store: MemoryStore = field(default_factory=MemoryStore)
    queue: MemoryQueue = field(default_factory=MemoryQueue)
    dlq: MemoryQueue = field(default_factory=MemoryQueue)
    sender: FakeSender = field(default_factory=FakeSender)
    guards: dict[int, MemoryCapGuard] = field(default_factory=dict)

    def build(self, settings: Settings) -> Producer:
        def executor() -> BatchExecutor:
            return BatchExecutor(
                store=self.store,
                guard=self.guards.setdefault(
                    settings.daily_cap, MemoryCapGuard(settings.daily_cap)
                ),
                sender=self.sender,
                limiter=Unlimited(),
                clock=SystemClock(),
                metrics=EngineMetrics(),
                owner="producer-test",
                lease_s=settings.lease_s,
                policy=RetryPolicy(max_send_attempts=settings.max_send_attempts),
            )

        return Producer(
            settings=settings,
            store=self.store,
            bulk=MemoryBulk(self.store),
            queue_factory=lambda: self.queue,
            dead_letter_factory=lambda: self.dlq,
            executor_factory=executor,
        )


def campaign_view(campaign: Campaign, import_lock: str | None) -> dict[str, Any]:
    """The campaign as its item reads: set attributes only (an absent one is not there)."""
    view = {k: v for k, v in campaign.to_public().items() if v is not None}
    if import_lock is not None:
        view["importLock"] = import_lock
    return view


def recipient_view(recipient: Recipient) -> dict[str, Any]:
    view: dict[str, Any] = {"phone": recipient.phone}
    for name, attribute in RECIPIENT_FIELDS.items():
        value = getattr(recipient, attribute)
        if value is not None:
            view[name] = value.value if isinstance(value, RecipientStatus) else value
    if recipient.params:
        view["params"] = [{"name": p.name, "value": p.value} for p in recipient.params]
    return view


class CliDriver:
    """Runs ``producer.cli.main`` in-process and drives it as an operator would; subclasses say
    how ``main`` is called (which adapters it is built on) and how state is read back."""

    def __init__(
        self, *, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        self._capsys = capsys
        self._monkeypatch = monkeypatch
        self._tmp_path = tmp_path
        self._files = itertools.count()

    def _main(self, argv: list[str]) -> int:
        raise NotImplementedError

    def campaign(self, campaign_id: str) -> dict[str, Any]:
        raise NotImplementedError

    def set_campaign(self, campaign_id: str, **values: Any) -> None:
        """Write the campaign's attributes as stored (a test's arrangement)."""
        raise NotImplementedError

    def set_recipient(self, campaign_id: str, phone: str, **values: Any) -> None:
        raise NotImplementedError

    # -- running the command -----------------------------------------------------------------

    def env(self, **variables: str) -> None:
        for name, value in variables.items():
            self._monkeypatch.setenv(name, value)

    def run(self, *args: str) -> Outcome:
        self._capsys.readouterr()
        try:
            code = self._main(list(args))
        except SystemExit as exc:  # argparse refuses before main's own handling
            code = exc.code if isinstance(exc.code, int) else 1
        captured = self._capsys.readouterr()
        return Outcome(code, captured.out, captured.err)

    def ok(self, *args: str) -> dict[str, Any]:
        outcome = self.run(*args, "--json")
        assert outcome.code == 0, outcome.err
        data = outcome.data
        assert data["success"] is True
        return data

    def refused(self, *args: str, code: int) -> str:
        """Run a command that must be refused; return its one stderr line."""
        outcome = self.run(*args)
        assert outcome.code == code, outcome
        assert len(outcome.err_lines) == 1, outcome.err
        assert outcome.err.startswith(PROG)
        assert "Traceback" not in outcome.out + outcome.err
        return outcome.err_lines[0]

    def csv(self, text: str | bytes) -> Path:
        path = self._tmp_path / f"recipients-{next(self._files)}.csv"
        if isinstance(text, str):
            path.write_text(text, encoding="utf-8")
        else:
            path.write_bytes(text)
        return path

    # -- getting campaigns into shape --------------------------------------------------------

    def create(self, name: str = "Diwali offer") -> str:
        campaign_id: str = self.ok("create", "--name", name, "--template", "diwali_offer")[
            "campaignId"
        ]
        return campaign_id

    def populate(self, campaign_id: str, text: str) -> dict[str, Any]:
        return self.ok("populate", campaign_id, str(self.csv(text)))

    def populated(self, phones: list[str]) -> str:
        campaign_id = self.create()
        self.populate(campaign_id, "".join(f"{phone}\n" for phone in phones))
        return campaign_id

    def campaign_in(self, status: str) -> str:
        """A campaign brought to ``status`` by the CLI itself."""
        if status == "COMPLETED":
            campaign_id = self.create()
            assert self.ok("start", campaign_id)["newStatus"] == "COMPLETED"  # nothing to send
            return campaign_id
        campaign_id = self.populated(national(2))
        steps = {"DRAFT": [], "RUNNING": ["start"], "PAUSED": ["start", "pause"]}
        for action in steps.get(status, ["cancel"]):
            self.ok(action, campaign_id, *(["--yes"] if action == "cancel" else []))
        assert self.campaign(campaign_id)["status"] == status
        return campaign_id

    # -- reading state back from the fakes ---------------------------------------------------


class Cli(CliDriver):
    """Runs ``producer.cli.main`` in-process on a ``MemoryWorld``."""

    def __init__(
        self, *, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        super().__init__(capsys=capsys, monkeypatch=monkeypatch, tmp_path=tmp_path)
        self.world = MemoryWorld()
        self.store = self.world.store
        self.sender = self.world.sender
        self.queue = self.world.queue
        self.dlq = self.world.dlq

    def _main(self, argv: list[str]) -> int:
        return main(argv, build=self.world.build)

    def core(self) -> Producer:
        """The operator core on this world's fakes, as the CLI builds it."""
        return self.world.build(load_settings())

    def campaign(self, campaign_id: str) -> dict[str, Any]:
        return campaign_view(
            self.store.require_campaign(campaign_id), self.store.import_lock(campaign_id)
        )

    def campaign_items(self) -> list[dict[str, Any]]:
        """Everything the campaigns table would hold: campaigns and suppressions."""
        campaigns = [self.campaign(c.campaign_id) for c in self.store.list_campaigns()]
        return campaigns + [{"phone": p} for p in self.store.suppressed]

    def recipients(self, campaign_id: str) -> dict[str, dict[str, Any]]:
        """SK (``USER#<digits>``) → item."""
        return {
            f"USER#{r.phone}": recipient_view(r) for r in self.store.iter_recipients(campaign_id)
        }

    def all_recipient_items(self) -> list[dict[str, Any]]:
        return [recipient_view(r) for r in self.store.recipients.values()]

    def statuses(self, campaign_id: str) -> dict[str, str]:
        return {
            sk.removeprefix("USER#"): item["status"]
            for sk, item in self.recipients(campaign_id).items()
        }

    def set_campaign(self, campaign_id: str, **values: Any) -> None:
        if "importLock" in values:
            lock = (values.pop("importLock"), int(values.pop("importLockUntil")))
            self.store.import_locks[campaign_id] = lock
        campaign = self.store.require_campaign(campaign_id)
        tallies = {name: values.pop(name) for name in list(values) if is_tally(name)}
        changes: dict[str, Any] = {CAMPAIGN_FIELDS[name]: value for name, value in values.items()}
        if tallies:
            changes["tallies"] = {**campaign.tallies, **tallies}
        if "status" in changes:
            changes["status"] = CampaignStatus(changes["status"])
        self.store.campaigns[campaign_id] = replace(campaign, **changes)

    def set_recipient(self, campaign_id: str, phone: str, **values: Any) -> None:
        changes = {RECIPIENT_FIELDS[name]: value for name, value in values.items()}
        if "status" in changes:
            changes["status"] = RecipientStatus(changes["status"])
        if "delivery_status" in changes:
            changes["delivery_status"] = DeliveryStatus(changes["delivery_status"])
        key = (campaign_id, phone)
        self.store.recipients[key] = replace(self.store.recipients[key], **changes)

    def drain(self, queue: MemoryQueue | None = None) -> list[str]:
        """Receive every visible message body (and keep them invisible for the test's life)."""
        bodies: list[str] = []
        while messages := (queue or self.queue).receive(10, 0, 600):
            bodies.extend(message.body for message in messages)
        return bodies

    def batches(self) -> list[BatchMessage]:
        return [decode(body) for body in self.drain()]
