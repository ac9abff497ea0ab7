"""A real scrape: Debian's Prometheus, on loopback, scrapes a consumer running against the
local stack, and campaign_messages_sent_total read back through Prometheus's query API
equals what the Cloud API emulator accepted. The alert rules are loaded into the same
Prometheus, which must accept every one of them."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from campaigns.domain.models import CampaignStatus
from tests.deploy.support import DEPLOY, free_port
from tests.deploy.test_observability import ALERT_NAMES
from tests.harness import Harness, valid_numbers, wait_until

SCRAPE_INTERVAL = "1s"
READY_TIMEOUT_S = 30.0


def _query(base: str, expr: str) -> list[dict[str, Any]]:
    answer = requests.get(f"{base}/api/v1/query", params={"query": expr}, timeout=5).json()
    assert answer["status"] == "success", answer
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


def _value(base: str, expr: str) -> float | None:
    result = _query(base, expr)
    return float(result[0]["value"][1]) if len(result) == 1 else None


@pytest.fixture
def scraped_consumer(harness: Harness) -> Iterator[tuple[Harness, int]]:
    consumer = harness.consumer(SHUTDOWN_TIMEOUT_S="10")
    assert wait_until(lambda: bool(harness.log_events("consumer.configured")), timeout_s=30)
    port = int(harness.log_events("consumer.configured")[0]["metrics_port"])
    yield harness, port
    consumer.send_signal(signal.SIGTERM)
    assert consumer.wait(timeout=20) == 0


@pytest.fixture
def prometheus_server(
    prometheus: str, scraped_consumer: tuple[Harness, int], tmp_path: Path
) -> Iterator[str]:
    _, consumer_port = scraped_consumer
    config = {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
        "rule_files": [str(DEPLOY / "prometheus" / "alerts.yml")],
        "scrape_configs": [
            {
                "job_name": "campaign-consumer",
                "static_configs": [{"targets": [f"127.0.0.1:{consumer_port}"]}],
            }
        ],
    }
    (tmp_path / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
    port = free_port()
    log = tmp_path / "prometheus.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                prometheus,
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--storage.tsdb.retention.time=1h",
            ],
            stdout=out,
            stderr=out,
        )
    base = f"http://127.0.0.1:{port}"
    try:

        def ready() -> bool:
            assert proc.poll() is None, log.read_text()
            try:
                return requests.get(f"{base}/-/ready", timeout=2).status_code == 200
            except requests.ConnectionError:
                return False

        assert wait_until(ready, timeout_s=READY_TIMEOUT_S), log.read_text()
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def test_prometheus_scrapes_the_sent_counter_equal_to_what_the_sandbox_accepted(
    scraped_consumer: tuple[Harness, int], prometheus_server: str
) -> None:
    harness, _ = scraped_consumer
    phones = valid_numbers(5, start=900)
    harness.sandbox.set_rules([{"match": phones[0], "code": 131026}])  # one undeliverable
    campaign_id = harness.campaign_with(phones)
    assert wait_until(
        lambda: harness.campaign(campaign_id).status is CampaignStatus.COMPLETED, timeout_s=60
    )
    accepted = len(harness.accepted())
    assert accepted == 4

    sent = 'campaign_messages_sent_total{job="campaign-consumer"}'
    assert wait_until(lambda: _value(prometheus_server, sent) == accepted, timeout_s=30), _query(
        prometheus_server, sent
    )
    assert _value(prometheus_server, 'up{job="campaign-consumer"}') == 1
    failed = 'sum(campaign_messages_failed_total{job="campaign-consumer"})'
    assert _value(prometheus_server, failed) == 1
    _assert_every_alert_rule_loads_and_evaluates(prometheus_server)


def _rules(base: str) -> list[dict[str, Any]]:
    answer = requests.get(f"{base}/api/v1/rules", timeout=5).json()
    return [rule for group in answer["data"]["groups"] for rule in group["rules"]]


def _assert_every_alert_rule_loads_and_evaluates(base: str) -> None:
    rules = _rules(base)
    assert {rule["name"] for rule in rules} == ALERT_NAMES
    assert all(rule["type"] == "alerting" for rule in rules)
    assert wait_until(lambda: all(r.get("health") == "ok" for r in _rules(base)), timeout_s=15)
    firing = {r["name"] for r in _rules(base) if r["state"] == "firing"}
    assert "CampaignNoConsumerUp" not in firing, "a consumer is up"
