"""The list of campaigns and the recipients of one, as pages and as a streamed CSV."""

from __future__ import annotations

import csv
import io

import pytest

from campaigns.domain.errors import RecipientRejected
from campaigns.domain.meanings import error_meaning
from tests.api.support import Api
from tests.unit.producer_support import e164, national, unknown_campaign_id

HEADER = "phone,status,attempts,errorCode,errorMeaning,messageId,unknownReason,finishedAt"


def sent_with_one_failure(api: Api, count: int = 3) -> tuple[str, str]:
    """A campaign whose first recipient Meta rejected (131026) and the rest were sent."""
    phones = national(count)
    failed = e164(phones[0])
    api.world.sender.script[failed] = [RecipientRejected("META_131026", "undeliverable")]
    campaign_id = api.populated(phones)
    api.control(campaign_id, "start")
    api.ok("POST", f"/api/campaigns/{campaign_id}/execute-batch")
    return campaign_id, failed


def test_the_list_is_newest_first_with_progress_percent(api: Api) -> None:
    ids = [api.create(name=f"c{n}") for n in range(3)]
    body = api.ok("GET", "/api/campaigns")
    assert set(body) == {"success", "campaigns", "nextCursor"}
    shown = [c["campaignId"] for c in body["campaigns"]]
    assert sorted(shown) == sorted(ids)
    created = [c["createdAt"] for c in body["campaigns"]]
    assert created == sorted(created, reverse=True)
    assert all("progressPercent" in c for c in body["campaigns"])
    assert body["nextCursor"] is None


def test_the_list_pages_with_its_cursor_and_filters_by_status(api: Api) -> None:
    ids = {api.create(name=f"c{n}") for n in range(5)}
    running = api.populated()
    api.control(running, "start")
    seen: list[str] = []
    cursor = None
    while True:
        query = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = api.ok("GET", "/api/campaigns", params=query)
        assert len(page["campaigns"]) <= 2
        seen += [c["campaignId"] for c in page["campaigns"]]
        if (cursor := page["nextCursor"]) is None:
            break
    assert sorted(seen) == sorted(ids | {running})
    only = api.ok("GET", "/api/campaigns", params={"status": "RUNNING"})["campaigns"]
    assert [c["campaignId"] for c in only] == [running]


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ({"limit": 0}, "limit must be between 1 and 200"),
        ({"limit": 201}, "limit must be between 1 and 200"),
        ({"cursor": "not-ours"}, "invalid cursor"),
    ],
)
def test_the_list_refuses_a_bad_limit_or_cursor_with_422(
    api: Api, query: dict[str, object], error: str
) -> None:
    assert api.refused("GET", "/api/campaigns", 422, params=query) == error


@pytest.mark.parametrize("query", [{"limit": "ten"}, {"status": "DONE"}])
def test_the_list_refuses_a_malformed_parameter_with_422_naming_it(
    api: Api, query: dict[str, str]
) -> None:
    (name,) = query
    assert api.refused("GET", "/api/campaigns", 422, params=query).startswith(f"{name}: ")


def test_failed_recipients_come_with_their_error_meaning(api: Api) -> None:
    campaign_id, failed = sent_with_one_failure(api)
    body = api.ok("GET", f"/api/campaigns/{campaign_id}/recipients", params={"status": "FAILED"})
    assert set(body) == {"success", "campaignId", "recipients", "nextCursor"}
    assert body["campaignId"] == campaign_id
    assert body["nextCursor"] is None
    (row,) = body["recipients"]
    assert row | {"finishedAt": None} == {
        "phone": failed,
        "status": "FAILED",
        "attempts": 1,
        "errorCode": "META_131026",
        "errorMeaning": error_meaning("META_131026"),
        "messageId": None,
        "unknownReason": None,
        "finishedAt": None,
    }
    assert row["finishedAt"].endswith("Z")


def test_recipient_pages_cover_every_recipient_once(api: Api) -> None:
    campaign_id = api.populated(national(7))
    seen: list[str] = []
    cursor = None
    while True:
        query = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = api.ok("GET", f"/api/campaigns/{campaign_id}/recipients", params=query)
        seen += [r["phone"] for r in page["recipients"]]
        if (cursor := page["nextCursor"]) is None:
            break
    assert sorted(seen) == sorted(e164(p) for p in national(7))
    assert len(seen) == 7


def test_recipients_refuse_bad_input(api: Api) -> None:
    campaign_id = api.populated()
    path = f"/api/campaigns/{campaign_id}/recipients"
    assert api.refused("GET", path, 422, params={"limit": 501}) == (
        "limit must be between 1 and 500"
    )
    assert api.refused("GET", path, 422, params={"status": "LOST"}).startswith("status: ")
    unknown = unknown_campaign_id()
    assert api.refused("GET", f"/api/campaigns/{unknown}/recipients", 404) == (
        f"Campaign not found: {unknown}"
    )
    assert api.refused("GET", "/api/campaigns/cmp_x/recipients", 422).startswith("Malformed")


def test_the_csv_export_is_a_streamed_attachment_with_every_row(api: Api) -> None:
    campaign_id, failed = sent_with_one_failure(api, count=4)
    response = api.call("GET", f"/api/campaigns/{campaign_id}/recipients.csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"] == (
        f'attachment; filename="{campaign_id}-recipients.csv"'
    )
    assert "content-length" not in response.headers  # streamed
    assert response.text.splitlines()[0] == HEADER
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 4
    assert {r["status"] for r in rows} == {"SENT", "FAILED"}
    only = api.call("GET", f"/api/campaigns/{campaign_id}/recipients.csv?status=FAILED")
    (row,) = csv.DictReader(io.StringIO(only.text))
    assert (row["phone"], row["errorCode"]) == (failed, "META_131026")


def test_the_csv_export_of_an_unknown_campaign_is_a_json_404(api: Api) -> None:
    unknown = unknown_campaign_id()
    response = api.call("GET", f"/api/campaigns/{unknown}/recipients.csv")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"success": False, "error": f"Campaign not found: {unknown}"}
