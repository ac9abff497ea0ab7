"""``campaign-producer`` reconcile and requeue-unknown, on the in-memory adapters."""

from __future__ import annotations

import time

import pytest

from tests.unit.producer_support import (
    PROG,
    STATUSES,
    Cli,
    CliDriver,
    e164,
    national,
    unknown_campaign_id,
)

# -- reconcile -------------------------------------------------------------------------------


def test_reconcile_turns_a_sending_recipient_with_an_expired_lease_into_unknown(cli: Cli) -> None:
    campaign_id = cli.campaign_in("RUNNING")
    dead, other = (e164(p) for p in national(2))
    cli.set_recipient(
        campaign_id, dead, status="SENDING", leaseOwner="dead-host", leaseUntil=time.time() - 30
    )

    result = cli.ok("reconcile", campaign_id)

    [report] = result["campaigns"]
    assert report["campaignId"] == campaign_id
    assert report["expiredLeases"] == 1
    assert report["repairedCounters"] == {}  # the expiry counted itself
    assert cli.statuses(campaign_id) == {dead: "UNKNOWN", other: "PENDING"}
    assert cli.recipients(campaign_id)[f"USER#{dead}"]["unknownReason"] == "lease expired"
    assert cli.campaign(campaign_id)["unknownCount"] == 1
    assert cli.ok("status", campaign_id)["unknownCount"] == 1
    assert report["status"] == "RUNNING"  # one recipient is still PENDING


def test_reconcile_leaves_a_sending_recipient_with_a_live_lease_alone(cli: Cli) -> None:
    campaign_id = cli.campaign_in("RUNNING")
    live = e164(national(1)[0])
    cli.set_recipient(
        campaign_id, live, status="SENDING", leaseOwner="busy-host", leaseUntil=time.time() + 300
    )

    [report] = cli.ok("reconcile", campaign_id)["campaigns"]

    assert (report["expiredLeases"], report["repairedCounters"]) == (0, {})
    assert cli.statuses(campaign_id)[live] == "SENDING"
    assert cli.campaign(campaign_id)["status"] == "RUNNING"


def test_reconcile_repairs_wrong_counters_from_the_recipient_items(cli: Cli) -> None:
    campaign_id = cli.populated(national(4))
    cli.ok("start", campaign_id)
    phones = [e164(p) for p in national(4)]
    cli.set_recipient(campaign_id, phones[0], status="SENT", messageId="wamid.A")
    cli.set_recipient(campaign_id, phones[1], status="FAILED", errorCode="META_131026")
    cli.set_campaign(campaign_id, sentCount=5, failedCount=0, unknownCount=2, totalRecipients=9)

    [report] = cli.ok("reconcile", campaign_id)["campaigns"]

    assert report["repairedCounters"] == {
        "sentCount": {"from": 5, "to": 1},
        "failedCount": {"from": 0, "to": 1},
        "unknownCount": {"from": 2, "to": 0},
        "totalRecipients": {"from": 9, "to": 4},
    }
    item = cli.campaign(campaign_id)
    assert (item["sentCount"], item["failedCount"], item["unknownCount"]) == (1, 1, 0)
    assert item["totalRecipients"] == 4
    assert item["status"] == "RUNNING"


def test_reconcile_repairs_the_delivery_counters_and_tallies_from_the_recipients(
    cli: Cli,
) -> None:
    reconcile_repairs_the_delivery_counters(cli)


def reconcile_repairs_the_delivery_counters(cli: CliDriver) -> None:
    """The story, on whichever adapters ``cli`` runs (tests/integration runs it on moto)."""
    campaign_id = cli.populated(national(4))
    cli.ok("start", campaign_id)
    phones = [e164(p) for p in national(4)]
    for phone in phones:
        cli.set_recipient(campaign_id, phone, status="SENT", messageId=f"wamid.{phone}")
    cli.set_recipient(campaign_id, phones[0], deliveryStatus="READ", pricingCategory="marketing")
    cli.set_recipient(campaign_id, phones[1], deliveryStatus="DELIVERED")
    cli.set_recipient(
        campaign_id, phones[2], deliveryStatus="FAILED", deliveryErrorCode="META_131026"
    )
    cli.set_recipient(campaign_id, phones[3], deliveryStatus="HELD")
    # Counters as a crash or an older version could leave them.
    cli.set_campaign(
        campaign_id,
        sentCount=4,
        deliveredCount=7,
        readCount=0,
        heldCount=0,
        **{"deliveryFailed:META_131049": 2},
    )

    [report] = cli.ok("reconcile", campaign_id)["campaigns"]

    assert report["repairedCounters"] == {
        "deliveredCount": {"from": 7, "to": 2},
        "readCount": {"from": 0, "to": 1},
        "deliveryFailedCount": {"from": 0, "to": 1},
        "heldCount": {"from": 0, "to": 1},
        "deliveryFailed:META_131049": {"from": 2, "to": 0},
        "deliveryFailed:META_131026": {"from": 0, "to": 1},
        "billed:marketing:91": {"from": 0, "to": 1},
    }
    status = cli.ok("status", campaign_id)
    assert (status["deliveredCount"], status["readCount"], status["heldCount"]) == (2, 1, 1)
    assert status["deliveryFailures"] == {"META_131026": 1}
    assert status["billable"] == [{"category": "marketing", "callingCode": "91", "count": 1}]
    [again] = cli.ok("reconcile", campaign_id)["campaigns"]
    assert again["repairedCounters"] == {}


def test_reconcile_completes_a_running_campaign_with_nothing_pending_or_sending(
    cli: Cli,
) -> None:
    campaign_id = cli.campaign_in("RUNNING")
    first, second = (e164(p) for p in national(2))
    cli.set_recipient(campaign_id, first, status="SENT", messageId="wamid.A")
    cli.set_recipient(campaign_id, second, status="FAILED", errorCode="META_131026")
    cli.set_campaign(campaign_id, sentCount=1, failedCount=1)

    [report] = cli.ok("reconcile", campaign_id)["campaigns"]

    assert (report["completed"], report["status"], report["repairedCounters"]) == (
        True,
        "COMPLETED",
        {},
    )
    item = cli.campaign(campaign_id)
    assert item["status"] == "COMPLETED"
    assert item["completedAt"].endswith("Z")


def test_reconcile_does_not_complete_a_paused_campaign(cli: Cli) -> None:
    campaign_id = cli.campaign_in("PAUSED")
    for phone in national(2):
        cli.set_recipient(campaign_id, e164(phone), status="SENT")
    cli.set_campaign(campaign_id, sentCount=2)

    [report] = cli.ok("reconcile", campaign_id)["campaigns"]

    assert (report["completed"], report["status"]) == (False, "PAUSED")


def test_reconcile_without_an_id_sweeps_running_and_paused_campaigns(cli: Cli) -> None:
    by_status = {status: cli.campaign_in(status) for status in STATUSES}

    result = cli.ok("reconcile")

    swept = {report["campaignId"]: report["status"] for report in result["campaigns"]}
    assert swept == {by_status["RUNNING"]: "RUNNING", by_status["PAUSED"]: "PAUSED"}


def test_reconcile_of_an_unknown_campaign_is_refused(cli: Cli) -> None:
    campaign_id = unknown_campaign_id()

    line = cli.refused("reconcile", campaign_id, code=65)

    assert line == f"{PROG}Campaign not found: {campaign_id}"


# -- requeue-unknown -------------------------------------------------------------------------


def _with_unknown(cli: Cli) -> tuple[str, str]:
    campaign_id = cli.campaign_in("RUNNING")
    cli.drain()
    phone = e164(national(1)[0])
    cli.set_recipient(campaign_id, phone, status="UNKNOWN", leaseOwner="dead-host")
    cli.set_campaign(campaign_id, unknownCount=1)
    return campaign_id, phone


def test_requeue_unknown_without_yes_is_refused_and_changes_nothing(cli: Cli) -> None:
    campaign_id, phone = _with_unknown(cli)

    line = cli.refused("requeue-unknown", campaign_id, code=65)

    assert "--yes" in line
    assert cli.statuses(campaign_id)[phone] == "UNKNOWN"
    assert cli.campaign(campaign_id)["unknownCount"] == 1
    assert cli.drain() == []


def test_requeue_unknown_with_yes_returns_unknown_recipients_to_pending(cli: Cli) -> None:
    campaign_id, phone = _with_unknown(cli)

    result = cli.ok("requeue-unknown", campaign_id, "--yes")

    assert result["requeued"] == 1
    assert result["enqueuedBatches"] == 1
    assert cli.statuses(campaign_id)[phone] == "PENDING"
    assert "leaseOwner" not in cli.recipients(campaign_id)[f"USER#{phone}"]
    assert cli.campaign(campaign_id)["unknownCount"] == 0
    assert sorted(p for batch in cli.batches() for p in batch.phones) == sorted(
        e164(p) for p in national(2)
    )


@pytest.mark.parametrize("status", ["COMPLETED", "CANCELLED"])
def test_requeue_unknown_is_refused_on_a_finished_campaign(cli: Cli, status: str) -> None:
    campaign_id = cli.campaign_in(status)

    line = cli.refused("requeue-unknown", campaign_id, "--yes", code=1)

    assert line == f"{PROG}Campaign status is {status}: cannot requeue-unknown"
