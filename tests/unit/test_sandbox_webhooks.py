"""The emulator's status webhooks: signed, in Meta's shape, realistic (duplicates, newest first,
read without delivered, failures after the 200, username users), retried when the receiver
fails or is down, bounded, seeded, and Meta's other webhooks on demand."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import re
import socket
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from sandbox.cloudapi import (
    SIGNATURE_HEADER,
    CloudApiEmulator,
    DeliveryRule,
    SandboxControl,
    WebhookConfig,
    bsuid_for,
)
from sandbox.cloudapi.cli import _build_parser, _load_rules, _webhook_config
from sandbox.cloudapi.deliveryrules import DeliveryDecision, DeliveryRuleBook
from sandbox.cloudapi.records import AcceptedMessage
from sandbox.cloudapi.statusplan import plan
from sandbox.faults import FaultRule
from tests.harness import wait_until

TOKEN = "test-token"
SECRET = "test-app-secret"
PHONE_NUMBER_ID = "106540352242922"
SEND_PATH = f"/v25.0/{PHONE_NUMBER_ID}/messages"
WAIT_S = 10.0
BSUID = re.compile(r"[A-Z]{2}\.[0-9]{16}")
# Every status at once, nothing random unless a test asks: the shape, not the timing, is tested.
IMMEDIATE: dict[str, Any] = {
    "sent_delay_s": (0.0, 0.0),
    "delivered_delay_s": (0.0, 0.0),
    "read_delay_s": (0.0, 0.0),
    "duplicate_delay_s": (0.0, 0.0),
    "read_share": 1.0,
    "duplicate_probability": 0.0,
    "out_of_order_probability": 0.0,
    "read_without_delivered_probability": 0.0,
    "batch_probability": 0.0,
    "retry_base_s": 0.01,
}


# -- a receiver like the real one: checks the signature, counts what it got ------------------


@dataclass(frozen=True)
class Post:
    body: dict[str, Any]
    signed: bool
    answered: int

    @property
    def field(self) -> str:
        return str(self.body["entry"][0]["changes"][0]["field"])

    @property
    def value(self) -> dict[str, Any]:
        value = self.body["entry"][0]["changes"][0]["value"]
        assert isinstance(value, dict)
        return value


class WebhookReceiver:
    """A tiny webhook receiver on 127.0.0.1: verifies each POST's ``X-Hub-Signature-256``,
    answers ``fail_first`` POSTs with ``fail_status`` (then 200), keeps every POST. Created
    bound but not listening when ``listening=False`` (connections are refused until
    ``listen()``)."""

    def __init__(
        self,
        secret: str = SECRET,
        *,
        fail_first: int = 0,
        fail_status: int = 500,
        listening: bool = True,
        hang: bool = False,
        drop_kept_alive: bool = False,
    ) -> None:
        self.secret = secret
        self.drop_kept_alive = drop_kept_alive
        self.fail_first = fail_first
        self.fail_status = fail_status
        self.hang = hang
        self.posts: list[Post] = []
        self.changed = threading.Condition()
        self.release = threading.Event()
        self.hanging = threading.Event()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port = int(self._sock.getsockname()[1])
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        if listening:
            self.listen()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhooks/whatsapp"

    def listen(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if receiver.hang:
                    receiver.hanging.set()
                    receiver.release.wait(WAIT_S)
                    return
                status = receiver.record(raw, self.headers.get(SIGNATURE_HEADER, ""))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                # Close without saying so: the client finds out on its next request.
                self.close_connection = receiver.drop_kept_alive

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler, bind_and_activate=False)
        server.socket.close()
        server.socket = self._sock  # created with IPPROTO_TCP, see the contract
        server.daemon_threads = True
        server.server_activate()
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def record(self, raw: bytes, signature: str) -> int:
        expected = "sha256=" + hmac.new(self.secret.encode(), raw, hashlib.sha256).hexdigest()
        signed = hmac.compare_digest(signature, expected)
        with self.changed:
            failing = len(self.posts) < self.fail_first
            answered = self.fail_status if failing else (200 if signed else 401)
            self.posts.append(Post(json.loads(raw), signed, answered))
            self.changed.notify_all()
        return answered

    def close(self) -> None:
        self.release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        else:
            self._sock.close()

    # -- what arrived --------------------------------------------------------------------

    def accepted(self) -> list[Post]:
        with self.changed:
            return [p for p in self.posts if p.answered == 200]

    def statuses(self) -> list[dict[str, Any]]:
        """Every status of every POST answered 200, in arrival order."""
        return [s for p in self.accepted() for s in p.value.get("statuses", [])]

    def wait_for(self, condition: Callable[[WebhookReceiver], bool]) -> None:
        with self.changed:
            if not self.changed.wait_for(lambda: condition(self), WAIT_S):
                raise AssertionError(f"not received in {WAIT_S} s: {self.posts!r}")

    def wait_for_statuses(self, count: int) -> list[dict[str, Any]]:
        self.wait_for(lambda r: len(r._statuses_locked()) >= count)
        return self.statuses()

    def _statuses_locked(self) -> list[dict[str, Any]]:
        return [s for p in self.posts if p.answered == 200 for s in p.value.get("statuses", [])]


@pytest.fixture
def receivers() -> Iterator[Callable[..., WebhookReceiver]]:
    made: list[WebhookReceiver] = []

    def make(**kwargs: Any) -> WebhookReceiver:
        receiver = WebhookReceiver(**kwargs)
        made.append(receiver)
        return receiver

    yield make
    for receiver in made:
        receiver.close()


@pytest.fixture
def receiver(receivers: Callable[..., WebhookReceiver]) -> WebhookReceiver:
    return receivers()


@pytest.fixture
def emulators() -> Iterator[Callable[..., CloudApiEmulator]]:
    started: list[CloudApiEmulator] = []

    def make(
        url: str | None, *, delivery_rules: list[DeliveryRule] | None = None, **options: Any
    ) -> CloudApiEmulator:
        seed = options.pop("seed", 7)
        config = WebhookConfig(url=url, app_secret=SECRET, **(IMMEDIATE | options))
        emulator = CloudApiEmulator(
            access_token=TOKEN,
            seed=seed,
            webhooks=config,
            delivery_rules=delivery_rules or (),
        )
        emulator.start()
        started.append(emulator)
        return emulator

    yield make
    for emulator in started:
        emulator.stop()


def send(
    emulator: CloudApiEmulator,
    to: str = "+919876543210",
    *,
    template: str = "vendor_signup_confirmation",
    callback: str | None = "campaign-1:919876543210",
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "template",
        "template": {"name": template, "language": {"code": "en_US"}},
    }
    if callback is not None:
        body["biz_opaque_callback_data"] = callback
    response = requests.post(
        emulator.url + SEND_PATH,
        json=body,
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=5,
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert isinstance(answer, dict)
    return answer


def wamid_of(answer: dict[str, Any]) -> str:
    return str(answer["messages"][0]["id"])


def kinds(statuses: list[dict[str, Any]]) -> list[str]:
    return [str(s["status"]) for s in statuses]


# -- off by default ----------------------------------------------------------------------------


def test_without_a_webhook_url_nothing_is_queued_and_sends_are_answered_as_before() -> None:
    with CloudApiEmulator(access_token=TOKEN) as emulator:
        answer = send(emulator)
        snapshot = emulator.webhooks()

    assert answer["messages"][0]["message_status"] == "accepted"
    assert snapshot["config"]["url"] is None
    stats = snapshot["stats"]
    assert isinstance(stats, dict)
    assert stats["scheduled_statuses"] == 0
    assert stats["attempts"] == 0


# -- the shape -------------------------------------------------------------------------------


def test_an_accepted_send_gets_signed_sent_delivered_read_in_metas_shape(
    emulators: Callable[..., CloudApiEmulator], receiver: WebhookReceiver
) -> None:
    emulator = emulators(receiver.url, waba_id="555000111")
    wamid = wamid_of(send(emulator))

    statuses = receiver.wait_for_statuses(3)

    assert all(p.signed for p in receiver.posts)
    post = receiver.accepted()[0]
    assert post.body["object"] == "whatsapp_business_account"
    assert post.body["entry"][0]["id"] == "555000111"
    assert post.field == "messages"
    assert post.value["messaging_product"] == "whatsapp"
    assert post.value["metadata"]["phone_number_id"] == PHONE_NUMBER_ID
    assert post.value["metadata"]["display_phone_number"]
    assert kinds(statuses) == ["sent", "delivered", "read"]
    for status in statuses:
        assert status["id"] == wamid
        assert status["recipient_id"] == "919876543210"
        assert status["recipient_user_id"] == bsuid_for("919876543210")
        assert status["biz_opaque_callback_data"] == "campaign-1:919876543210"
        assert isinstance(status["timestamp"], str)
        assert status["timestamp"].isdigit()
        assert "errors" not in status
    for status in statuses[:2]:
        assert status["pricing"] == {
            "billable": True,
            "pricing_model": "PMP",
            "category": "marketing",
            "type": "regular",
        }
    assert statuses[0]["conversation"]["origin"] == {"type": "marketing"}


def test_a_bsuid_is_metas_format_stable_per_number_and_differs_between_numbers() -> None:
    assert BSUID.fullmatch(bsuid_for("919876543210"))
    assert bsuid_for("919876543210").startswith("IN.")
    assert bsuid_for("+14155550100").startswith("US.")
    assert bsuid_for("919876543210") == bsuid_for("+919876543210")
    assert bsuid_for("919876543210") != bsuid_for("919876543211")


def test_a_send_without_callback_data_gets_statuses_without_it(
    emulators: Callable[..., CloudApiEmulator], receiver: WebhookReceiver
) -> None:
    send(emulators(receiver.url), callback=None)

    assert all("biz_opaque_callback_data" not in s for s in receiver.wait_for_statuses(3))


def test_the_rule_category_is_the_pricing_category(
    emulators: Callable[..., CloudApiEmulator], receiver: WebhookReceiver
) -> None:
    rules = [DeliveryRule(template="otp_.*", category="authentication")]
    send(emulators(receiver.url, delivery_rules=rules), template="otp_login")

    statuses = receiver.wait_for_statuses(3)

    assert {s["pricing"]["category"] for s in statuses} == {"authentication"}


# -- realism: duplicates, order, read without delivered, never read, batches ------------------


def test_with_probabilities_at_one_every_status_comes_twice_and_newest_first(
    emulators: Callable[..., CloudApiEmulator], receiver: WebhookReceiver
) -> None:
    emulator = emulators(receiver.url, duplicate_probability=1.0, out_of_order_probability=1.0)
    send(emulator)

    statuses = receiver.wait_for_statuses(6)
    emulator.core.webhooks.stop()  # nothing more is coming: no seventh

    assert Counter(kinds(statuses)) == {"sent": 2, "delivered": 2, "read": 2}
    assert kinds(statuses)[0] == "read"  # the newest status took the earliest slot
    assert len(statuses) == 6


def test_read_at_once_skips_delivered(
    emulators: Callable[..., CloudApiEmulator], receiver: WebhookReceiver
) -> None:
    emulator = emulators(receiver.url, read_without_delivered_probability=1.0)
    send(emulator)

    statuses = receiver.wait_for_statuses(2)
    snapshot = SandboxControl(emulator.url).wait_for_webhooks()

    assert kinds(statuses) == ["sent", "read"]
    assert snapshot["stats"]["delivered_statuses"] == 2


def test_users_who_never_read_get_sent_and_delivered_only(
    emulators: Callable[..., CloudApiEmulator], receiver: WebhookReceiver
) -> None:
    emulator = emulators(receiver.url, read_share=0.0)
    send(emulator)

    statuses = receiver.wait_for_statuses(2)
    SandboxControl(emulator.url).wait_for_webhooks()

    assert kinds(receiver.statuses()) == kinds(statuses) == ["sent", "delivered"]


@pytest.mark.parametrize(("batch_probability", "posts"), [(1.0, 1), (0.0, 3)])
def test_statuses_due_together_share_a_post_when_batching(
    emulators: Callable[..., CloudApiEmulator],
    receiver: WebhookReceiver,
    batch_probability: float,
    posts: int,
) -> None:
    emulator = emulators(receiver.url, batch_probability=batch_probability)
    send(emulator)

    receiver.wait_for_statuses(3)
    SandboxControl(emulator.url).wait_for_webhooks()

    assert len(receiver.accepted()) == posts


def test_a_batch_never_holds_a_status_and_its_duplicate(
    emulators: Callable[..., CloudApiEmulator], receiver: WebhookReceiver
) -> None:
    emulator = emulators(receiver.url, batch_probability=1.0, duplicate_probability=1.0)
    send(emulator)

    receiver.wait_for_statuses(6)

    for post in receiver.accepted():
        keys = [(s["id"], s["status"]) for s in post.value["statuses"]]
        assert len(keys) == len(set(keys))


# -- failures after acceptance, username users, held --------------------------------------------


@pytest.mark.parametrize("code", [131026, 131049, 131050])
def test_a_rule_matched_number_is_accepted_then_fails_by_webhook(
    emulators: Callable[..., CloudApiEmulator], receiver: WebhookReceiver, code: int
) -> None:
    rules = [DeliveryRule(match="9199.*", fail_code=code)]
    emulator = emulators(receiver.url, delivery_rules=rules)
    failing = wamid_of(send(emulator, "+919900000001"))
    fine = wamid_of(send(emulator, "+919800000001"))

    statuses = receiver.wait_for_statuses(4)
    SandboxControl(emulator.url).wait_for_webhooks()

    by_wamid = {w: [s for s in receiver.statuses() if s["id"] == w] for w in (failing, fine)}
    assert kinds(by_wamid[fine]) == ["sent", "delivered", "read"]
    assert kinds(by_wamid[failing]) == ["failed"]
    failed = by_wamid[failing][0]
    assert failed["recipient_id"] == "919900000001"
    assert "pricing" not in failed
    (error,) = failed["errors"]
    assert error["code"] == code
    assert error["title"]
    assert error["message"]
    assert error["error_data"]["details"]
    assert len(statuses) == 4


def test_username_users_statuses_carry_only_the_bsuid(
    emulators: Callable[..., CloudApiEmulator], receiver: WebhookReceiver
) -> None:
    rules = [DeliveryRule(match="91777.*", username=True)]
    emulator = emulators(receiver.url, delivery_rules=rules)
    send(emulator, "+917770000001")

    for status in receiver.wait_for_statuses(3):
        assert "recipient_id" not in status
        assert status["recipient_user_id"] == bsuid_for("917770000001")


def test_a_held_template_is_answered_held_for_quality_assessment_then_resolves(
    emulators: Callable[..., CloudApiEmulator], receiver: WebhookReceiver
) -> None:
    rules = [DeliveryRule(template="promo_.*", held=True)]
    emulator = emulators(receiver.url, delivery_rules=rules)

    held = send(emulator, template="promo_sale")
    plain = send(emulator, "+919876543211")

    assert held["messages"][0]["message_status"] == "held_for_quality_assessment"
    assert plain["messages"][0]["message_status"] == "accepted"
    statuses = receiver.wait_for_statuses(6)
    assert kinds([s for s in statuses if s["id"] == wamid_of(held)]) == [
        "sent",
        "delivered",
        "read",
    ]


def test_a_send_accepted_before_a_reset_connection_still_gets_its_statuses(
    emulators: Callable[..., CloudApiEmulator], receiver: WebhookReceiver
) -> None:
    emulator = emulators(receiver.url)
    emulator.set_rules([FaultRule(reset=True, after_accept=True)])
    with pytest.raises(requests.ConnectionError):
        send(emulator)

    statuses = receiver.wait_for_statuses(3)

    assert {s["id"] for s in statuses} == {emulator.accepted()[0].wamid}


# -- retries -----------------------------------------------------------------------------------


def test_a_receiver_answering_500_at_first_gets_retries_and_nothing_is_lost(
    emulators: Callable[..., CloudApiEmulator], receivers: Callable[..., WebhookReceiver]
) -> None:
    receiver = receivers(fail_first=4)
    emulator = emulators(receiver.url)
    wamids = {wamid_of(send(emulator, f"+9198765432{i:02d}")) for i in range(3)}

    receiver.wait_for_statuses(9)
    snapshot = SandboxControl(emulator.url).wait_for_webhooks()

    got = Counter((s["id"], s["status"]) for s in receiver.statuses())
    assert got == {(w, k): 1 for w in wamids for k in ("sent", "delivered", "read")}
    stats = snapshot["stats"]
    assert stats["failed_attempts"] == 4
    assert stats["retries"] == 4
    assert stats["gave_up"] == 0
    assert stats["delivered_statuses"] == 9
    assert all(p.signed for p in receiver.posts)


def test_a_receiver_that_is_down_at_first_gets_everything_once_it_listens(
    emulators: Callable[..., CloudApiEmulator], receivers: Callable[..., WebhookReceiver]
) -> None:
    receiver = receivers(listening=False)
    emulator = emulators(receiver.url, retry_attempts=100, retry_base_s=0.01)
    control = SandboxControl(emulator.url)
    send(emulator)
    control.user_preferences("stop", phone="919876543210")

    assert wait_until(lambda: control.webhooks()["stats"]["failed_attempts"] >= 2, WAIT_S, 0.01)
    receiver.listen()

    receiver.wait_for(lambda r: len(r.posts) == 4)
    snapshot = control.wait_for_webhooks()
    assert Counter(p.field for p in receiver.accepted()) == {"messages": 3, "user_preferences": 1}
    assert snapshot["stats"]["gave_up"] == 0


def test_a_kept_alive_connection_the_receiver_closed_is_reopened_without_a_failed_attempt(
    emulators: Callable[..., CloudApiEmulator], receivers: Callable[..., WebhookReceiver]
) -> None:
    receiver = receivers(drop_kept_alive=True)
    emulator = emulators(receiver.url)
    send(emulator)

    receiver.wait_for_statuses(3)
    snapshot = SandboxControl(emulator.url).wait_for_webhooks()

    assert kinds(receiver.statuses()) == ["sent", "delivered", "read"]
    assert snapshot["stats"]["failed_attempts"] == 0


def test_a_4xx_answer_is_never_retried(
    emulators: Callable[..., CloudApiEmulator], receivers: Callable[..., WebhookReceiver]
) -> None:
    receiver = receivers(fail_first=1000, fail_status=400)
    emulator = emulators(receiver.url)
    send(emulator)

    snapshot = SandboxControl(emulator.url).wait_for_webhooks()

    assert len(receiver.posts) == 3
    assert snapshot["stats"]["rejected"] == 3
    assert snapshot["stats"]["retries"] == 0
    assert [r["outcome"] for r in snapshot["recent"]] == ["rejected"] * 3


def test_a_receiver_that_keeps_failing_is_given_up_after_the_bounded_attempts(
    emulators: Callable[..., CloudApiEmulator], receivers: Callable[..., WebhookReceiver]
) -> None:
    receiver = receivers(fail_first=1000, fail_status=503)
    emulator = emulators(receiver.url, retry_attempts=3, batch_probability=1.0)
    send(emulator)

    snapshot = SandboxControl(emulator.url).wait_for_webhooks()

    assert len(receiver.posts) == 3  # one batched POST, three attempts
    assert snapshot["stats"]["gave_up"] == 1
    assert snapshot["recent"][-1] == {
        "kind": "statuses",
        "statuses": [[s["id"], s["status"]] for s in receiver.posts[0].value["statuses"]],
        "attempts": 3,
        "outcome": "gave_up",
        "http_status": 503,
    }


def test_retries_stop_once_the_total_retry_time_would_be_exceeded(
    emulators: Callable[..., CloudApiEmulator], receivers: Callable[..., WebhookReceiver]
) -> None:
    receiver = receivers(fail_first=1000)
    emulator = emulators(
        receiver.url,
        retry_attempts=1000,
        retry_base_s=0.01,
        retry_max_total_s=0.05,
        batch_probability=1.0,
    )
    send(emulator)

    snapshot = SandboxControl(emulator.url).wait_for_webhooks()

    # Back-offs 0.01, 0.02 fit in 0.05 s; the next (0.04) would not.
    assert snapshot["stats"]["attempts"] == 3
    assert snapshot["stats"]["gave_up"] == 1


# -- bounded, and stops cleanly -----------------------------------------------------------------


def test_the_queue_is_capped_and_what_does_not_fit_is_dropped_and_counted(
    emulators: Callable[..., CloudApiEmulator], receiver: WebhookReceiver
) -> None:
    emulator = emulators(receiver.url, queue_cap=4, sent_delay_s=(3600.0, 3600.0))
    send(emulator)
    send(emulator, "+919876543211")

    snapshot = emulator.webhooks()

    assert snapshot["stats"]["dropped"] == 2
    assert snapshot["stats"]["pending"] == 4
    assert snapshot["pending_statuses"] == 4
    emulator.stop()
    assert not _webhook_threads()


def test_stop_cuts_a_post_the_receiver_never_answers(
    emulators: Callable[..., CloudApiEmulator], receivers: Callable[..., WebhookReceiver]
) -> None:
    receiver = receivers(hang=True)
    emulator = emulators(receiver.url, request_timeout_s=60.0)
    send(emulator)
    assert receiver.hanging.wait(WAIT_S)

    emulator.stop()

    assert not _webhook_threads()


def test_reset_forgets_queued_webhooks_and_their_stats_but_keeps_the_url(
    emulators: Callable[..., CloudApiEmulator], receiver: WebhookReceiver
) -> None:
    emulator = emulators(receiver.url, sent_delay_s=(3600.0, 3600.0))
    send(emulator)
    control = SandboxControl(emulator.url)

    control.reset()

    snapshot = control.webhooks()
    assert snapshot["stats"]["pending"] == 0
    assert snapshot["stats"]["scheduled_statuses"] == 0
    assert snapshot["config"]["url"] == receiver.url


# -- seeded ------------------------------------------------------------------------------------


def _fates(seed: int, receiver: WebhookReceiver, make: Callable[..., CloudApiEmulator]) -> Any:
    rules = [DeliveryRule(probability=0.5, fail_code=131049)]
    emulator = make(
        receiver.url, delivery_rules=rules, seed=seed, duplicate_probability=0.3, read_share=0.5
    )
    for i in range(20):
        send(emulator, f"+9198000000{i:02d}")
    SandboxControl(emulator.url).wait_for_webhooks()
    return Counter((s["recipient_id"], s["status"]) for s in receiver.statuses())


def test_the_same_seed_decides_the_same_failures_reads_and_duplicates(
    emulators: Callable[..., CloudApiEmulator], receivers: Callable[..., WebhookReceiver]
) -> None:
    first = _fates(11, receivers(), emulators)
    again = _fates(11, receivers(), emulators)
    other = _fates(12, receivers(), emulators)

    assert first == again
    assert first != other
    assert {status for _, status in first} >= {"failed", "read"}


def test_a_plan_depends_on_its_rng_only() -> None:
    message = AcceptedMessage(
        "wamid.X", "919876543210", PHONE_NUMBER_ID, "t", "en_US", [], "cb", 1_700_000_000.0
    )
    config = WebhookConfig(duplicate_probability=0.5, out_of_order_probability=0.5)

    def planned(seed: int) -> list[Any]:
        return [
            (p.due_s, p.item)
            for p in plan(message, DeliveryDecision(), config, random.Random(seed))
        ]

    assert planned(3) == planned(3)
    assert all(0.5 <= due <= 2.0 + 5.0 + 60.0 + 2.0 for due, _ in planned(3))


# -- on demand ----------------------------------------------------------------------------------


def test_user_preferences_stop_and_resume_by_number_and_by_bsuid_alone(
    emulators: Callable[..., CloudApiEmulator], receiver: WebhookReceiver
) -> None:
    control = SandboxControl(emulators(receiver.url).url)

    control.user_preferences("stop", phone="+919876543210")
    control.user_preferences("resume", user_id="IN.1502576394655843")
    receiver.wait_for(lambda r: len(r.posts) == 2)

    by_number, by_bsuid = (p.value for p in receiver.accepted())
    assert all(p.field == "user_preferences" and p.signed for p in receiver.posts)
    (preference,) = by_number["user_preferences"]
    assert preference["wa_id"] == "919876543210"
    assert preference["user_id"] == bsuid_for("919876543210")
    assert preference["category"] == "marketing_messages"
    assert preference["value"] == "stop"
    assert by_number["contacts"][0]["wa_id"] == "919876543210"
    (preference,) = by_bsuid["user_preferences"]
    assert "wa_id" not in preference
    assert preference["user_id"] == "IN.1502576394655843"
    assert preference["value"] == "resume"
    assert "wa_id" not in by_bsuid["contacts"][0]


def test_an_inbound_stop_from_a_username_user_carries_only_the_bsuid(
    emulators: Callable[..., CloudApiEmulator], receiver: WebhookReceiver
) -> None:
    control = SandboxControl(emulators(receiver.url).url)

    control.inbound_text("STOP", phone="919876543210", withhold_phone=True)
    control.inbound_text("stop", phone="919876543211")
    receiver.wait_for(lambda r: len(r.posts) == 2)

    withheld, plain = (p.value for p in receiver.accepted())
    (message,) = withheld["messages"]
    assert message["type"] == "text"
    assert message["text"] == {"body": "STOP"}
    assert message["from_user_id"] == bsuid_for("919876543210")
    assert "from" not in message
    assert "wa_id" not in withheld["contacts"][0]
    assert plain["messages"][0]["from"] == "919876543211"
    assert plain["contacts"][0]["wa_id"] == "919876543211"


def test_template_quality_and_account_events_arrive_in_metas_shape(
    emulators: Callable[..., CloudApiEmulator], receiver: WebhookReceiver
) -> None:
    control = SandboxControl(emulators(receiver.url).url)

    control.template_status("vendor_signup_confirmation", "en_US", "PAUSED")
    control.quality_update("FLAGGED")
    control.account_update("ACCOUNT_RESTRICTION")
    receiver.wait_for(lambda r: len(r.posts) == 3)

    template, quality, account = receiver.accepted()
    assert template.field == "message_template_status_update"
    assert template.value["event"] == "PAUSED"
    assert template.value["message_template_name"] == "vendor_signup_confirmation"
    assert template.value["message_template_language"] == "en_US"
    assert isinstance(template.value["message_template_id"], int)
    assert quality.field == "phone_number_quality_update"
    assert quality.value["event"] == "FLAGGED"
    assert quality.value["current_limit"] == "TIER_250"
    assert account.field == "account_update"
    assert account.value["event"] == "ACCOUNT_RESTRICTION"
    assert account.value["restriction_info"]
    assert all(p.signed for p in receiver.posts)


def test_on_demand_events_need_a_url_and_a_valid_request() -> None:
    with CloudApiEmulator(access_token=TOKEN) as emulator:
        control = SandboxControl(emulator.url)
        with pytest.raises(ValueError, match="No webhook url"):
            control.user_preferences("stop", phone="919876543210")
        control.configure_webhooks(url="http://127.0.0.1:9/webhooks")
        with pytest.raises(ValueError, match="value must be one of"):
            control.user_preferences("maybe", phone="919876543210")
        with pytest.raises(ValueError, match="give phone or user_id"):
            control.inbound_text("STOP")
        with pytest.raises(ValueError, match="event must be one of"):
            control.template_status("t", "en_US", "SLEEPY")
        bad = requests.post(emulator.url + "/_sandbox/webhooks/quality", data=b"[", timeout=5)
        assert bad.status_code == 400
        assert "not valid JSON" in bad.json()["error"]["error_data"]["details"]


# -- options, rules, control --------------------------------------------------------------------


def test_the_control_api_sets_the_url_secret_and_delivery_rules_at_run_time(
    receiver: WebhookReceiver,
) -> None:
    with CloudApiEmulator(access_token=TOKEN) as emulator:
        control = SandboxControl(emulator.url)
        config = control.configure_webhooks(
            url=receiver.url,
            app_secret=SECRET,
            **{k: list(v) if isinstance(v, tuple) else v for k, v in IMMEDIATE.items()},
        )
        control.set_delivery_rules([{"match": ".*", "fail_code": 131050}])
        send(emulator)

        receiver.wait_for_statuses(1)
        snapshot = control.wait_for_webhooks()

    assert config["url"] == receiver.url
    assert "app_secret" not in config
    assert "app_secret" not in snapshot["config"]
    assert [s["errors"][0]["code"] for s in receiver.statuses()] == [131050]
    assert receiver.posts[0].signed


@pytest.mark.parametrize(
    "options",
    [
        {"url": "ftp://x/y"},
        {"read_share": 1.5},
        {"sent_delay_s": [2, 1]},
        {"queue_cap": 0},
        {"retry_attempts": True},
        {"no_such_option": 1},
        {"time_scale": -1},
    ],
)
def test_bad_webhook_options_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        WebhookConfig().updated(options)
    with (
        CloudApiEmulator(access_token=TOKEN) as emulator,
        pytest.raises(ValueError, match="Bad webhook options"),
    ):
        SandboxControl(emulator.url).configure_webhooks(**options)


@pytest.mark.parametrize(
    "rule",
    [{"fail_code": -1}, {"category": "free"}, {"match": "("}, {"held": 1}, {"when": "now"}],
)
def test_bad_delivery_rules_are_refused(rule: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        DeliveryRule.from_dict(rule)
    with CloudApiEmulator(access_token=TOKEN) as emulator:
        response = requests.put(
            emulator.url + "/_sandbox/delivery-rules", json={"rules": [rule]}, timeout=5
        )
    assert response.status_code == 400


def test_a_delivery_rule_round_trips_and_times_limits_it() -> None:
    rule = DeliveryRule(match="91.*", times=1, fail_code=131026, username=True)
    assert DeliveryRule.from_dict(rule.to_dict()) == rule
    book = DeliveryRuleBook([rule])
    rng = random.Random(0)
    assert book.decide("919876543210", "t", rng) == DeliveryDecision(
        fail_code=131026, username=True
    )
    assert book.decide("919876543210", "t", rng) == DeliveryDecision()


def test_the_cli_options_and_rules_file_build_the_webhook_config(tmp_path: Any) -> None:
    args = _build_parser().parse_args(
        [
            "--webhook-url", "http://127.0.0.1:1/webhooks/whatsapp",
            "--app-secret", "s3",
            "--webhook-time-scale", "0.001",
            "--webhook-read-delay-s", "1", "2",
            "--webhook-duplicate-probability", "1",
            "--webhook-queue-cap", "5",
        ]
    )  # fmt: skip
    config = _webhook_config(args)
    rules_file = tmp_path / "rules.json"
    rules_file.write_text(
        json.dumps({"rules": [{"code": 131056}], "delivery_rules": [{"username": True}]})
    )

    assert config.url == "http://127.0.0.1:1/webhooks/whatsapp"
    assert config.app_secret == "s3"
    assert config.time_scale == 0.001
    assert config.read_delay_s == (1.0, 2.0)
    assert config.duplicate_probability == 1.0
    assert config.queue_cap == 5
    assert config.sent_delay_s == WebhookConfig().sent_delay_s
    faults, deliveries = _load_rules(str(rules_file))
    assert [f.code for f in faults] == [131056]
    assert deliveries == [DeliveryRule(username=True)]
    assert _webhook_config(_build_parser().parse_args([])).url is None


# -- helpers ------------------------------------------------------------------------------------


def _webhook_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "sandbox-cloudapi-webhooks"]
