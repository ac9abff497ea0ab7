"""Delivery truth end to end, every part a real process: the Cloud API emulator delivers signed
status webhooks (duplicated, out of order, some failed after acceptance) to ``campaign-webhooks``,
which queues each verified body in SQS (moto); a ``campaign-consumer`` applies them to DynamoDB.
The receiver is down when the first statuses come: the emulator retries, and nothing is lost."""

from __future__ import annotations

import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from campaigns.domain.models import CampaignStatus, DeliveryStatus
from sandbox.stack import LocalStack, _spawn
from tests.harness import Harness, valid_numbers, wait_until

pytestmark = pytest.mark.integration

APP_SECRET = "e2e-app-secret-3f9c"
VERIFY_TOKEN = "e2e-verify-token"


@pytest.fixture
def harness(stack: LocalStack, tmp_path: Path) -> Iterator[Harness]:
    """A harness with its own receipts queue (the stack is shared by the session)."""
    running = Harness(
        stack,
        tmp_path,
        CAMPAIGN_RECEIPTS_QUEUE_NAME=f"receipts-{uuid.uuid4().hex[:8]}",
        META_APP_SECRET=APP_SECRET,
        META_WEBHOOK_VERIFY_TOKEN=VERIFY_TOKEN,
    )
    try:
        yield running
    finally:
        running.sandbox.configure_webhooks(url=None)  # the next test's emulator sends nothing
        running.stop()


def receiver(harness: Harness, port: int) -> tuple[subprocess.Popen[bytes], str]:
    args = ["-m", "webhooks", "--port", str(port), "--metrics-port", "0"]
    ready, log = harness.workdir / "webhooks.ready", harness.workdir / f"webhooks-{port}.log"
    return _spawn(args, ready, log, harness.env)


def stop(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=20)


def test_statuses_reach_the_counters_exactly_through_duplicates_order_and_an_outage(
    harness: Harness,
) -> None:
    phones = valid_numbers(12)
    failed = phones[0]  # accepted, then 131050 (opted out) by webhook
    first, url = receiver(harness, 0)
    port = int(url.rsplit(":", 1)[1])
    assert stop(first) == 0  # down when the first statuses come
    harness.sandbox.configure_webhooks(
        url=f"http://127.0.0.1:{port}/webhooks/whatsapp",
        app_secret=APP_SECRET,
        time_scale=0.02,
        read_share=1.0,
        duplicate_probability=0.5,
        out_of_order_probability=0.5,
        read_without_delivered_probability=0.2,
        retry_base_s=5.0,  # x0.02: 0.1 s, doubling, 8 attempts: about 25 s of retries
    )
    harness.sandbox.set_delivery_rules([{"match": failed, "fail_code": 131050}])

    campaign_id = harness.campaign_with(phones)
    consumer = harness.consumer()
    assert wait_until(
        lambda: harness.sandbox.webhooks()["stats"]["failed_attempts"] > 0, timeout_s=30
    )
    second, _ = receiver(harness, port)  # back up: the emulator's retries land
    try:
        harness.sandbox.wait_for_webhooks(timeout_s=60)

        def settled() -> bool:
            campaign = harness.campaign(campaign_id)
            return (campaign.read_count, campaign.delivery_failed_count) == (11, 1)

        assert wait_until(settled, timeout_s=30)
    finally:
        assert stop(second) == 0
    assert stop(consumer) == 0

    stats = harness.sandbox.webhooks()["stats"]
    assert stats["retries"] > 0
    assert stats["gave_up"] == stats["dropped"] == 0
    campaign = harness.campaign(campaign_id)
    assert campaign.status is CampaignStatus.COMPLETED
    assert (campaign.sent_count, campaign.failed_count, campaign.unknown_count) == (12, 0, 0)
    assert (campaign.delivered_count, campaign.read_count) == (11, 11)
    assert campaign.delivery_failed_count == 1
    by_phone = {r.phone: r for r in harness.recipients(campaign_id)}
    assert by_phone[failed].delivery_status is DeliveryStatus.FAILED
    assert by_phone[failed].delivery_error_code == "META_131050"
    assert {by_phone[p].delivery_status for p in phones[1:]} == {DeliveryStatus.READ}
    assert all(by_phone[p].delivered_at is not None for p in phones[1:])
    # 131050 after acceptance suppresses the number: a later import skips it.
    created = harness.cli("create", "--name", "again", "--template", "order_update")
    again = str(created["campaignId"])
    csv_file = harness.workdir / "again.csv"
    csv_file.write_text(f"phone\n+{failed}\n+{phones[1]}\n")
    populated = harness.cli("populate", again, str(csv_file))
    assert (populated["inserted"], populated["suppressed"]) == (1, 1)
