"""What the API says about itself: one audit line per state-changing call, metrics by route
template (no ids), ``Cache-Control: no-store``, and the OpenAPI document."""

from __future__ import annotations

import re
from collections.abc import MutableMapping
from typing import Any

from structlog.testing import capture_logs

from tests.api.support import CREATE, Api, csv_of
from tests.unit.producer_support import national, unknown_campaign_id


def audits(logs: list[MutableMapping[str, Any]]) -> list[dict[str, Any]]:
    return [
        {k: v for k, v in log.items() if k != "log_level"}
        for log in logs
        if log["event"] == "api.audit"
    ]


def test_each_state_changing_call_writes_one_audit_line(api: Api) -> None:
    with capture_logs() as logs:
        campaign_id = api.create()
        api.upload(campaign_id, csv_of(national(2)))
        api.control(campaign_id, "start")
        api.control(campaign_id, "start")
        api.ok("GET", f"/api/campaigns/{campaign_id}")
    base = {"event": "api.audit", "operator": "alice", "campaign_id": campaign_id}
    assert audits(logs) == [
        base | {"action": "create", "status": 200, "outcome": "ok"},
        base | {"action": "populate", "status": 200, "outcome": "ok"},
        base | {"action": "start", "status": 200, "outcome": "ok"},
        base | {"action": "start", "status": 409, "outcome": "refused",
                "error": "Campaign status is RUNNING: cannot start"},
    ]  # fmt: skip


def test_refused_calls_are_audited_with_who_tried(api: Api) -> None:
    unknown = unknown_campaign_id()
    with capture_logs() as logs:
        api.call("POST", f"/api/campaigns/{unknown}/enqueue", auth=False)
        api.call("POST", f"/api/campaigns/{unknown}/enqueue")
        api.call("POST", "/api/session", auth=False, json={"key": "guess"})
        api.call("POST", "/api/campaigns/create", json=CREATE | {"channel": "SMS"})
    lines = audits(logs)
    assert [(a["operator"], a["action"], a["status"]) for a in lines] == [
        (None, "enqueue", 401),
        ("alice", "enqueue", 404),
        (None, "session.create", 401),
        ("alice", "create", 422),
    ]
    assert lines[1]["campaign_id"] == unknown
    assert all(a["outcome"] == "refused" for a in lines)


def test_reads_unknown_routes_and_wrong_methods_write_no_audit_line(api: Api) -> None:
    campaign_id = api.create()
    with capture_logs() as logs:
        api.call("GET", f"/api/campaigns/{campaign_id}")
        api.call("POST", "/api/nothing")
        api.call("DELETE", f"/api/campaigns/{campaign_id}")
    assert audits(logs) == []


def sample(api: Api, name: str, **labels: str) -> float | None:
    registry = api.client.app.state.metrics.registry  # type: ignore[attr-defined]
    value: float | None = registry.get_sample_value(name, labels)
    return value


def test_metrics_count_requests_by_route_template_and_status_with_no_ids(api: Api) -> None:
    campaign_id = api.create()
    api.ok("GET", f"/api/campaigns/{campaign_id}")
    api.ok("GET", f"/api/campaigns/{campaign_id}")
    api.call("GET", f"/api/campaigns/{unknown_campaign_id()}")
    api.call("GET", "/api/nothing/here")
    template = "/api/campaigns/{campaign_id}"
    counted = "campaign_api_requests_total"
    assert sample(api, counted, route=template, method="GET", status="200") == 2
    assert sample(api, counted, route=template, method="GET", status="404") == 1
    assert sample(api, counted, route="unmatched", method="GET", status="404") == 1
    assert sample(api, counted, route="/api/campaigns/create", method="POST", status="200") == 1
    timed = "campaign_api_request_duration_seconds_count"
    assert sample(api, timed, route=template, method="GET") == 3
    text = api.call("GET", "/metrics").text
    assert "campaign_api_requests_total{" in text
    assert "cmp_" not in text
    assert "/api/nothing" not in text


def test_the_api_s_answers_are_never_cached(api: Api) -> None:
    for response in (
        api.call("GET", f"/api/campaigns/{api.create()}"),
        api.call("GET", "/api/session", auth=False),
        api.call("GET", "/api/nothing"),
        api.call("GET", "/metrics"),
    ):
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["x-content-type-options"] == "nosniff"


def test_the_openapi_document_describes_the_bodies(api: Api) -> None:
    document = api.call("GET", "/openapi.json", auth=False).json()
    schemas = document["components"]["schemas"]
    create = schemas["CreateCampaign"]
    assert set(create["required"]) == {"name", "templateName", "channel", "audienceType"}
    assert create["properties"]["channel"]["const"] == "WHATSAPP"
    populate = document["paths"]["/api/campaigns/{campaign_id}/populate"]["post"]
    assert "multipart/form-data" in populate["requestBody"]["content"]
    assert "413" in populate["responses"]
    control = document["paths"]["/api/campaigns/{campaign_id}/control"]["post"]
    assert control["responses"]["409"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Failure"
    }
    assert "progressPercent" in schemas["CampaignView"]["properties"]
    assert "Swagger" in api.call("GET", "/docs", auth=False).text


def test_docs_load_swagger_ui_from_the_app_itself_not_a_cdn(api: Api) -> None:
    page = api.call("GET", "/docs", auth=False).text
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert assets, page
    assert all(url.startswith("/docs/assets/") for url in assets), assets
    assert "https://" not in page.replace("https://swagger.io", "")
    for url in assets:
        answer = api.call("GET", url, auth=False)
        assert answer.status_code == 200, url
        assert answer.content
