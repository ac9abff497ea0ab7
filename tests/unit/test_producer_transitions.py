"""``campaign-producer`` start, pause, resume, cancel, status and list, on the in-memory
adapters."""

from __future__ import annotations

import math
import threading
import time

import pytest

from tests.unit.producer_support import (
    PROG,
    STATUSES,
    Cli,
    e164,
    national,
    unknown_campaign_id,
)

# The transition table, written out here rather than read from the code under test.
ALLOWED_FROM = {
    "start": {"DRAFT"},
    "pause": {"RUNNING"},
    "resume": {"PAUSED"},
    "cancel": {"DRAFT", "RUNNING", "PAUSED"},
}
REFUSED = [
    (status, action)
    for action, allowed in ALLOWED_FROM.items()
    for status in STATUSES
    if status not in allowed
]


# -- transitions -----------------------------------------------------------------------------


def test_start_moves_draft_to_running_and_enqueues_one_message_per_batch(cli: Cli) -> None:
    cli.env(BATCH_SIZE="2")
    phones = [e164(p) for p in national(23)]
    campaign_id = cli.populated(national(23))
    cli.set_recipient(campaign_id, phones[0], status="SENT")  # not PENDING: not enqueued

    result = cli.ok("start", campaign_id)

    batches = cli.batches()
    assert result == {
        "success": True,
        "newStatus": "RUNNING",
        "enqueuedBatches": math.ceil(22 / 2),
        "enqueuedRecipients": 22,
    }
    assert len(batches) == 11
    assert all(batch.campaign_id == campaign_id for batch in batches)
    assert all(1 <= len(batch.phones) <= 2 for batch in batches)
    enqueued = [phone for batch in batches for phone in batch.phones]
    assert sorted(enqueued) == sorted(phones[1:])
    assert len({batch.batch_id for batch in batches}) == 11
    item = cli.campaign(campaign_id)
    assert item["status"] == "RUNNING"
    assert item["startedAt"].endswith("Z")


def test_start_uses_batches_of_25_by_default(cli: Cli) -> None:
    campaign_id = cli.populated(national(51))

    result = cli.ok("start", campaign_id)

    assert (result["enqueuedBatches"], result["enqueuedRecipients"]) == (3, 51)
    assert sorted(len(batch.phones) for batch in cli.batches()) == [1, 25, 25]


def test_start_on_an_empty_campaign_completes_it_at_once(cli: Cli) -> None:
    campaign_id = cli.create()

    result = cli.ok("start", campaign_id)

    assert result["newStatus"] == "COMPLETED"
    assert result["enqueuedBatches"] == 0
    item = cli.campaign(campaign_id)
    assert item["status"] == "COMPLETED"
    assert item["completedAt"].endswith("Z")
    assert cli.drain() == []


def test_pause_moves_running_to_paused_with_an_operator_reason(cli: Cli) -> None:
    campaign_id = cli.campaign_in("RUNNING")

    result = cli.ok("pause", campaign_id)

    assert result == {"success": True, "newStatus": "PAUSED"}
    item = cli.campaign(campaign_id)
    assert (item["status"], item["pauseReason"]) == ("PAUSED", "Paused by operator")
    assert item["pausedAt"].endswith("Z")


def test_resume_moves_paused_to_running_and_enqueues_only_pending_recipients(cli: Cli) -> None:
    cli.env(BATCH_SIZE="3")
    phones = [e164(p) for p in national(8)]
    campaign_id = cli.populated(national(8))
    cli.ok("start", campaign_id)
    cli.ok("pause", campaign_id)
    cli.drain()
    cli.set_recipient(campaign_id, phones[0], status="SENT")
    cli.set_recipient(campaign_id, phones[1], status="FAILED", errorCode="META_131026")
    cli.set_recipient(campaign_id, phones[2], status="UNKNOWN")
    cli.set_recipient(campaign_id, phones[3], status="SENDING", leaseOwner="x", leaseUntil=1)

    result = cli.ok("resume", campaign_id)

    batches = cli.batches()
    assert result["newStatus"] == "RUNNING"
    assert (result["enqueuedBatches"], result["enqueuedRecipients"]) == (2, 4)
    assert sorted(p for batch in batches for p in batch.phones) == sorted(phones[4:])
    assert all(len(batch.phones) <= 3 for batch in batches)
    item = cli.campaign(campaign_id)
    assert item["status"] == "RUNNING"
    assert "pauseReason" not in item


def test_resume_with_nothing_pending_completes_the_campaign(cli: Cli) -> None:
    campaign_id = cli.campaign_in("PAUSED")
    for phone in national(2):
        cli.set_recipient(campaign_id, e164(phone), status="SENT")

    result = cli.ok("resume", campaign_id)

    assert result["newStatus"] == "COMPLETED"
    assert cli.campaign(campaign_id)["status"] == "COMPLETED"


@pytest.mark.parametrize("status", ["DRAFT", "RUNNING", "PAUSED"])
def test_cancel_is_allowed_from(cli: Cli, status: str) -> None:
    campaign_id = cli.campaign_in(status)

    result = cli.ok("cancel", campaign_id)

    assert result == {"success": True, "newStatus": "CANCELLED"}
    item = cli.campaign(campaign_id)
    assert item["status"] == "CANCELLED"
    assert item["cancelledAt"].endswith("Z")


@pytest.mark.parametrize(("status", "action"), REFUSED)
def test_every_refused_transition_exits_1_and_leaves_the_status_unchanged(
    cli: Cli, status: str, action: str
) -> None:
    campaign_id = cli.campaign_in(status)
    before = cli.campaign(campaign_id)
    cli.drain()

    line = cli.refused(action, campaign_id, code=1)

    assert line == f"{PROG}Campaign status is {status}: cannot {action}"
    assert cli.campaign(campaign_id) == before
    assert cli.drain() == []


@pytest.mark.parametrize("action", ["start", "pause", "resume", "cancel"])
def test_a_transition_of_an_unknown_campaign_is_refused(cli: Cli, action: str) -> None:
    campaign_id = unknown_campaign_id()

    line = cli.refused(action, campaign_id, code=65)

    assert line == f"{PROG}Campaign not found: {campaign_id}"
    assert cli.campaign_items() == []


@pytest.mark.parametrize("action", ["start", "pause", "resume", "cancel", "status", "enqueue"])
def test_a_malformed_campaign_id_is_refused(cli: Cli, action: str) -> None:
    line = cli.refused(action, "cmp_nope", code=65)

    assert "Malformed campaign id" in line


# -- status and list -------------------------------------------------------------------------


def test_status_reports_counters_progress_and_timestamps(cli: Cli) -> None:
    campaign_id = cli.populated(national(4))
    cli.ok("start", campaign_id)
    cli.set_campaign(campaign_id, sentCount=1, failedCount=1)

    status = cli.ok("status", campaign_id)

    assert {
        k: status[k]
        for k in (
            "campaignId",
            "status",
            "sentCount",
            "failedCount",
            "pendingCount",
            "unknownCount",
            "totalRecipients",
            "progress",
            "pauseReason",
        )
    } == {
        "campaignId": campaign_id,
        "status": "RUNNING",
        "sentCount": 1,
        "failedCount": 1,
        "pendingCount": 2,
        "unknownCount": 0,
        "totalRecipients": 4,
        "progress": 50.0,
        "pauseReason": None,
    }
    assert status["name"] == "Diwali offer"
    assert status["templateName"] == "diwali_offer"
    assert status["createdAt"] <= status["startedAt"]
    assert (status["pausedAt"], status["completedAt"]) == (None, None)


def test_status_of_a_paused_campaign_shows_its_reason(cli: Cli) -> None:
    campaign_id = cli.campaign_in("PAUSED")

    status = cli.ok("status", campaign_id)

    assert (status["status"], status["pauseReason"]) == ("PAUSED", "Paused by operator")
    assert status["pausedAt"] is not None


def test_status_without_json_prints_one_line_per_field(cli: Cli) -> None:
    campaign_id = cli.create()

    outcome = cli.run("status", campaign_id)

    assert outcome.code == 0
    assert f"campaignId: {campaign_id}" in outcome.out.splitlines()
    assert "status: DRAFT" in outcome.out.splitlines()
    assert "pauseReason: -" in outcome.out.splitlines()


def test_status_of_an_unknown_campaign_is_refused(cli: Cli) -> None:
    campaign_id = unknown_campaign_id()

    assert cli.refused("status", campaign_id, code=65) == f"{PROG}Campaign not found: {campaign_id}"


@pytest.mark.parametrize("status", ["PAUSED", "COMPLETED"])
def test_status_watch_on_a_campaign_that_is_not_running_returns_at_once(
    cli: Cli, status: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    campaign_id = cli.campaign_in(status)
    waits: list[float] = []
    monkeypatch.setattr("producer.cli.time.sleep", waits.append)

    outcome = cli.run("status", campaign_id, "--watch", "--interval", "30")

    assert outcome.code == 0
    assert waits == []  # never waited an interval
    bars = [line for line in outcome.out.splitlines() if line.startswith("[")]
    assert len(bars) == 1
    assert bars[0].endswith(status)


def test_status_watch_redraws_until_the_campaign_stops_running(cli: Cli) -> None:
    campaign_id = cli.campaign_in("RUNNING")

    def finish_later() -> None:
        time.sleep(0.8)  # the watch has drawn its first bar by now
        cli.set_campaign(campaign_id, sentCount=1)
        time.sleep(0.5)
        cli.set_campaign(campaign_id, sentCount=2, status="COMPLETED")

    worker = threading.Thread(target=finish_later)
    worker.start()
    try:
        outcome = cli.run("status", campaign_id, "--watch", "--interval", "0.05")
    finally:
        worker.join()

    assert outcome.code == 0
    bars = [line for line in outcome.out.splitlines() if line.startswith("[")]
    assert bars[0].endswith("RUNNING")
    assert "  50.0%  1/2  sent 1" in "\n".join(bars)
    assert bars[-1].endswith("COMPLETED")
    assert " 100.0%  2/2  sent 2" in bars[-1]
    assert len(bars) == len(set(bars))  # redrawn only when something changed
    assert "status: COMPLETED" in outcome.out


@pytest.mark.parametrize("interval", ["0", "-1", "soon"])
def test_status_watch_refuses_an_interval_that_is_not_positive(cli: Cli, interval: str) -> None:
    campaign_id = unknown_campaign_id()  # refused before the campaign is looked up

    line = cli.refused("status", campaign_id, "--watch", "--interval", interval, code=64)

    assert "--interval" in line


def test_status_watch_with_json_prints_only_the_final_status(cli: Cli) -> None:
    campaign_id = cli.campaign_in("CANCELLED")

    status = cli.ok("status", campaign_id, "--watch")

    assert status["status"] == "CANCELLED"


def test_list_shows_every_campaign_with_status_and_progress(cli: Cli) -> None:
    draft = cli.create("first")
    running = cli.campaign_in("RUNNING")
    cli.set_campaign(running, sentCount=1)
    completed = cli.campaign_in("COMPLETED")

    listed = cli.ok("list")["campaigns"]

    by_id = {entry["campaignId"]: entry for entry in listed}
    assert set(by_id) == {draft, running, completed}
    assert (by_id[draft]["status"], by_id[draft]["name"], by_id[draft]["progress"]) == (
        "DRAFT",
        "first",
        0.0,
    )
    assert (by_id[running]["status"], by_id[running]["progress"]) == ("RUNNING", 50.0)
    assert by_id[running]["totalRecipients"] == 2
    assert (by_id[completed]["status"], by_id[completed]["progress"]) == ("COMPLETED", 100.0)
    assert [entry["campaignId"] for entry in listed] == [completed, running, draft]  # newest first


def test_list_with_no_campaigns_is_empty(cli: Cli) -> None:
    assert cli.ok("list")["campaigns"] == []
