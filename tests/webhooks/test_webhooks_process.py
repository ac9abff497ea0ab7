"""``campaign-webhooks`` as a real process (``python -m webhooks --port 0 --ready-file …``) on
the session's moto server: a signed body posted over HTTP is read back from the receipts
queue as it was sent; /metrics only on the metrics port; SIGTERM ends it with exit 0. And the
refusals of the command line: no secret, exit 78, one line, never a value."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from campaigns.aws.provision import provision
from campaigns.domain.exitcodes import EXIT_CONFIG, EXIT_USAGE
from campaigns.settings import Settings, load_settings
from sandbox.aws import MotoServer
from sandbox.stack import _spawn
from tests.harness import AwsClients
from tests.unit.producer_support import SETTINGS_VARIABLES
from tests.webhooks.support import APP_SECRET, PATH, VERIFY_TOKEN, encoded, status, statuses_payload
from webhooks.signature import sign

STOP_TIMEOUT_S = 20


@dataclass
class Running:
    proc: subprocess.Popen[bytes]
    url: str
    metrics_url: str
    log: Path


@pytest.fixture
def receipts_settings(aws_clients: AwsClients, moto_server: MotoServer) -> Settings:
    suffix = uuid.uuid4().hex[:8]
    settings = load_settings(
        aws_endpoint_url=moto_server.url,
        campaigns_table=f"campaigns-{suffix}",
        recipients_table=f"recipients-{suffix}",
        campaign_queue_name=f"batches-{suffix}",
        campaign_receipts_queue_name=f"receipts-{suffix}",
    )
    provision(aws_clients.db, aws_clients.sqs, settings)
    return settings


@pytest.fixture
def receiver(
    receipts_settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Running]:
    for name in SETTINGS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert receipts_settings.aws_endpoint_url is not None
    for name, value in {
        "AWS_ENDPOINT_URL": receipts_settings.aws_endpoint_url,
        "CAMPAIGN_RECEIPTS_QUEUE_NAME": receipts_settings.campaign_receipts_queue_name,
        "META_APP_SECRET": APP_SECRET,
        "META_WEBHOOK_VERIFY_TOKEN": VERIFY_TOKEN,
        "LOG_FORMAT": "json",
    }.items():
        monkeypatch.setenv(name, value)
    log = tmp_path / "webhooks.log"
    ready = tmp_path / "webhooks.ready"
    proc, url = _spawn(["-m", "webhooks", "--port", "0", "--metrics-port", "0"], ready, log)
    try:
        yield Running(proc, url, json.loads(ready.read_text())["metricsUrl"], log)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT_S)


@pytest.mark.integration
def test_a_signed_webhook_posted_to_the_process_is_read_back_from_the_receipts_queue(
    receiver: Running, receipts_settings: Settings, aws_clients: AwsClients
) -> None:
    body = encoded(statuses_payload([status(1), status(2, "read")]))

    with httpx.Client(base_url=receiver.url, timeout=10) as http:
        assert http.get("/readyz").status_code == 200
        refused = http.post(PATH, content=body, headers={"X-Hub-Signature-256": "sha256=00"})
        answer = http.post(
            PATH, content=body, headers={"X-Hub-Signature-256": sign(APP_SECRET, body)}
        )
        assert http.get("/metrics").status_code == 404  # not on the public port

    assert (refused.status_code, answer.status_code) == (401, 200)
    queue_url = aws_clients.sqs.get_queue_url(
        QueueName=receipts_settings.campaign_receipts_queue_name
    )["QueueUrl"]
    messages = aws_clients.sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
    ).get("Messages", [])
    assert [m["Body"] for m in messages] == [body.decode()]
    scraped = httpx.get(f"{receiver.metrics_url}/metrics", timeout=10).text
    assert 'campaign_webhook_requests_total{outcome="ok"} 1.0' in scraped
    assert 'campaign_webhook_requests_total{outcome="bad_signature"} 1.0' in scraped

    receiver.proc.send_signal(signal.SIGTERM)
    assert receiver.proc.wait(timeout=STOP_TIMEOUT_S) == 0
    logged = receiver.log.read_text()
    assert APP_SECRET not in logged
    assert VERIFY_TOKEN not in logged
    assert "wamid" not in logged


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "webhooks", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize(
    ("present", "named"),
    [
        ({}, "META_APP_SECRET"),
        ({"META_APP_SECRET": "s3cr3t-value"}, "META_WEBHOOK_VERIFY_TOKEN"),
        ({"META_WEBHOOK_VERIFY_TOKEN": "t0ken-value"}, "META_APP_SECRET"),
        (
            {"META_APP_SECRET": "s3cr3t-value", "META_WEBHOOK_VERIFY_TOKEN": "t0ken-value",
             "WEBHOOK_PORT": "9000", "WEBHOOK_METRICS_PORT": "9000"},
            "WEBHOOK_METRICS_PORT",
        ),
    ],
)  # fmt: skip
def test_the_process_refuses_to_start_without_its_secrets(
    present: dict[str, str], named: str
) -> None:
    env = {"PATH": "/usr/bin:/bin", **present}

    done = _run(env=env)  # no --port: WEBHOOK_PORT is the one read

    assert done.returncode == EXIT_CONFIG
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("campaign-webhooks: ")
    assert named in lines[0]
    assert "s3cr3t-value" not in done.stderr
    assert "t0ken-value" not in done.stderr


def test_a_bad_port_is_a_usage_error() -> None:
    done = _run("--port", "http", env={"PATH": "/usr/bin:/bin"})

    assert done.returncode == EXIT_USAGE
    assert done.stderr.startswith("campaign-webhooks: ")
