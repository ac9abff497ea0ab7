"""The campaign endpoints on the in-memory world: the old admin app's flow first, then every
endpoint's shapes and statuses."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from campaigns.domain.errors import ConfigError
from campaigns.domain.models import RecipientStatus
from tests.api.support import CREATE, Api, build_api, csv_of
from tests.unit.producer_support import e164, national, unknown_campaign_id

RESULT_KEYS = {"processed", "sent", "failed", "unknown", "paused", "completed", "pauseReason"}


def test_the_old_admin_apps_flow_create_populate_start_execute_batch_and_get(api: Api) -> None:
    created = api.ok("POST", "/api/campaigns/create", json=CREATE)
    assert set(created) == {"success", "campaignId"}
    campaign_id = created["campaignId"]

    populated = api.upload(campaign_id, csv_of(national(3)))
    assert populated.status_code == 200
    assert populated.json() == {
        "success": True,
        "inserted": 3,
        "duplicates": 0,
        "suppressed": 0,
        "invalidCount": 0,
        "invalid": [],
    }

    started = api.control(campaign_id, "start")
    assert started.status_code == 200
    assert started.json()["newStatus"] == "RUNNING"

    batch = api.ok("POST", f"/api/campaigns/{campaign_id}/execute-batch")
    assert set(batch) == {"success", "result"}
    assert set(batch["result"]) == RESULT_KEYS
    assert batch["result"] | {"pauseReason": None} == {
        "processed": 3,
        "sent": 3,
        "failed": 0,
        "unknown": 0,
        "paused": False,
        "completed": True,
        "pauseReason": None,
    }

    campaign = api.campaign(campaign_id)
    assert campaign["status"] == "COMPLETED"
    assert campaign["sentCount"] == 3
    assert campaign["pendingCount"] == 0
    assert campaign["progressPercent"] == 100.0
    assert len(api.world.sender.sent) == 3


def test_get_answers_the_public_record_with_its_progress_percent(api: Api) -> None:
    campaign_id = api.populated(national(4))
    campaign = api.campaign(campaign_id)
    for name in (
        "campaignId", "name", "templateName", "status", "totalRecipients", "sentCount",
        "failedCount", "unknownCount", "pendingCount", "progressPercent", "pauseReason",
        "createdAt", "startedAt", "pausedAt", "completedAt",
    ):  # fmt: skip
        assert name in campaign
    assert campaign | {"createdAt": None} == api.world.store.require_campaign(
        campaign_id
    ).to_public() | {"createdAt": None, "progressPercent": 0.0, "cost": None}


def test_get_answers_the_delivery_truth_and_the_estimated_cost(tmp_path: Path) -> None:
    prices = tmp_path / "prices.csv"
    prices.write_text("calling_code,category,price\n91,marketing,0.0100\n")
    api = build_api(prices_file=prices)
    with api.client:
        _answers_the_delivery_truth(api)


def _answers_the_delivery_truth(api: Api) -> None:
    campaign_id = api.populated(national(4))
    stored = api.world.store.require_campaign(campaign_id)
    api.world.store.add_campaign(
        replace(
            stored,
            sent_count=4,
            delivered_count=3,
            delivery_failed_count=1,
            held_count=0,
            tallies={"deliveryFailed:META_131026": 1, "billed:marketing:91": 3},
        )
    )

    campaign = api.campaign(campaign_id)

    assert campaign["deliveryFailures"] == {"META_131026": 1}
    assert campaign["billable"] == [{"category": "marketing", "callingCode": "91", "count": 3}]
    assert campaign["cost"]["estimated"] == "0.0300"
    assert campaign["deliveryRate"] == 0.75


def test_create_takes_the_optional_language_and_parameter_format(api: Api) -> None:
    campaign_id = api.create(language="hi", parameterFormat="named")
    stored = api.world.store.require_campaign(campaign_id)
    assert (stored.template_language, stored.parameter_format) == ("hi", "NAMED")
    assert stored.name == "Diwali offer"
    assert stored.template_name == "diwali_offer"


@pytest.mark.parametrize(
    ("field", "value"), [("channel", "SMS"), ("audienceType", "SEGMENT"), ("parameterFormat", "x")]
)
def test_create_refuses_another_channel_audience_or_format_with_422(
    api: Api, field: str, value: str
) -> None:
    error = api.refused("POST", "/api/campaigns/create", 422, json=CREATE | {field: value})
    assert error.startswith(f"{field}: ")
    assert not api.world.store.list_campaigns()


@pytest.mark.parametrize("missing", ["name", "templateName", "channel", "audienceType"])
def test_create_refuses_a_missing_field_naming_it(api: Api, missing: str) -> None:
    body = {k: v for k, v in CREATE.items() if k != missing}
    assert (
        api.refused("POST", "/api/campaigns/create", 422, json=body) == f"{missing}: Field required"
    )


def test_populate_reports_duplicates_and_invalid_rows_as_the_cli_does(api: Api) -> None:
    campaign_id = api.create()
    first = api.upload(campaign_id, b"phone,name\n9876500000,Asha\n12,Ravi\n9876500000,Asha\n")
    assert first.json() == {
        "success": True,
        "inserted": 1,
        "duplicates": 1,
        "suppressed": 0,
        "invalidCount": 1,
        "invalid": [{"line": 3, "value": "12", "reason": first.json()["invalid"][0]["reason"]}],
    }
    again = api.upload(campaign_id, b"9876500000\n")
    assert again.json()["duplicates"] == 1
    assert api.campaign(campaign_id)["totalRecipients"] == 1


def test_a_malformed_csv_is_a_bad_body_naming_the_upload_not_a_temporary_file(api: Api) -> None:
    campaign_id = api.create()
    response = api.call(
        "POST",
        f"/api/campaigns/{campaign_id}/populate",
        files={"file": ("march list.csv", b'phone\n"9876500000\n', "text/csv")},
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error.startswith("march list.csv: line 2: malformed CSV"), error
    assert "/tmp" not in error
    assert not list(api.world.store.iter_recipients(campaign_id))


def test_populate_takes_the_default_region_as_a_query_parameter(api: Api) -> None:
    campaign_id = api.create()
    files = {"file": ("r.csv", b"2025550123\n", "text/csv")}
    path = f"/api/campaigns/{campaign_id}/populate?defaultRegion=US"
    assert api.ok("POST", path, files=files)["inserted"] == 1
    assert [r.phone for r in api.world.store.iter_recipients(campaign_id)] == ["12025550123"]
    assert api.refused("POST", f"{path[:-2]}ZZ", 422, files=files).startswith("Unknown")


def test_populate_needs_a_multipart_body_with_a_file_field(api: Api) -> None:
    campaign_id = api.create()
    path = f"/api/campaigns/{campaign_id}/populate"
    assert "multipart/form-data" in api.refused("POST", path, 400, content=b"9876500000\n")
    other = {"other": ("r.csv", b"9876500000\n", "text/csv")}
    assert api.refused("POST", path, 400, files=other) == "the multipart body has no 'file' field"
    assert not list(api.world.store.iter_recipients(campaign_id))


def test_populating_a_running_campaign_is_refused_before_the_upload(api: Api) -> None:
    campaign_id = api.populated()
    api.control(campaign_id, "start")
    error = api.refused("POST", f"/api/campaigns/{campaign_id}/populate", 422, files={
        "file": ("r.csv", csv_of(national(1, start=50)), "text/csv")
    })  # fmt: skip
    assert error.startswith("Campaign status is RUNNING: cannot populate")


@pytest.mark.parametrize(
    ("actions", "new_status"),
    [(["start"], "RUNNING"), (["start", "pause"], "PAUSED"),
     (["start", "pause", "resume"], "RUNNING"), (["cancel"], "CANCELLED")],
)  # fmt: skip
def test_control_answers_the_new_status(api: Api, actions: list[str], new_status: str) -> None:
    campaign_id = api.populated()
    for action in actions:
        response = api.control(campaign_id, action)
        assert response.status_code == 200
    assert response.json()["newStatus"] == new_status
    assert api.campaign(campaign_id)["status"] == new_status


def test_start_enqueues_the_pending_recipients(api: Api) -> None:
    campaign_id = api.populated(national(30))
    body = api.control(campaign_id, "start").json()
    assert body == {
        "success": True,
        "newStatus": "RUNNING",
        "enqueuedBatches": 2,
        "enqueuedRecipients": 30,
    }


def test_a_refused_transition_is_409_with_the_old_apps_message(api: Api) -> None:
    campaign_id = api.create()
    assert api.control(campaign_id, "start").json()["newStatus"] == "COMPLETED"  # nobody to send
    response = api.control(campaign_id, "start")
    assert response.status_code == 409
    assert response.json() == {
        "success": False,
        "error": "Campaign status is COMPLETED: cannot start",
    }


def test_control_refuses_an_unknown_action_with_422(api: Api) -> None:
    campaign_id = api.populated()
    path = f"/api/campaigns/{campaign_id}/control"
    for action in ("complete", "fly", ""):
        assert api.refused("POST", path, 422, json={"action": action}).startswith("action: ")
    assert api.campaign(campaign_id)["status"] == "DRAFT"


def test_start_while_an_import_runs_is_409(api: Api) -> None:
    campaign_id = api.populated()
    api.world.store.import_locks[campaign_id] = ("another-import", 2**40)
    response = api.control(campaign_id, "start")
    assert response.status_code == 409
    assert "import" in response.json()["error"].lower()
    assert api.campaign(campaign_id)["status"] == "DRAFT"


def test_execute_batch_on_a_campaign_that_is_not_running_is_409(api: Api) -> None:
    campaign_id = api.populated()
    assert (
        api.refused("POST", f"/api/campaigns/{campaign_id}/execute-batch", 409)
        == "Campaign status is DRAFT: cannot execute-batch"
    )


def test_execute_batch_with_nothing_pending_answers_every_result_field(api: Api) -> None:
    campaign_id = api.populated(national(1))
    api.control(campaign_id, "start")
    key = (campaign_id, e164(national(1)[0]))
    store = api.world.store
    store.recipients[key] = replace(store.recipients[key], status=RecipientStatus.SENDING)
    body = api.ok("POST", f"/api/campaigns/{campaign_id}/execute-batch")
    assert body["result"] == {
        "processed": 0,
        "sent": 0,
        "failed": 0,
        "unknown": 0,
        "paused": False,
        "completed": False,
        "pauseReason": None,
    }
    assert not api.world.sender.sent


def test_enqueue_answers_what_it_enqueued(api: Api) -> None:
    campaign_id = api.populated(national(3))
    api.control(campaign_id, "start")
    body = api.ok("POST", f"/api/campaigns/{campaign_id}/enqueue")
    assert body == {
        "success": True,
        "enqueuedBatches": 1,
        "enqueuedRecipients": 3,
        "completed": False,
    }
    draft = api.populated()
    assert api.refused("POST", f"/api/campaigns/{draft}/enqueue", 409) == (
        "Campaign status is DRAFT: cannot enqueue"
    )


def test_reconcile_answers_the_cli_s_report(api: Api) -> None:
    campaign_id = api.populated(national(2))
    api.control(campaign_id, "start")
    body = api.ok("POST", f"/api/campaigns/{campaign_id}/reconcile")
    assert [c["campaignId"] for c in body["campaigns"]] == [campaign_id]
    assert body["campaigns"][0]["status"] == "RUNNING"


def test_requeue_unknown_needs_an_explicit_confirmation(api: Api) -> None:
    campaign_id = api.populated(national(2))
    api.control(campaign_id, "start")
    phone = e164(national(1)[0])
    key = (campaign_id, phone)
    store = api.world.store
    store.recipients[key] = replace(store.recipients[key], status=RecipientStatus.UNKNOWN)
    store.add_counts(campaign_id, unknown=1)
    path = f"/api/campaigns/{campaign_id}/requeue-unknown"
    assert api.refused("POST", path, 400) == "the body must be a JSON object"
    assert api.refused("POST", path, 400, json={}).startswith("confirm must be true")
    assert api.refused("POST", path, 400, json={"confirm": False}).startswith("confirm must be")
    assert api.refused("POST", path, 422, json={"confirm": "yes"}).startswith("confirm: ")
    assert store.recipients[key].status is RecipientStatus.UNKNOWN
    body = api.ok("POST", path, json={"confirm": True})
    assert body["requeued"] == 1
    assert store.recipients[key].status is RecipientStatus.PENDING


@pytest.mark.parametrize(
    ("method", "suffix", "kwargs"),
    [
        ("GET", "", {}),
        ("POST", "/control", {"json": {"action": "start"}}),
        ("POST", "/execute-batch", {}),
        ("POST", "/enqueue", {}),
        ("POST", "/reconcile", {}),
        ("POST", "/requeue-unknown", {"json": {"confirm": True}}),
        ("POST", "/populate", {"files": {"file": ("r.csv", b"9876500000\n", "text/csv")}}),
    ],
)
def test_every_campaign_route_answers_404_for_an_unknown_id_and_422_for_a_malformed_one(
    api: Api, method: str, suffix: str, kwargs: dict[str, object]
) -> None:
    unknown = unknown_campaign_id()
    assert api.refused(method, f"/api/campaigns/{unknown}{suffix}", 404, **kwargs) == (
        f"Campaign not found: {unknown}"
    )
    assert api.refused(method, f"/api/campaigns/cmp_nope{suffix}", 422, **kwargs) == (
        "Malformed campaign id: 'cmp_nope' (expected cmp_<uuid4>)"
    )


def test_the_api_refuses_to_start_with_a_malformed_price_table(tmp_path: Path) -> None:
    prices = tmp_path / "prices.csv"
    prices.write_text("calling_code,category,price\n91,marketing\n")

    with pytest.raises(ConfigError, match=r"line 2: 2 values, expected 3"):
        build_api(prices_file=prices)
