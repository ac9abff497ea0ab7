"""``campaign-producer`` enqueue, execute-batch and the dead-letter queue, on the in-memory
adapters (execute-batch sends through a ``FakeSender``)."""

from __future__ import annotations

import json

import pytest

from campaigns.domain.errors import RecipientRejected
from campaigns.domain.message import decode, encode, new_batch
from campaigns.domain.models import TemplateParam
from tests.unit.producer_support import (
    PHONE_NUMBER_ID,
    PROG,
    SANDBOX_TOKEN,
    Cli,
    e164,
    national,
    unknown_campaign_id,
)


@pytest.fixture
def meta_credentials(cli: Cli) -> None:
    cli.env(META_ACCESS_TOKEN=SANDBOX_TOKEN, META_PHONE_NUMBER_ID=PHONE_NUMBER_ID)


# -- enqueue ---------------------------------------------------------------------------------


def test_enqueue_can_be_repeated_and_sends_the_pending_batches_each_time(cli: Cli) -> None:
    cli.env(BATCH_SIZE="4")
    campaign_id = cli.populated(national(9))
    cli.ok("start", campaign_id)
    cli.drain()
    cli.set_recipient(campaign_id, e164(national(1)[0]), status="SENT")
    pending = sorted(e164(p) for p in national(8, start=1))

    first = cli.ok("enqueue", campaign_id)
    first_batches = cli.batches()
    second = cli.ok("enqueue", campaign_id)
    second_batches = cli.batches()

    for result, batches in ((first, first_batches), (second, second_batches)):
        assert (result["enqueuedBatches"], result["enqueuedRecipients"]) == (2, 8)
        assert result["completed"] is False
        assert sorted(p for batch in batches for p in batch.phones) == pending
    assert set(cli.statuses(campaign_id).values()) == {"PENDING", "SENT"}
    assert cli.campaign(campaign_id)["status"] == "RUNNING"


def test_enqueue_with_nothing_pending_completes_a_running_campaign(cli: Cli) -> None:
    campaign_id = cli.campaign_in("RUNNING")
    cli.drain()
    for phone in national(2):
        cli.set_recipient(campaign_id, e164(phone), status="FAILED")

    result = cli.ok("enqueue", campaign_id)

    assert (result["enqueuedBatches"], result["completed"]) == (0, True)
    assert cli.campaign(campaign_id)["status"] == "COMPLETED"
    assert cli.drain() == []


@pytest.mark.parametrize("status", ["DRAFT", "PAUSED", "CANCELLED"])
def test_enqueue_is_refused_unless_the_campaign_is_running(cli: Cli, status: str) -> None:
    campaign_id = cli.campaign_in(status)
    cli.drain()

    line = cli.refused("enqueue", campaign_id, code=1)

    assert line == f"{PROG}Campaign status is {status}: cannot enqueue"
    assert cli.drain() == []


# -- execute-batch (through a FakeSender; the Cloud API emulator: tests/integration) -----------


EXECUTE_KEYS = {"processed", "sent", "failed", "paused", "completed", "pauseReason"}


def test_execute_batch_sends_every_pending_recipient_through_the_cloud_api(
    cli: Cli, meta_credentials: None
) -> None:
    campaign_id = cli.create()
    cli.populate(campaign_id, "phone,name\n9876500001,Asha\n9876500002,Ravi\n9876500003,Meera\n")
    cli.ok("start", campaign_id)

    result = cli.ok("execute-batch", campaign_id)

    assert set(result) >= EXECUTE_KEYS
    assert {key: result[key] for key in EXECUTE_KEYS} == {
        "processed": 3,
        "sent": 3,
        "failed": 0,
        "paused": False,
        "completed": True,
        "pauseReason": None,
    }
    accepted = dict(cli.sender.accepted)  # phone -> wamid
    assert sorted(accepted) == ["919876500001", "919876500002", "919876500003"]
    sent = {message.to: message for message in cli.sender.sent}
    assert sent["919876500001"].template_name == "diwali_offer"
    assert sent["919876500001"].params == (TemplateParam("name", "Asha"),)  # the request body:
    items = cli.recipients(campaign_id)  # tests/integration/test_producer_on_moto.py
    for phone, wamid in accepted.items():
        assert items[f"USER#{phone}"]["status"] == "SENT"
        assert items[f"USER#{phone}"]["messageId"] == wamid
    item = cli.campaign(campaign_id)
    assert (item["status"], item["sentCount"]) == ("COMPLETED", 3)


def test_execute_batch_processes_at_most_one_batch(cli: Cli, meta_credentials: None) -> None:
    cli.env(BATCH_SIZE="2")
    campaign_id = cli.populated(national(3))
    cli.ok("start", campaign_id)

    first = cli.ok("execute-batch", campaign_id)
    second = cli.ok("execute-batch", campaign_id)

    assert (first["processed"], first["sent"], first["completed"]) == (2, 2, False)
    assert (second["processed"], second["sent"], second["completed"]) == (1, 1, True)
    assert len(cli.sender.accepted) == 3
    assert cli.campaign(campaign_id)["status"] == "COMPLETED"


def test_execute_batch_fails_a_recipient_meta_rejects_with_131026(
    cli: Cli, meta_credentials: None
) -> None:
    cli.sender.script["919876500001"] = [RecipientRejected("META_131026", "not on WhatsApp")]
    campaign_id = cli.populated(national(3))
    cli.ok("start", campaign_id)

    result = cli.ok("execute-batch", campaign_id)

    assert (result["processed"], result["sent"], result["failed"]) == (3, 2, 1)
    assert (result["paused"], result["completed"]) == (False, True)
    rejected = cli.recipients(campaign_id)["USER#919876500001"]
    assert (rejected["status"], rejected["errorCode"], rejected["attempts"]) == (
        "FAILED",
        "META_131026",
        1,
    )
    assert sorted(phone for phone, _ in cli.sender.accepted) == [
        "919876500000",
        "919876500002",
    ]
    item = cli.campaign(campaign_id)
    assert (item["sentCount"], item["failedCount"]) == (2, 1)


def test_a_failed_recipient_is_logged_once_with_its_masked_phone_and_code(
    cli: Cli, meta_credentials: None
) -> None:
    cli.sender.script["919876500001"] = [RecipientRejected("META_131026", "not on WhatsApp")]
    campaign_id = cli.populated(national(3))
    cli.ok("start", campaign_id)

    outcome = cli.run("execute-batch", campaign_id, "--json")

    assert outcome.code == 0
    events = [json.loads(line) for line in outcome.err_lines if line.startswith("{")]
    failed = [e for e in events if e["event"] == "recipient.failed"]
    assert [(e["campaign_id"], e["phone"], e["error_code"]) for e in failed] == [
        (campaign_id, "9198******01", "META_131026")
    ]
    assert "919876500001" not in outcome.err


def test_execute_batch_pauses_the_campaign_when_the_daily_cap_is_reached(
    cli: Cli, meta_credentials: None
) -> None:
    cli.env(DAILY_CAP="2")
    campaign_id = cli.populated(national(3))
    cli.ok("start", campaign_id)

    result = cli.ok("execute-batch", campaign_id)

    reason = "Daily limit reached: 2/2 conversations"
    assert {key: result[key] for key in EXECUTE_KEYS} == {
        "processed": 2,
        "sent": 2,
        "failed": 0,
        "paused": True,
        "completed": False,
        "pauseReason": reason,
    }
    assert len(cli.sender.accepted) == 2
    item = cli.campaign(campaign_id)
    assert (item["status"], item["pauseReason"], item["sentCount"]) == ("PAUSED", reason, 2)
    assert sorted(cli.statuses(campaign_id).values()) == ["PENDING", "SENT", "SENT"]


def test_execute_batch_on_a_running_campaign_with_nothing_pending_completes_it(
    cli: Cli, meta_credentials: None
) -> None:
    campaign_id = cli.campaign_in("RUNNING")
    for phone in national(2):
        cli.set_recipient(campaign_id, e164(phone), status="SENT")

    result = cli.ok("execute-batch", campaign_id)

    assert (result["processed"], result["completed"], result["paused"]) == (0, True, False)
    assert cli.campaign(campaign_id)["status"] == "COMPLETED"
    assert cli.sender.accepted == []


@pytest.mark.parametrize("status", ["DRAFT", "PAUSED"])
def test_execute_batch_is_refused_unless_the_campaign_is_running(
    cli: Cli, meta_credentials: None, status: str
) -> None:
    campaign_id = cli.campaign_in(status)

    line = cli.refused("execute-batch", campaign_id, code=1)

    assert line == f"{PROG}Campaign status is {status}: cannot execute-batch"
    assert cli.sender.accepted == []
    assert cli.campaign(campaign_id)["status"] == status


def test_execute_batch_without_meta_credentials_is_a_configuration_error(cli: Cli) -> None:
    campaign_id = cli.campaign_in("RUNNING")

    line = cli.refused("execute-batch", campaign_id, code=78)

    assert "META_ACCESS_TOKEN" in line
    assert set(cli.statuses(campaign_id).values()) == {"PENDING"}


# -- the dead-letter queue -------------------------------------------------------------------


def _dead_letters(cli: Cli) -> tuple[str, str]:
    valid = encode(new_batch(cli.create(), ["919876500001", "919876500002"]))
    garbage = "this is not a batch message"
    for body in (valid, garbage):
        cli.dlq.send([body])
    return valid, garbage


def test_dlq_list_shows_valid_and_garbage_messages_without_consuming_them(cli: Cli) -> None:
    valid, _ = _dead_letters(cli)
    campaign_id = decode(valid).campaign_id

    first = cli.ok("dlq", "list")["messages"]
    second = cli.ok("dlq", "list")["messages"]

    assert len(first) == 2
    by_validity = {entry["valid"]: entry for entry in first}
    assert set(by_validity) == {True, False}
    assert by_validity[True]["campaignId"] == campaign_id
    assert by_validity[True]["recipients"] == 2
    assert by_validity[False]["body"] == "this is not a batch message"
    assert by_validity[False]["problem"]
    assert {entry["messageId"] for entry in second} == {entry["messageId"] for entry in first}
    assert cli.drain() == []


def test_dlq_redrive_moves_the_valid_messages_and_leaves_poison_in_the_dlq(cli: Cli) -> None:
    valid, garbage = _dead_letters(cli)

    result = cli.ok("dlq", "redrive")

    assert (result["redriven"], result["skippedPoison"]) == (1, 1)
    assert cli.drain() == [valid]
    assert cli.drain(cli.dlq) == [garbage]


def test_dlq_redrive_with_include_poison_moves_every_message_to_the_main_queue(
    cli: Cli,
) -> None:
    valid, garbage = _dead_letters(cli)

    result = cli.ok("dlq", "redrive", "--include-poison")

    assert (result["redriven"], result["skippedPoison"]) == (2, 0)
    assert sorted(cli.drain()) == sorted([valid, garbage])
    assert cli.drain(cli.dlq) == []
    assert cli.ok("dlq", "list")["messages"] == []


def test_dlq_redrive_skips_a_message_whose_campaign_does_not_exist(cli: Cli) -> None:
    orphan = encode(new_batch(unknown_campaign_id(), ["919876500001"]))
    cli.dlq.send([orphan])

    result = cli.ok("dlq", "redrive")

    assert (result["redriven"], result["skippedPoison"]) == (0, 1)
    assert cli.drain() == []
    assert cli.drain(cli.dlq) == [orphan]


def test_dlq_list_marks_undecodable_and_orphaned_messages_as_poison(cli: Cli) -> None:
    valid, _ = _dead_letters(cli)
    orphan_id = unknown_campaign_id()
    cli.dlq.send([encode(new_batch(orphan_id, ["919876500003"]))])

    listed = cli.ok("dlq", "list")["messages"]

    by_campaign = {entry.get("campaignId"): entry for entry in listed}
    assert by_campaign[decode(valid).campaign_id]["poison"] is False
    assert "problem" not in by_campaign[decode(valid).campaign_id]
    assert by_campaign[orphan_id]["poison"] is True
    assert by_campaign[orphan_id]["problem"] == f"campaign {orphan_id} does not exist"
    assert by_campaign[None]["poison"] is True


def test_dlq_list_never_shows_a_raw_phone_number(cli: Cli) -> None:
    cli.dlq.send(['{"campaignId": "x", "phones": ["919876543210", "+14155550123"]}'])
    cli.dlq.send(["call 919876543211 now"])

    outcome = cli.run("dlq", "list", "--json")

    assert outcome.code == 0
    for raw in ("919876543210", "14155550123", "919876543211"):
        assert raw not in outcome.out
    assert "9198******10" in outcome.out
    assert "call 9198******11 now" in outcome.out
