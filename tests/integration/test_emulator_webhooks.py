"""The Cloud API emulator as a real process delivers signed status webhooks to a receiver:
through a receiver that is down at first, with failures after acceptance and username users
scripted over the control API, on-demand events, and a SIGTERM with webhooks still queued
exits 0."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from sandbox.cloudapi import SandboxControl, bsuid_for
from sandbox.cloudapi.decisions import SANDBOX_TOKEN
from sandbox.stack import CloudApiProcess
from tests.harness import wait_until
from tests.unit.test_sandbox_webhooks import SECRET, WebhookReceiver

pytestmark = pytest.mark.integration

SEND_PATH = "/v25.0/100000000000001/messages"
WAIT_S = 20.0
READY_TIMEOUT_S = 30.0
# Realistic shape, a thousand times faster; every user reads, nothing random but the delays.
FAST = [
    "--webhook-time-scale", "0.001",
    "--webhook-read-share", "1",
    "--webhook-duplicate-probability", "0",
    "--webhook-out-of-order-probability", "0",
    "--webhook-read-without-delivered-probability", "0",
    "--webhook-retry-base-s", "20",  # 20 ms once scaled
    "--webhook-retry-attempts", "200",
]  # fmt: skip


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(listening=False)
    yield receiver
    receiver.close()


def send(url: str, to: str) -> str:
    body = {
        "messaging_product": "whatsapp",
        "to": to,
        "type": "template",
        "template": {"name": "vendor_signup_confirmation", "language": {"code": "en_US"}},
        "biz_opaque_callback_data": f"campaign-9:{to.removeprefix('+')}",
    }
    response = requests.post(
        url + SEND_PATH, json=body, headers={"Authorization": f"Bearer {SANDBOX_TOKEN}"}, timeout=5
    )
    assert response.status_code == 200, response.text
    return str(response.json()["messages"][0]["id"])


def test_the_emulator_process_delivers_every_status_through_a_receiver_down_at_first(
    tmp_path: Path, receiver: WebhookReceiver
) -> None:
    args = ["--webhook-url", receiver.url, "--app-secret", SECRET, *FAST]
    with CloudApiProcess(tmp_path, args=args) as api:
        control = SandboxControl(api.url)
        control.set_delivery_rules(
            [{"match": "9199.*", "fail_code": 131050}, {"match": "91777.*", "username": True}]
        )
        plain = send(api.url, "+919876543210")
        failing = send(api.url, "+919900000001")
        username = send(api.url, "+917770000001")
        control.inbound_text("STOP", phone="919876543210", withhold_phone=True)
        assert wait_until(lambda: control.webhooks()["stats"]["failed_attempts"] >= 2, WAIT_S)

        receiver.listen()
        receiver.wait_for_statuses(7)
        snapshot = control.wait_for_webhooks(WAIT_S)

    assert all(post.signed for post in receiver.posts)
    statuses = receiver.statuses()
    got = Counter((s["id"], s["status"]) for s in statuses)
    assert got == {
        (plain, "sent"): 1,
        (plain, "delivered"): 1,
        (plain, "read"): 1,
        (failing, "failed"): 1,
        (username, "sent"): 1,
        (username, "delivered"): 1,
        (username, "read"): 1,
    }
    (failed,) = (s for s in statuses if s["status"] == "failed")
    assert failed["errors"][0]["code"] == 131050
    assert failed["biz_opaque_callback_data"] == "campaign-9:919900000001"
    for status in statuses:
        if status["id"] == username:
            assert "recipient_id" not in status
            assert status["recipient_user_id"] == bsuid_for("917770000001")
        else:
            assert status["recipient_id"] == status["biz_opaque_callback_data"].split(":")[1]
    inbound = [p for p in receiver.accepted() if p.value.get("messages")]
    assert inbound[0].value["messages"][0]["from_user_id"] == bsuid_for("919876543210")
    assert snapshot["stats"]["gave_up"] == 0
    assert snapshot["stats"]["dropped"] == 0


def test_sigterm_with_webhooks_still_queued_exits_0(
    tmp_path: Path, receiver: WebhookReceiver
) -> None:
    ready = tmp_path / "ready.json"
    args = [
        sys.executable, "-m", "sandbox.cloudapi", "--port", "0", "--ready-file", str(ready),
        "--webhook-url", receiver.url, "--app-secret", SECRET,
        "--webhook-sent-delay-s", "3600", "3600",
    ]  # fmt: skip
    with subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) as proc:
        try:
            assert wait_until(lambda: ready.exists() and bool(ready.read_text()), READY_TIMEOUT_S)
            url = json.loads(ready.read_text())["url"]
            send(url, "+919876543210")
            assert SandboxControl(url).webhooks()["stats"]["pending"] == 3

            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=WAIT_S) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.stderr is not None
        assert proc.stderr.read() == b""
    assert receiver.posts == []


def test_a_bad_webhook_option_exits_2_with_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sandbox.cloudapi", "--webhook-url", "ftp://nowhere"],
        capture_output=True,
        timeout=WAIT_S,
        check=False,
    )

    assert result.returncode == 2
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1
    assert "webhook url" in lines[0]
