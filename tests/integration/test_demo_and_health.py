"""`make demo` keeps working, and the consumer's HTTP endpoints tell the truth."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from campaigns.domain.models import CampaignStatus
from tests.harness import ROOT, Harness, valid_numbers, wait_until


def _metric(port: int, name: str) -> float:
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and not sample.labels:
                return float(sample.value)
    raise AssertionError(f"{name} not exported")


def test_the_consumer_serves_metrics_health_and_readiness(harness: Harness) -> None:
    phones = valid_numbers(12)
    harness.sandbox.set_rules([{"match": phones[0], "code": 131026}])
    campaign_id = harness.campaign_with(phones)
    consumer = harness.consumer(SHUTDOWN_TIMEOUT_S="10")
    assert wait_until(lambda: bool(harness.log_events("consumer.configured")), timeout_s=30)
    port = int(harness.log_events("consumer.configured")[0]["metrics_port"])
    assert wait_until(
        lambda: harness.campaign(campaign_id).status is CampaignStatus.COMPLETED, timeout_s=60
    )

    assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    assert requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200
    assert _metric(port, "campaign_messages_sent_total") == len(harness.accepted()) == 11
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    assert 'campaign_messages_failed_total{error_code="META_131026"} 1.0' in text
    assert 'campaign_batches_processed_total{outcome="completed"} 1.0' in text
    assert "campaign_cap_limit 200.0" in text
    assert phones[1] not in text  # no phone number anywhere in the metrics

    consumer.send_signal(signal.SIGTERM)
    assert consumer.wait(timeout=15) == 0


@pytest.mark.timeout(240)
def test_the_demo_completes_a_campaign_and_leaves_no_process_running(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    done = subprocess.run(
        [sys.executable, "-m", "sandbox.demo"],
        cwd=ROOT,
        # The receipts lag the sends on this stack, so the settle always ran out its 30 s;
        # the statuses counted while sending already show the receiver ran. The consumers'
        # receipts poll is shortened as in the harness (their SIGTERM waits it out).
        env=os.environ
        | {"DEMO_WORKDIR": str(workdir), "DEMO_RECEIPTS_SETTLE_S": "5"}
        | {"RECEIPTS_POLL_WAIT_S": "1"},
        capture_output=True,
        text=True,
        timeout=220,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert re.search(r"^ +status +COMPLETED$", done.stdout, re.MULTILINE), done.stdout
    # The receiver ran: the emulator's signed statuses reached the campaign's counters.
    delivered = re.search(r"^ +deliveredCount +(\d+)$", done.stdout, re.MULTILINE)
    assert delivered, done.stdout
    assert int(delivered.group(1)) > 0, done.stdout
    assert re.search(r"^ +readCount +\d+$", done.stdout, re.MULTILINE), done.stdout
    assert "campaign_messages_sent_total" in done.stdout
    assert "exit codes 0, 0" in done.stdout
    leftovers = subprocess.run(
        ["ps", "-eo", "args"], capture_output=True, text=True, check=True
    ).stdout
    assert str(workdir) not in leftovers
