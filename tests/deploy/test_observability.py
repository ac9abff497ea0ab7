"""deploy/grafana and deploy/prometheus: the dashboard and the alerts name only metrics that
exist — those the consumer registers (campaigns/engine/metrics.py) and the webhook receiver
registers (webhooks/metrics.py), each read from a fresh registry, the series Prometheus makes
itself (``up``), and the queue series yet-another-cloudwatch-exporter makes from
deploy/prometheus/yace-sqs.yml — and promtool checks and unit-tests the alerts."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import CollectorRegistry

from campaigns.domain.models import DeliveryStatus
from campaigns.engine.metrics import EngineMetrics
from tests.deploy.promql import metric_names
from tests.deploy.support import DEPLOY, ROOT, load_json
from webhooks.metrics import Outcome, WebhookMetrics

DASHBOARD = DEPLOY / "grafana" / "campaigns-dashboard.json"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
ALERT_TESTS = DEPLOY / "prometheus" / "alerts.test.yml"
YACE = DEPLOY / "prometheus" / "yace-sqs.yml"
DEPLOY_DOC = ROOT / "docs" / "deploy.md"
PROMETHEUS_MADE = frozenset({"up"})  # per scrape target, by Prometheus itself
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gauge": ("",),
}
ALERT_NAMES = {
    "CampaignFailureShareHigh",
    "CampaignPausedByMeta",
    "CampaignCapNearlyUsed",
    "CampaignNoConsumerUp",
    "CampaignQueueOldestMessageOld",
    "CampaignDeadLetterQueueNotEmpty",
    "CampaignWebhookSignatureFailures",
    "CampaignDeliveryFailureRatioHigh",
}


def _registries() -> dict[str, CollectorRegistry]:
    """A fresh registry per process that exports metrics: the consumer, the receiver."""
    consumer, receiver = CollectorRegistry(), CollectorRegistry()
    EngineMetrics(consumer)
    WebhookMetrics(receiver)
    return {"consumer": consumer, "webhooks": receiver}


def consumer_metric_names(process: str = "consumer") -> set[str]:
    """The sample names a process (``consumer`` or ``webhooks``) can expose, from a fresh
    registry: what is collected now, plus every sample name each family's type gives
    (labelled families have no samples until a label value is first used)."""
    registry = _registries()[process]
    names: set[str] = set()
    for family in registry.collect():
        names.update(sample.name for sample in family.samples)
        names.update(family.name + suffix for suffix in SUFFIXES[family.type])
    return names


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def exporter_metric_names() -> set[str]:
    """YACE's names for the configured CloudWatch metrics: aws_<namespace>_<metric>_<stat>."""
    config = yaml.safe_load(YACE.read_text())
    names: set[str] = set()
    for job in config["discovery"]["jobs"]:
        namespace = job["type"].removeprefix("AWS/").lower()
        for metric in job["metrics"]:
            for statistic in metric["statistics"]:
                names.add(f"aws_{namespace}_{_snake(metric['name'])}_{statistic.lower()}")
    return names


def allowed_metric_names() -> set[str]:
    exported = consumer_metric_names() | consumer_metric_names("webhooks")
    return exported | PROMETHEUS_MADE | exporter_metric_names()


def _panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def dashboard_expressions(dashboard: dict[str, Any]) -> list[str]:
    expressions = [t["expr"] for p in _panels(dashboard) for t in p.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            expressions.append(query["query"] if isinstance(query, dict) else query)
    return expressions


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


# -- the extractor itself -----------------------------------------------------------------------


def test_the_metric_name_extractor_reads_promql_as_prometheus_does() -> None:
    expr = (
        "histogram_quantile(0.95, sum by (le) (rate(campaign_send_duration_seconds_bucket"
        '{job="$job", le!="+Inf"}[$__rate_interval]))) / scalar(campaign_cap_limit offset 15m)'
        " > 1e3 and on(instance) up == bool 1"
    )
    assert metric_names(expr) == {
        "campaign_send_duration_seconds_bucket",
        "campaign_cap_limit",
        "up",
    }
    assert metric_names('label_values(campaign_batches_in_flight{job="x"}, instance)') == {
        "campaign_batches_in_flight"
    }
    assert metric_names("sum(rate(campaign_mesages_sent_total[5m]))") == {
        "campaign_mesages_sent_total"
    }


def test_the_allowed_names_are_the_consumers_plus_the_documented_exporters() -> None:
    consumer = consumer_metric_names()
    assert {
        "campaign_messages_sent_total",
        "campaign_messages_failed_total",
        "campaign_pauses_total",
        "campaign_send_duration_seconds_bucket",
        "campaign_cap_used",
        "campaign_consumer_draining",
        "campaign_queue_receive_errors_total",
    } <= consumer
    assert "campaign_messages_sent" not in consumer, "counters are exposed with _total"
    assert {"campaign_deliveries_total", "campaign_receipts_poison_total"} <= consumer
    receiver = consumer_metric_names("webhooks")
    assert {
        "campaign_webhook_requests_total",
        "campaign_webhook_request_seconds_bucket",
        "campaign_webhook_queue_ready",
    } <= receiver
    assert not receiver & {"campaign_messages_sent_total", "campaign_deliveries_total"}
    assert allowed_metric_names() >= consumer | receiver
    assert exporter_metric_names() == {
        "aws_sqs_approximate_number_of_messages_visible_maximum",
        "aws_sqs_approximate_number_of_messages_not_visible_maximum",
        "aws_sqs_approximate_age_of_oldest_message_maximum",
    }
    assert "yet-another-cloudwatch-exporter" in DEPLOY_DOC.read_text()


# -- the dashboard --------------------------------------------------------------------------------


def test_the_dashboard_names_no_metric_the_consumer_does_not_export() -> None:
    dashboard = load_json(DASHBOARD)
    allowed = allowed_metric_names()
    unknown = {
        name: expr
        for expr in dashboard_expressions(dashboard)
        for name in metric_names(expr)
        if name not in allowed
    }
    assert not unknown, unknown


def test_the_dashboard_shows_every_metric_the_consumer_and_the_receiver_export() -> None:
    used = {n for e in dashboard_expressions(load_json(DASHBOARD)) for n in metric_names(e)}
    for process, registry in _registries().items():
        for family in registry.collect():
            names = {family.name + s for s in SUFFIXES[family.type] if s != "_created"}
            assert names & used, f"{process}: {family.name} is on no panel"


def test_the_dashboard_has_a_stable_uid_a_datasource_variable_and_the_five_rows() -> None:
    dashboard = load_json(DASHBOARD)
    assert dashboard["uid"] == "campaign-executor"
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in _panels(dashboard):
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == "${datasource}"
    rows = [p["title"] for p in dashboard["panels"] if p["type"] == "row"]
    assert rows == ["Sending", "Guard", "Queue", "Consumers", "Delivery"]
    ids = [p["id"] for p in _panels(dashboard)]
    assert len(ids) == len(set(ids))


def test_no_panel_filters_by_a_campaign_label_the_engine_does_not_have() -> None:
    dashboard = load_json(DASHBOARD)
    assert "campaign" not in {v["name"] for v in dashboard["templating"]["list"]}
    assert not any(
        re.search(r"\bcampaign(_id)?\s*=~?", e) for e in dashboard_expressions(dashboard)
    )
    assert "no campaign label" in dashboard["description"]


def _panel_rows(dashboard: dict[str, Any]) -> dict[str, list[str]]:
    rows: dict[str, list[str]] = {}
    current = ""
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            current = panel["title"]
            rows[current] = []
        else:
            rows[current].extend(t["expr"] for t in panel["targets"])
    return rows


def test_each_row_charts_what_the_issue_asks_of_it() -> None:
    rows = _panel_rows(load_json(DASHBOARD))
    names = {row: {n for e in exprs for n in metric_names(e)} for row, exprs in rows.items()}
    assert {"campaign_messages_sent_total", "campaign_messages_failed_total"} <= names["Sending"]
    quantiles = {
        float(q) for e in rows["Sending"] for q in re.findall(r"histogram_quantile\(([0-9.]+)", e)
    }
    assert quantiles == {0.5, 0.95, 0.99}
    assert any("by (error_code)" in e and "/" in e for e in rows["Sending"])
    assert {"campaign_cap_used", "campaign_cap_limit", "campaign_pauses_total"} <= names["Guard"]
    assert any("by (reason)" in e for e in rows["Guard"])
    assert {
        "campaign_batches_processed_total",
        "campaign_batches_in_flight",
        "aws_sqs_approximate_number_of_messages_visible_maximum",
        "aws_sqs_approximate_age_of_oldest_message_maximum",
    } <= names["Queue"]
    assert any("by (outcome)" in e for e in rows["Queue"])
    assert {"up", "campaign_consumer_draining"} <= names["Consumers"]
    assert {
        "campaign_deliveries_total",
        "campaign_webhook_requests_total",
        "campaign_receipts_applied_total",
        "campaign_receipts_unmatched_total",
        "campaign_receipts_poison_total",
    } <= names["Delivery"]
    delivery = rows["Delivery"]
    assert any('status="DELIVERED"' in e and 'status="FAILED"' in e for e in delivery)
    assert any('status="READ"' in e and "/" in e for e in delivery), "the read rate"
    (requests,) = [e for e in delivery if "campaign_webhook_requests_total" in e]
    assert "by (outcome)" in requests
    assert 'job="$webhooks_job"' in requests, "the receiver is its own scrape job"


def test_the_webhook_alerts_read_the_receivers_outcomes_and_the_delivery_statuses() -> None:
    rules = {r["alert"]: r["expr"] for r in alert_rules()}
    signature = rules["CampaignWebhookSignatureFailures"]
    assert f'outcome="{Outcome.BAD_SIGNATURE.value}"' in signature
    assert 'job="campaign-webhooks"' in signature
    ratio = rules["CampaignDeliveryFailureRatioHigh"]
    statuses = set(re.findall(r'status="([A-Za-z_]+)"', ratio))
    assert statuses == {DeliveryStatus.FAILED.value, DeliveryStatus.DELIVERED.value}
    on_dashboard = {
        s
        for e in _panel_rows(load_json(DASHBOARD))["Delivery"]
        for s in re.findall(r'status="([A-Za-z_]+)"', e)
    }
    assert on_dashboard <= {s.value for s in DeliveryStatus}, "the values the consumer labels"
    assert "[30m]" in ratio
    assert "> 0.1" in ratio


# -- the alerts -----------------------------------------------------------------------------------


def test_the_eight_alerts_exist_with_severity_and_a_runbook_in_docs_deploy() -> None:
    rules = alert_rules()
    assert {r["alert"] for r in rules} == ALERT_NAMES
    doc = DEPLOY_DOC.read_text()
    headings = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in doc.splitlines()
        if line.startswith("#")
    }
    for rule in rules:
        assert rule["labels"]["severity"] in {"warning", "critical"}
        runbook = rule["annotations"]["runbook_url"]
        path, _, anchor = runbook.partition("#")
        assert path == "docs/deploy.md"
        assert anchor in headings, f"{rule['alert']}: no '{anchor}' heading in docs/deploy.md"


def test_the_alerts_name_no_metric_that_does_not_exist() -> None:
    allowed = allowed_metric_names()
    for rule in alert_rules():
        assert metric_names(rule["expr"]) <= allowed, rule["alert"]


def test_each_alert_has_a_unit_test() -> None:
    tests = yaml.safe_load(ALERT_TESTS.read_text())["tests"]
    tested = {case["alertname"] for t in tests for case in t.get("alert_rule_test", [])}
    fired = {
        case["alertname"]
        for t in tests
        for case in t.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert tested == fired == ALERT_NAMES


def test_promtool_checks_the_rules(promtool: str) -> None:
    done = subprocess.run(
        [promtool, "check", "rules", str(ALERTS)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(ALERT_NAMES)} rules found" in done.stdout


def test_promtool_runs_the_alert_unit_tests(promtool: str) -> None:
    done = subprocess.run(
        [promtool, "test", "rules", ALERT_TESTS.name],
        cwd=ALERT_TESTS.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_promtool_fails_an_alert_unit_test_that_does_not_hold(
    promtool: str, tmp_path: Path
) -> None:
    tests = yaml.safe_load(ALERT_TESTS.read_text())
    (first,) = [t for t in tests["tests"] if t["name"].startswith("failure share above")]
    first["input_series"][1]["values"] = "0+1x30"  # 1 % failures: the alert must not fire
    tests["tests"] = [first]
    tests["rule_files"] = [str(ALERTS)]
    path = tmp_path / "broken.test.yml"
    path.write_text(yaml.safe_dump(tests))
    done = subprocess.run(
        [promtool, "test", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "FAILED" in done.stdout + done.stderr
