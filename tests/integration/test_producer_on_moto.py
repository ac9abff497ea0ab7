"""``campaign-producer`` end to end on the real wiring (``campaigns.wiring.build_operator``):
the in-thread moto server for DynamoDB and SQS, and the sandbox Cloud API for
``execute-batch``. State is read back and arranged with plain boto3 calls, never through the
producer. The rest of the CLI's behaviour is tested on the in-memory adapters
(tests/unit/test_producer_*.py); the DynamoDB adapter's own semantics, in tests/contract."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import structlog

from campaigns.aws.clients import dynamodb_client, sqs_client
from campaigns.aws.dynamo import deserialize, serialize
from campaigns.aws.items import campaign_key, recipient_key, suppression_key
from campaigns.aws.provision import Provisioned, provision
from campaigns.domain.message import BatchMessage, decode, encode, new_batch
from campaigns.settings import Settings, load_settings
from producer.cli import main
from sandbox.aws import MotoServer
from sandbox.cloudapi import CloudApiEmulator
from sandbox.faults import FaultRule
from tests.unit.producer_support import (
    PHONE_NUMBER_ID,
    PROG,
    SANDBOX_TOKEN,
    SETTINGS_VARIABLES,
    STATUSES,
    CliDriver,
    e164,
    national,
    unknown_campaign_id,
)
from tests.unit.test_producer_repair import reconcile_repairs_the_delivery_counters

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sqs import SQSClient

PROJECT_ROOT = Path(__file__).resolve().parents[2]
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


class Cli(CliDriver):
    """Runs ``producer.cli.main`` in-process and reads the tables and queues back with boto3."""

    def __init__(
        self,
        *,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path,
        aws: AwsClients,
        provisioned: Provisioned,
        settings: Settings,
    ) -> None:
        super().__init__(capsys=capsys, monkeypatch=monkeypatch, tmp_path=tmp_path)
        self.settings = settings
        self.db = aws.db
        self.sqs = aws.sqs
        self.queue_url = provisioned.queue_url
        self.dlq_url = provisioned.dlq_url

    def _main(self, argv: list[str]) -> int:
        return main(argv)

    # -- reading state back with boto3 ---------------------------------------------------------

    def campaign(self, campaign_id: str) -> dict[str, Any]:
        response = self.db.get_item(
            TableName=self.settings.campaigns_table,
            Key=campaign_key(campaign_id),
            ConsistentRead=True,
        )
        return deserialize(response["Item"])

    def campaign_items(self) -> list[dict[str, Any]]:
        items = self.db.scan(TableName=self.settings.campaigns_table, ConsistentRead=True)
        return [deserialize(item) for item in items["Items"]]

    def recipients(self, campaign_id: str) -> dict[str, dict[str, Any]]:
        """SK (``USER#<digits>``) → item."""
        found: dict[str, dict[str, Any]] = {}
        kwargs: dict[str, Any] = {
            "TableName": self.settings.recipients_table,
            "KeyConditionExpression": "PK = :pk",
            "ExpressionAttributeValues": {":pk": {"S": f"CAMPAIGN#{campaign_id}"}},
            "ConsistentRead": True,
        }
        while True:
            page = self.db.query(**kwargs)
            for item in page["Items"]:
                data = deserialize(item)
                found[data["SK"]] = data
            if "LastEvaluatedKey" not in page:
                return found
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def all_recipient_items(self) -> list[dict[str, Any]]:
        items = self.db.scan(TableName=self.settings.recipients_table, ConsistentRead=True)
        return [deserialize(item) for item in items["Items"]]

    def statuses(self, campaign_id: str) -> dict[str, str]:
        return {
            sk.removeprefix("USER#"): item["status"]
            for sk, item in self.recipients(campaign_id).items()
        }

    def _update(self, table: str, key: Any, values: dict[str, Any]) -> None:
        names = {f"#a{i}": name for i, name in enumerate(values)}
        self.db.update_item(
            TableName=table,
            Key=key,
            UpdateExpression="SET " + ", ".join(f"#a{i} = :v{i}" for i in range(len(values))),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=serialize(
                {f":v{i}": value for i, value in enumerate(values.values())}
            ),
        )

    def set_campaign(self, campaign_id: str, **values: Any) -> None:
        self._update(self.settings.campaigns_table, campaign_key(campaign_id), values)

    def set_recipient(self, campaign_id: str, phone: str, **values: Any) -> None:
        self._update(self.settings.recipients_table, recipient_key(campaign_id, phone), values)

    def drain(self, queue_url: str | None = None) -> list[str]:
        """Receive every visible message body (and keep them invisible for the test's life)."""
        bodies: list[str] = []
        while True:
            response = self.sqs.receive_message(
                QueueUrl=queue_url or self.queue_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=0,
                VisibilityTimeout=600,
            )
            messages = response.get("Messages", [])
            if not messages:
                return bodies
            bodies.extend(message["Body"] for message in messages)

    def batches(self) -> list[BatchMessage]:
        return [decode(body) for body in self.drain()]


@pytest.fixture(autouse=True)
def _structlog_restored() -> Iterator[None]:
    """The CLI configures structlog on the captured stderr: leave no stale stream behind."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


@dataclass(frozen=True)
class AwsClients:
    db: DynamoDBClient
    sqs: SQSClient


@pytest.fixture(scope="module")
def aws(moto_server: MotoServer) -> AwsClients:
    """One pair of clients for the module: building a client costs ~50 ms (botocore loads the
    service model anew for every session), which over a hundred tests is most of their time."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ACCESS_KEY_ID", "testing")  # resolved now and kept by the clients
        patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        patch.delenv("AWS_PROFILE", raising=False)
        patch.delenv("AWS_SESSION_TOKEN", raising=False)
        settings = load_settings(aws_endpoint_url=moto_server.url, aws_region="us-east-1")
        return AwsClients(dynamodb_client(settings), sqs_client(settings))


@pytest.fixture
def cli(
    moto_server: MotoServer,
    aws: AwsClients,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Cli:
    """Tables, queue and DLQ that no other test uses, and an environment naming them."""
    suffix = uuid.uuid4().hex[:8]
    env = {
        "AWS_ENDPOINT_URL": moto_server.url,
        "CAMPAIGNS_TABLE": f"campaigns-{suffix}",
        "RECIPIENTS_TABLE": f"recipients-{suffix}",
        "CAMPAIGN_QUEUE_NAME": f"batches-{suffix}",
    }
    for name in SETTINGS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    provisioned = provision(aws.db, aws.sqs, settings)
    return Cli(
        capsys=capsys,
        monkeypatch=monkeypatch,
        tmp_path=tmp_path,
        aws=aws,
        provisioned=provisioned,
        settings=settings,
    )


@pytest.fixture
def cloud_api(cli: Cli) -> Iterator[CloudApiEmulator]:
    with CloudApiEmulator(access_token=SANDBOX_TOKEN) as emulator:
        cli.env(
            META_API_BASE_URL=emulator.url,
            META_ACCESS_TOKEN=SANDBOX_TOKEN,
            META_PHONE_NUMBER_ID=PHONE_NUMBER_ID,
        )
        yield emulator


EXECUTE_KEYS = {"processed", "sent", "failed", "paused", "completed", "pauseReason"}


def _dead_letters(cli: Cli) -> tuple[str, str]:
    valid = encode(new_batch(cli.create(), ["919876500001", "919876500002"]))
    garbage = "this is not a batch message"
    for body in (valid, garbage):
        cli.sqs.send_message(QueueUrl=cli.dlq_url, MessageBody=body)
    return valid, garbage


def test_init_creates_tables_queue_and_a_dead_letter_queue_after_five_receives(cli: Cli) -> None:
    suffix = uuid.uuid4().hex[:8]
    names = {
        "CAMPAIGNS_TABLE": f"init-campaigns-{suffix}",
        "RECIPIENTS_TABLE": f"init-recipients-{suffix}",
        "CAMPAIGN_QUEUE_NAME": f"init-batches-{suffix}",
        "CAMPAIGN_RECEIPTS_QUEUE_NAME": f"init-receipts-{suffix}",
    }
    cli.env(**names)

    result = cli.ok("init")

    queue, dlq = names["CAMPAIGN_QUEUE_NAME"], names["CAMPAIGN_QUEUE_NAME"] + "-dlq"
    receipts = names["CAMPAIGN_RECEIPTS_QUEUE_NAME"]
    tables = [names["CAMPAIGNS_TABLE"], names["RECIPIENTS_TABLE"]]
    assert sorted(result["created"]) == sorted([*tables, queue, dlq, receipts, f"{receipts}-dlq"])
    for table in (names["CAMPAIGNS_TABLE"], names["RECIPIENTS_TABLE"]):
        description = cli.db.describe_table(TableName=table)["Table"]
        assert description["TableStatus"] == "ACTIVE"
        assert [(k["AttributeName"], k["KeyType"]) for k in description["KeySchema"]] == [
            ("PK", "HASH"),
            ("SK", "RANGE"),
        ]
    assert result["queueUrl"] == cli.sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    assert result["dlqUrl"] == cli.sqs.get_queue_url(QueueName=dlq)["QueueUrl"]
    dlq_arn = cli.sqs.get_queue_attributes(QueueUrl=result["dlqUrl"], AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    attributes = cli.sqs.get_queue_attributes(
        QueueUrl=result["queueUrl"], AttributeNames=["RedrivePolicy"]
    )["Attributes"]
    redrive = json.loads(attributes["RedrivePolicy"])
    assert int(redrive["maxReceiveCount"]) == 5
    assert redrive["deadLetterTargetArn"] == dlq_arn


def test_init_run_a_second_time_creates_nothing(cli: Cli) -> None:
    cli.env(
        CAMPAIGNS_TABLE=f"again-campaigns-{uuid.uuid4().hex[:8]}",
        RECIPIENTS_TABLE=f"again-recipients-{uuid.uuid4().hex[:8]}",
        CAMPAIGN_QUEUE_NAME=f"again-batches-{uuid.uuid4().hex[:8]}",
        CAMPAIGN_RECEIPTS_QUEUE_NAME=f"again-receipts-{uuid.uuid4().hex[:8]}",
    )
    first = cli.ok("init")

    second = cli.ok("init")

    assert len(first["created"]) == 6
    assert second["created"] == []
    assert (second["queueUrl"], second["dlqUrl"]) == (first["queueUrl"], first["dlqUrl"])


def test_create_returns_a_cmp_uuid4_id_for_a_new_draft_campaign(cli: Cli) -> None:
    result = cli.ok("create", "--name", " Diwali offer ", "--template", "diwali_offer")

    campaign_id = result["campaignId"]
    assert result == {"success": True, "campaignId": campaign_id}
    assert campaign_id.startswith("cmp_")
    parsed = uuid.UUID(campaign_id.removeprefix("cmp_"))
    assert parsed.version == 4
    assert campaign_id == f"cmp_{parsed}"
    item = cli.campaign(campaign_id)
    assert item["PK"] == f"CAMPAIGN#{campaign_id}"
    assert item["SK"] == "METADATA"
    assert {k: item[k] for k in ("campaignId", "name", "templateName", "templateLanguage")} == {
        "campaignId": campaign_id,
        "name": "Diwali offer",
        "templateName": "diwali_offer",
        "templateLanguage": "en_US",
    }
    assert (item["status"], item["channel"], item["audienceType"]) == ("DRAFT", "WHATSAPP", "CSV")
    assert (item["totalRecipients"], item["sentCount"], item["failedCount"]) == (0, 0, 0)
    assert item["createdAt"].endswith("Z")


def test_populate_stores_the_other_header_columns_as_params_on_each_recipient(cli: Cli) -> None:
    campaign_id = cli.create()

    result = cli.populate(campaign_id, "name,phone,offer\nAsha,9876500001,20%\nRavi,9876500002,\n")

    assert result["inserted"] == 2
    items = cli.recipients(campaign_id)
    assert items["USER#919876500001"]["params"] == [
        {"name": "name", "value": "Asha"},
        {"name": "offer", "value": "20%"},
    ]
    assert items["USER#919876500002"]["params"] == [
        {"name": "name", "value": "Ravi"},
        {"name": "offer", "value": ""},
    ]
    assert {item["status"] for item in items.values()} == {"PENDING"}
    assert {item["attempts"] for item in items.values()} == {0}
    assert {item["phone"] for item in items.values()} == {"919876500001", "919876500002"}


def test_populate_skips_numbers_on_the_suppression_list(cli: Cli) -> None:
    campaign_id = cli.create()
    cli.db.put_item(
        TableName=cli.settings.campaigns_table,
        Item=suppression_key("919876500002") | serialize({"phone": "919876500002"}),
    )

    result = cli.populate(campaign_id, "9876500001\n9876500002\n")

    assert (result["inserted"], result["suppressed"]) == (1, 1)
    assert sorted(cli.recipients(campaign_id)) == ["USER#919876500001"]


def test_populate_total_recipients_is_the_sum_of_what_each_import_inserted(cli: Cli) -> None:
    campaign_id = cli.create()

    first = cli.populate(campaign_id, "".join(f"{p}\n" for p in national(60)))
    second = cli.populate(campaign_id, "".join(f"{p}\n" for p in national(30, start=45)))

    assert (first["inserted"], second["inserted"], second["duplicates"]) == (60, 15, 15)
    assert cli.campaign(campaign_id)["totalRecipients"] == 75
    assert len(cli.recipients(campaign_id)) == 75
    assert cli.ok("status", campaign_id)["totalRecipients"] == 75


def test_start_is_refused_while_an_import_holds_the_lock(cli: Cli) -> None:
    campaign_id = cli.populated(national(2))
    cli.set_campaign(campaign_id, importLock="other-import", importLockUntil=int(time.time()) + 600)

    line = cli.refused("start", campaign_id, code=65)

    assert "being populated" in line
    assert cli.campaign(campaign_id)["status"] == "DRAFT"
    assert cli.drain() == []


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


def test_execute_batch_sends_every_pending_recipient_through_the_cloud_api(
    cli: Cli, cloud_api: CloudApiEmulator
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
    accepted = {message.to: message for message in cloud_api.accepted()}
    assert sorted(accepted) == ["919876500001", "919876500002", "919876500003"]
    assert accepted["919876500001"].template_name == "diwali_offer"
    assert accepted["919876500001"].components == [
        {"type": "body", "parameters": [{"type": "text", "text": "Asha"}]}
    ]
    items = cli.recipients(campaign_id)
    for phone, message in accepted.items():
        assert items[f"USER#{phone}"]["status"] == "SENT"
        assert items[f"USER#{phone}"]["messageId"] == message.wamid
    item = cli.campaign(campaign_id)
    assert (item["status"], item["sentCount"]) == ("COMPLETED", 3)


def test_execute_batch_fails_a_recipient_meta_rejects_with_131026(
    cli: Cli, cloud_api: CloudApiEmulator
) -> None:
    cloud_api.set_rules([FaultRule(match="919876500001", code=131026)])
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
    assert sorted(message.to for message in cloud_api.accepted()) == [
        "919876500000",
        "919876500002",
    ]
    item = cli.campaign(campaign_id)
    assert (item["sentCount"], item["failedCount"]) == (2, 1)


def test_execute_batch_pauses_the_campaign_when_the_daily_cap_is_reached(
    cli: Cli, cloud_api: CloudApiEmulator
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
    assert len(cloud_api.accepted()) == 2
    item = cli.campaign(campaign_id)
    assert (item["status"], item["pauseReason"], item["sentCount"]) == ("PAUSED", reason, 2)
    assert sorted(cli.statuses(campaign_id).values()) == ["PENDING", "SENT", "SENT"]


def test_dlq_redrive_leaves_poison_in_the_dlq_and_says_so(cli: Cli) -> None:
    valid, garbage = _dead_letters(cli)

    result = cli.ok("dlq", "redrive")

    assert (result["redriven"], result["skippedPoison"]) == (1, 1)
    assert cli.drain(cli.queue_url) == [valid]
    assert cli.drain(cli.dlq_url) == [garbage]


def test_dlq_redrive_with_include_poison_moves_every_message_to_the_main_queue(
    cli: Cli,
) -> None:
    valid, garbage = _dead_letters(cli)

    result = cli.ok("dlq", "redrive", "--include-poison")

    assert (result["redriven"], result["skippedPoison"]) == (2, 0)
    assert sorted(cli.drain(cli.queue_url)) == sorted([valid, garbage])
    assert cli.drain(cli.dlq_url) == []
    assert cli.ok("dlq", "list")["messages"] == []


@pytest.mark.parametrize(
    ("args", "missing"),
    [
        pytest.param(["list"], "ResourceNotFoundException", id="campaigns-table"),
        pytest.param(["dlq", "list"], "NonExistentQueue", id="dead-letter-queue"),
    ],
)
def test_a_command_run_before_init_exits_69_with_one_line(
    cli: Cli, args: list[str], missing: str
) -> None:
    suffix = uuid.uuid4().hex[:8]
    cli.env(CAMPAIGNS_TABLE=f"never-{suffix}", CAMPAIGN_QUEUE_NAME=f"never-{suffix}")

    line = cli.refused(*args, code=69)

    assert missing in line


def test_a_refused_command_in_a_real_process_prints_one_line_and_no_traceback(cli: Cli) -> None:
    campaign_id = unknown_campaign_id()
    env = {
        **os.environ,
        "PYTHONPATH": str(PROJECT_ROOT),
        "AWS_ENDPOINT_URL": str(cli.settings.aws_endpoint_url),
        "CAMPAIGNS_TABLE": cli.settings.campaigns_table,
        "RECIPIENTS_TABLE": cli.settings.recipients_table,
        "CAMPAIGN_QUEUE_NAME": cli.settings.campaign_queue_name,
    }

    done = subprocess.run(
        [sys.executable, "-m", "producer", "start", campaign_id],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 65
    assert done.stderr.splitlines() == [f"{PROG}Campaign not found: {campaign_id}"]
    assert "Traceback" not in done.stdout + done.stderr
    assert done.stdout == ""


def test_list_is_newest_first_and_its_pages_resume_at_the_cursor(cli: Cli) -> None:
    ids = [cli.create(f"campaign {n}") for n in range(5)]
    for n, campaign_id in enumerate(ids):  # a second apart, whatever the clock did
        cli.set_campaign(campaign_id, createdAt=f"2026-01-01T00:00:0{n}.000Z")
    seen: list[str] = []

    page = cli.ok("list", "--limit", "2")
    while True:
        seen.extend(c["campaignId"] for c in page["campaigns"])
        if page["nextCursor"] is None:
            break
        page = cli.ok("list", "--limit", "2", "--cursor", page["nextCursor"])

    assert seen == ids[::-1]
    drafts = cli.ok("list", "--status", "DRAFT", "--limit", "200")["campaigns"]
    assert [c["campaignId"] for c in drafts] == ids[::-1]


def test_recipient_pages_cover_every_recipient_exactly_once_on_dynamodb(cli: Cli) -> None:
    campaign_id = cli.populated(national(11))
    phones = [e164(p) for p in national(11)]
    cli.set_recipient(campaign_id, phones[4], status="FAILED", errorCode="META_131026")
    seen: list[str] = []

    page = cli.ok("recipients", campaign_id, "--limit", "4")
    while True:
        seen.extend(r["phone"] for r in page["recipients"])
        if page["nextCursor"] is None:
            break
        page = cli.ok("recipients", campaign_id, "--limit", "4", "--cursor", page["nextCursor"])

    assert seen == phones
    [failed] = cli.ok("recipients", campaign_id, "--status", "FAILED")["recipients"]
    assert (failed["phone"], failed["errorCode"]) == (phones[4], "META_131026")
    assert failed["errorMeaning"].startswith("Undeliverable")
    exported = cli.run("recipients", campaign_id, "--csv", "-")
    assert [line.split(",")[0] for line in exported.out.splitlines()[1:]] == phones


def test_reconcile_repairs_the_delivery_counters_and_tallies_on_dynamodb(cli: Cli) -> None:
    # The same operator story as on the in-memory adapters: on DynamoDB the tallies are
    # attributes named by their keys, set on the metadata item and summed with the shards.
    reconcile_repairs_the_delivery_counters(cli)
