"""``campaign-producer``, called in-process against the in-thread moto server (and the sandbox
Cloud API for ``execute-batch``): every command, every refused transition and every bad input.
State is read back and arranged with plain boto3 calls, never through the producer."""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import structlog

from campaigns.aws.clients import dynamodb_client, sqs_client
from campaigns.aws.dynamo import (
    campaign_key,
    deserialize,
    recipient_key,
    serialize,
    suppression_key,
)
from campaigns.aws.provision import Provisioned, provision
from campaigns.domain.message import BatchMessage, decode, encode, new_batch
from campaigns.settings import Settings, load_settings
from producer.cli import main
from sandbox.aws import MotoServer
from sandbox.cloudapi import CloudApiEmulator
from sandbox.faults import FaultRule

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sqs import SQSClient

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PROG = "campaign-producer: "
SANDBOX_TOKEN = "sandbox-token"
PHONE_NUMBER_ID = "100000000000001"
STATUSES = ("DRAFT", "RUNNING", "PAUSED", "COMPLETED", "CANCELLED")
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
# Every environment variable the settings read, cleared so the host cannot leak into a test.
SETTINGS_VARIABLES = [name.upper() for name in Settings.model_fields if name != "aws_region"]


def national(count: int, start: int = 0) -> list[str]:
    """Valid Indian mobile numbers as an operator types them (``9876500000``...)."""
    return [f"98765{n:05d}" for n in range(start, start + count)]


def e164(phone: str) -> str:
    return "91" + phone


def unknown_campaign_id() -> str:
    return f"cmp_{uuid.uuid4()}"


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str

    @property
    def data(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.out)
        return parsed

    @property
    def err_lines(self) -> list[str]:
        return self.err.splitlines()


class Cli:
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
        self._capsys = capsys
        self._monkeypatch = monkeypatch
        self._tmp_path = tmp_path
        self._files = itertools.count()
        self.settings = settings
        self.db = aws.db
        self.sqs = aws.sqs
        self.queue_url = provisioned.queue_url
        self.dlq_url = provisioned.dlq_url

    # -- running the command -----------------------------------------------------------------

    def env(self, **variables: str) -> None:
        for name, value in variables.items():
            self._monkeypatch.setenv(name, value)

    def run(self, *args: str) -> Outcome:
        self._capsys.readouterr()
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse refuses before main's own handling
            code = exc.code if isinstance(exc.code, int) else 1
        captured = self._capsys.readouterr()
        return Outcome(code, captured.out, captured.err)

    def ok(self, *args: str) -> dict[str, Any]:
        outcome = self.run(*args, "--json")
        assert outcome.code == 0, outcome.err
        data = outcome.data
        assert data["success"] is True
        return data

    def refused(self, *args: str, code: int) -> str:
        """Run a command that must be refused; return its one stderr line."""
        outcome = self.run(*args)
        assert outcome.code == code, outcome
        assert len(outcome.err_lines) == 1, outcome.err
        assert outcome.err.startswith(PROG)
        assert "Traceback" not in outcome.out + outcome.err
        return outcome.err_lines[0]

    def csv(self, text: str | bytes) -> Path:
        path = self._tmp_path / f"recipients-{next(self._files)}.csv"
        if isinstance(text, str):
            path.write_text(text, encoding="utf-8")
        else:
            path.write_bytes(text)
        return path

    # -- getting campaigns into shape --------------------------------------------------------

    def create(self, name: str = "Diwali offer") -> str:
        campaign_id: str = self.ok("create", "--name", name, "--template", "diwali_offer")[
            "campaignId"
        ]
        return campaign_id

    def populate(self, campaign_id: str, text: str) -> dict[str, Any]:
        return self.ok("populate", campaign_id, str(self.csv(text)))

    def populated(self, phones: list[str]) -> str:
        campaign_id = self.create()
        self.populate(campaign_id, "".join(f"{phone}\n" for phone in phones))
        return campaign_id

    def campaign_in(self, status: str) -> str:
        """A campaign brought to ``status`` by the CLI itself."""
        if status == "COMPLETED":
            campaign_id = self.create()
            assert self.ok("start", campaign_id)["newStatus"] == "COMPLETED"  # nothing to send
            return campaign_id
        campaign_id = self.populated(national(2))
        steps = {"DRAFT": [], "RUNNING": ["start"], "PAUSED": ["start", "pause"]}
        for action in steps.get(status, ["cancel"]):
            self.ok(action, campaign_id)
        assert self.campaign(campaign_id)["status"] == status
        return campaign_id

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


# -- init ------------------------------------------------------------------------------------


def test_init_creates_tables_queue_and_a_dead_letter_queue_after_five_receives(cli: Cli) -> None:
    suffix = uuid.uuid4().hex[:8]
    names = {
        "CAMPAIGNS_TABLE": f"init-campaigns-{suffix}",
        "RECIPIENTS_TABLE": f"init-recipients-{suffix}",
        "CAMPAIGN_QUEUE_NAME": f"init-batches-{suffix}",
    }
    cli.env(**names)

    result = cli.ok("init")

    queue, dlq = names["CAMPAIGN_QUEUE_NAME"], names["CAMPAIGN_QUEUE_NAME"] + "-dlq"
    assert sorted(result["created"]) == sorted(
        [names["CAMPAIGNS_TABLE"], names["RECIPIENTS_TABLE"], queue, dlq]
    )
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
    )
    first = cli.ok("init")

    second = cli.ok("init")

    assert len(first["created"]) == 4
    assert second["created"] == []
    assert (second["queueUrl"], second["dlqUrl"]) == (first["queueUrl"], first["dlqUrl"])


# -- create ----------------------------------------------------------------------------------


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


def test_create_stores_the_template_language(cli: Cli) -> None:
    result = cli.ok("create", "--name", "Oferta", "--template", "oferta", "--language", "pt_BR")

    assert cli.campaign(result["campaignId"])["templateLanguage"] == "pt_BR"


def test_create_gives_every_campaign_its_own_id(cli: Cli) -> None:
    ids = {cli.create() for _ in range(3)}

    assert len(ids) == 3


@pytest.mark.parametrize("name", ["", "   "])
def test_create_refuses_an_empty_name_and_writes_nothing(cli: Cli, name: str) -> None:
    line = cli.refused("create", "--name", name, "--template", "diwali_offer", code=65)

    assert "--name must not be empty" in line
    assert cli.campaign_items() == []


@pytest.mark.parametrize(
    ("option", "value"), [("--template", " "), ("--language", ""), ("--language", "  ")]
)
def test_create_refuses_an_empty_template_or_language_and_writes_nothing(
    cli: Cli, option: str, value: str
) -> None:
    args = {"--name": "Diwali offer", "--template": "diwali_offer", "--language": "en_US"}
    args[option] = value

    line = cli.refused("create", *itertools.chain(*args.items()), code=65)

    assert f"{option} must not be empty" in line
    assert cli.campaign_items() == []


def test_create_without_a_template_is_a_usage_error(cli: Cli) -> None:
    line = cli.refused("create", "--name", "Diwali offer", code=64)

    assert "--template" in line
    assert cli.campaign_items() == []


# -- populate: what gets written -------------------------------------------------------------


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


def test_populate_reads_one_phone_per_line_without_params(cli: Cli) -> None:
    campaign_id = cli.create()

    result = cli.populate(campaign_id, "9876500001\n9876500002\n\n9876500003\n")

    assert (result["inserted"], result["duplicates"], result["invalid"]) == (3, 0, [])
    items = cli.recipients(campaign_id)
    assert sorted(items) == [f"USER#91987650000{n}" for n in (1, 2, 3)]
    assert all("params" not in item for item in items.values())
    assert "importLock" not in cli.campaign(campaign_id)  # released when the import ended


def test_populate_normalises_every_spelling_to_e164_digits_without_plus(cli: Cli) -> None:
    campaign_id = cli.create()
    spellings = [
        "9876543210",
        "+91 98765 43211",
        "098765-43212",
        "0091 9876543213",
        "+91 (98765) 43214",
        "919876543215",
    ]

    result = cli.populate(campaign_id, "".join(f'"{s}"\n' for s in spellings))

    assert result["inserted"] == 6
    assert sorted(cli.recipients(campaign_id)) == [f"USER#91987654321{n}" for n in range(6)]


def test_populate_counts_duplicates_within_the_file_once_written(cli: Cli) -> None:
    campaign_id = cli.create()

    result = cli.populate(campaign_id, "9876500001\n+91 98765 00001\n9876500002\n919876500001\n")

    assert (result["inserted"], result["duplicates"]) == (2, 2)
    assert sorted(cli.recipients(campaign_id)) == ["USER#919876500001", "USER#919876500002"]
    assert cli.campaign(campaign_id)["totalRecipients"] == 2


def test_populate_again_counts_present_recipients_as_duplicates_and_never_overwrites_them(
    cli: Cli,
) -> None:
    campaign_id = cli.create()
    cli.populate(campaign_id, "phone,name\n9876500001,Asha\n9876500002,Ravi\n")
    cli.set_recipient(campaign_id, "919876500001", status="SENT", messageId="wamid.ONE")

    again = cli.populate(
        campaign_id, "phone,name\n9876500001,Changed\n9876500002,Ravi\n9876500003,New\n"
    )

    assert (again["inserted"], again["duplicates"]) == (1, 2)
    items = cli.recipients(campaign_id)
    assert items["USER#919876500001"]["status"] == "SENT"
    assert items["USER#919876500001"]["messageId"] == "wamid.ONE"
    assert items["USER#919876500001"]["params"] == [{"name": "name", "value": "Asha"}]
    assert items["USER#919876500003"]["status"] == "PENDING"
    assert cli.campaign(campaign_id)["totalRecipients"] == 3


def test_populate_reports_each_invalid_row_with_line_value_and_reason(cli: Cli) -> None:
    campaign_id = cli.create()

    result = cli.populate(
        campaign_id, "phone,name\n9876500001,A\n12345,B\nnot a number,C\n\n,D\n9876500002,E\n"
    )

    assert result["inserted"] == 2
    assert result["invalidCount"] == 3
    assert [(row["line"], row["value"]) for row in result["invalid"]] == [
        (3, "12345"),
        (4, "not a number"),
        (6, ""),
    ]
    reasons = [row["reason"] for row in result["invalid"]]
    assert reasons[0] == "impossible number length"
    assert reasons[1].startswith("not a phone number")
    assert reasons[2] == "empty value"
    assert sorted(cli.recipients(campaign_id)) == ["USER#919876500001", "USER#919876500002"]


def test_populate_lists_the_first_thousand_invalid_rows_and_counts_them_all(cli: Cli) -> None:
    campaign_id = cli.create()

    result = cli.populate(campaign_id, "9876500001\n" + "12345\n" * 1005)

    assert (result["inserted"], result["invalidCount"], len(result["invalid"])) == (1, 1005, 1000)
    assert result["invalid"][0]["line"] == 2
    assert result["invalid"][-1]["line"] == 1001


def test_populate_total_recipients_is_the_sum_of_what_each_import_inserted(cli: Cli) -> None:
    campaign_id = cli.create()

    first = cli.populate(campaign_id, "".join(f"{p}\n" for p in national(60)))
    second = cli.populate(campaign_id, "".join(f"{p}\n" for p in national(30, start=45)))

    assert (first["inserted"], second["inserted"], second["duplicates"]) == (60, 15, 15)
    assert cli.campaign(campaign_id)["totalRecipients"] == 75
    assert len(cli.recipients(campaign_id)) == 75
    assert cli.ok("status", campaign_id)["totalRecipients"] == 75


def test_populate_with_default_region_us_reads_national_numbers_as_american(cli: Cli) -> None:
    campaign_id = cli.create()

    result = cli.ok(
        "populate",
        campaign_id,
        str(cli.csv("(650) 253-0000\n+91 98765 00001\n9876500002\n")),
        "--default-region",
        "US",
    )

    assert result["inserted"] == 2
    assert [(row["line"], row["value"]) for row in result["invalid"]] == [(3, "9876500002")]
    assert sorted(cli.recipients(campaign_id)) == ["USER#16502530000", "USER#919876500001"]


def test_populate_reads_national_numbers_as_indian_by_default(cli: Cli) -> None:
    campaign_id = cli.create()

    cli.populate(campaign_id, "(650) 253-0000\n")

    assert sorted(cli.recipients(campaign_id)) == ["USER#916502530000"]


def test_populate_skips_numbers_on_the_suppression_list(cli: Cli) -> None:
    campaign_id = cli.create()
    cli.db.put_item(
        TableName=cli.settings.campaigns_table,
        Item=suppression_key("919876500002") | serialize({"phone": "919876500002"}),
    )

    result = cli.populate(campaign_id, "9876500001\n9876500002\n")

    assert (result["inserted"], result["suppressed"]) == (1, 1)
    assert sorted(cli.recipients(campaign_id)) == ["USER#919876500001"]


def test_populate_adds_recipients_to_a_paused_campaign_and_resume_enqueues_them(
    cli: Cli,
) -> None:
    campaign_id = cli.campaign_in("PAUSED")
    cli.drain()

    result = cli.populate(campaign_id, "9876599999\n")
    cli.ok("resume", campaign_id)

    assert result["inserted"] == 1
    assert cli.campaign(campaign_id)["totalRecipients"] == 3
    phones = [phone for batch in cli.batches() for phone in batch.phones]
    assert sorted(phones) == sorted([*map(e164, national(2)), "919876599999"])


# -- populate: refused input writes nothing ---------------------------------------------------


def _rows(count: int) -> str:
    return "".join(f"{p},Name {p}\n" for p in national(count, start=100))


BAD_FILES = [
    pytest.param(b"", "file is empty", id="empty"),
    pytest.param(b"phone,name\n", "no recipient rows after the header", id="header-only"),
    pytest.param(
        b'9876500101\n"9876500102\n9876500103\n', "malformed CSV", id="unterminated-quote"
    ),
    pytest.param(b"9876500101\n98765\xff00102\n9876500103\n", "line 2: not UTF-8", id="not-utf8"),
    pytest.param(
        ("phone,name\n" + _rows(38) + "9876500999,Name,extra\n" + _rows(10)).encode(),
        "line 40: expected 2 fields, found 3",
        id="field-count-on-line-40-of-50",
    ),
    pytest.param(
        b"mobile,name\n9876500101,Asha\n",
        "expected one phone per line (or a header row with a 'phone' column)",
        id="columns-without-phone-header",
    ),
]


@pytest.mark.parametrize(("content", "expected"), BAD_FILES)
def test_populate_refuses_an_unusable_file_and_writes_no_recipient(
    cli: Cli, content: bytes, expected: str
) -> None:
    campaign_id = cli.populated(["9876500001"])
    path = cli.csv(content)

    line = cli.refused("populate", campaign_id, str(path), code=65)

    assert expected in line
    assert str(path) in line
    assert sorted(cli.recipients(campaign_id)) == ["USER#919876500001"]
    assert cli.campaign(campaign_id)["totalRecipients"] == 1
    assert "importLock" not in cli.campaign(campaign_id)


def test_populate_with_a_bad_line_40_of_50_writes_none_of_the_39_lines_before_it(
    cli: Cli,
) -> None:
    campaign_id = cli.create()
    lines = ["phone,name", *[f"{p},Name" for p in national(38)], "9876599999,Name,extra"]
    lines += [f"{p},Name" for p in national(10, start=38)]
    assert len(lines) == 50

    line = cli.refused("populate", campaign_id, str(cli.csv("\n".join(lines) + "\n")), code=65)

    assert "line 40" in line
    assert cli.recipients(campaign_id) == {}
    assert cli.campaign(campaign_id)["totalRecipients"] == 0


def test_populate_refuses_a_missing_file_with_exit_66(cli: Cli, tmp_path: Path) -> None:
    campaign_id = cli.create()

    line = cli.refused("populate", campaign_id, str(tmp_path / "absent.csv"), code=66)

    assert "File not found" in line
    assert cli.recipients(campaign_id) == {}


def test_populate_refuses_a_directory_with_exit_66(cli: Cli, tmp_path: Path) -> None:
    campaign_id = cli.create()

    line = cli.refused("populate", campaign_id, str(tmp_path), code=66)

    assert "Not a file" in line


def test_populate_refuses_an_unknown_campaign(cli: Cli) -> None:
    campaign_id = unknown_campaign_id()

    line = cli.refused("populate", campaign_id, str(cli.csv("9876500001\n")), code=65)

    assert line == f"{PROG}Campaign not found: {campaign_id}"
    assert cli.all_recipient_items() == []
    assert cli.campaign_items() == []


def test_populate_refuses_a_malformed_campaign_id(cli: Cli) -> None:
    line = cli.refused("populate", "cmp_nope", str(cli.csv("9876500001\n")), code=65)

    assert "Malformed campaign id: 'cmp_nope'" in line
    assert cli.all_recipient_items() == []


@pytest.mark.parametrize("status", ["RUNNING", "COMPLETED", "CANCELLED"])
def test_populate_refuses_a_campaign_that_is_not_draft_or_paused(cli: Cli, status: str) -> None:
    campaign_id = cli.campaign_in(status)
    before = cli.recipients(campaign_id)
    total = cli.campaign(campaign_id)["totalRecipients"]

    line = cli.refused("populate", campaign_id, str(cli.csv("9876599999\n")), code=65)

    assert f"Campaign status is {status}" in line
    assert cli.recipients(campaign_id) == before
    assert cli.campaign(campaign_id)["totalRecipients"] == total


def test_populate_is_refused_while_another_import_holds_the_lock(cli: Cli) -> None:
    campaign_id = cli.create()
    cli.set_campaign(campaign_id, importLock="other-import", importLockUntil=int(time.time()) + 600)

    line = cli.refused("populate", campaign_id, str(cli.csv("9876500001\n")), code=65)

    assert "Another import is running" in line
    assert cli.recipients(campaign_id) == {}
    item = cli.campaign(campaign_id)
    assert item["totalRecipients"] == 0
    assert item["importLock"] == "other-import"  # the holder's lock is left alone


def test_populate_takes_over_an_import_lock_that_expired(cli: Cli) -> None:
    campaign_id = cli.create()
    cli.set_campaign(campaign_id, importLock="dead-import", importLockUntil=int(time.time()) - 5)

    result = cli.populate(campaign_id, "9876500001\n")

    assert result["inserted"] == 1
    assert "importLock" not in cli.campaign(campaign_id)


def test_start_is_refused_while_an_import_holds_the_lock(cli: Cli) -> None:
    campaign_id = cli.populated(national(2))
    cli.set_campaign(campaign_id, importLock="other-import", importLockUntil=int(time.time()) + 600)

    line = cli.refused("start", campaign_id, code=65)

    assert "being populated" in line
    assert cli.campaign(campaign_id)["status"] == "DRAFT"
    assert cli.drain() == []


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
    cli: Cli, status: str
) -> None:
    campaign_id = cli.campaign_in(status)

    started = time.monotonic()
    outcome = cli.run("status", campaign_id, "--watch", "--interval", "30")
    elapsed_s = time.monotonic() - started

    assert outcome.code == 0
    assert elapsed_s < 5
    bars = [line for line in outcome.out.splitlines() if line.startswith("[")]
    assert len(bars) == 1
    assert bars[0].endswith(status)


def test_status_watch_redraws_until_the_campaign_stops_running(cli: Cli) -> None:
    campaign_id = cli.campaign_in("RUNNING")
    db = cli.db

    def finish_later() -> None:
        time.sleep(0.8)  # the watch has drawn its first bar by now
        db.update_item(
            TableName=cli.settings.campaigns_table,
            Key=campaign_key(campaign_id),
            UpdateExpression="SET sentCount = :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
        )
        time.sleep(0.5)
        db.update_item(
            TableName=cli.settings.campaigns_table,
            Key=campaign_key(campaign_id),
            UpdateExpression="SET sentCount = :two, #s = :done",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":two": {"N": "2"}, ":done": {"S": "COMPLETED"}},
        )

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
    assert listed[0]["campaignId"] == draft  # oldest first


def test_list_with_no_campaigns_is_empty(cli: Cli) -> None:
    assert cli.ok("list")["campaigns"] == []


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


# -- execute-batch against the sandbox Cloud API ---------------------------------------------


EXECUTE_KEYS = {"processed", "sent", "failed", "paused", "completed", "pauseReason"}


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


def test_execute_batch_processes_at_most_one_batch(cli: Cli, cloud_api: CloudApiEmulator) -> None:
    cli.env(BATCH_SIZE="2")
    campaign_id = cli.populated(national(3))
    cli.ok("start", campaign_id)

    first = cli.ok("execute-batch", campaign_id)
    second = cli.ok("execute-batch", campaign_id)

    assert (first["processed"], first["sent"], first["completed"]) == (2, 2, False)
    assert (second["processed"], second["sent"], second["completed"]) == (1, 1, True)
    assert len(cloud_api.accepted()) == 3
    assert cli.campaign(campaign_id)["status"] == "COMPLETED"


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


def test_execute_batch_on_a_running_campaign_with_nothing_pending_completes_it(
    cli: Cli, cloud_api: CloudApiEmulator
) -> None:
    campaign_id = cli.campaign_in("RUNNING")
    for phone in national(2):
        cli.set_recipient(campaign_id, e164(phone), status="SENT")

    result = cli.ok("execute-batch", campaign_id)

    assert (result["processed"], result["completed"], result["paused"]) == (0, True, False)
    assert cli.campaign(campaign_id)["status"] == "COMPLETED"
    assert cloud_api.accepted() == []


@pytest.mark.parametrize("status", ["DRAFT", "PAUSED"])
def test_execute_batch_is_refused_unless_the_campaign_is_running(
    cli: Cli, cloud_api: CloudApiEmulator, status: str
) -> None:
    campaign_id = cli.campaign_in(status)

    line = cli.refused("execute-batch", campaign_id, code=1)

    assert line == f"{PROG}Campaign status is {status}: cannot execute-batch"
    assert cloud_api.accepted() == []
    assert cli.campaign(campaign_id)["status"] == status


def test_execute_batch_without_meta_credentials_is_a_configuration_error(cli: Cli) -> None:
    campaign_id = cli.campaign_in("RUNNING")

    line = cli.refused("execute-batch", campaign_id, code=78)

    assert "META_ACCESS_TOKEN" in line
    assert set(cli.statuses(campaign_id).values()) == {"PENDING"}


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


# -- the dead-letter queue -------------------------------------------------------------------


def _dead_letters(cli: Cli) -> tuple[str, str]:
    valid = encode(new_batch(cli.create(), ["919876500001", "919876500002"]))
    garbage = "this is not a batch message"
    for body in (valid, garbage):
        cli.sqs.send_message(QueueUrl=cli.dlq_url, MessageBody=body)
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
    assert cli.drain(cli.queue_url) == []


def test_dlq_redrive_moves_every_message_to_the_main_queue(cli: Cli) -> None:
    valid, garbage = _dead_letters(cli)

    result = cli.ok("dlq", "redrive")

    assert result["redriven"] == 2
    assert sorted(cli.drain(cli.queue_url)) == sorted([valid, garbage])
    assert cli.drain(cli.dlq_url) == []
    assert cli.ok("dlq", "list")["messages"] == []


# -- errors: one line, a named exit code, no traceback ---------------------------------------


def test_a_json_error_prints_a_failure_object_on_stdout_and_one_line_on_stderr(
    cli: Cli,
) -> None:
    campaign_id = unknown_campaign_id()

    outcome = cli.run("start", campaign_id, "--json")

    assert outcome.code == 65
    assert outcome.data == {"success": False, "error": f"Campaign not found: {campaign_id}"}
    assert outcome.err_lines == [f"{PROG}Campaign not found: {campaign_id}"]


def test_a_json_refused_transition_prints_the_status_in_the_failure_object(cli: Cli) -> None:
    campaign_id = cli.campaign_in("COMPLETED")

    outcome = cli.run("pause", campaign_id, "--json")

    assert outcome.code == 1
    assert outcome.data == {"success": False, "error": "Campaign status is COMPLETED: cannot pause"}
    assert len(outcome.err_lines) == 1


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["launch"], id="unknown-subcommand"),
        pytest.param(["start"], id="missing-campaign-id"),
        pytest.param(["populate", "cmp_x"], id="missing-file"),
        pytest.param([], id="no-subcommand"),
        pytest.param(["list", "--bogus"], id="unknown-option"),
        pytest.param(["dlq", "purge"], id="bad-choice"),
    ],
)
def test_bad_arguments_exit_64_with_one_line(cli: Cli, args: list[str]) -> None:
    cli.refused(*args, code=64)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("BATCH_SIZE", "0"),
        ("BATCH_SIZE", "26"),
        ("DAILY_CAP", "abc"),
        ("DAILY_CAP", "-1"),
        ("SEND_RATE_PER_SECOND", "0"),
        ("AWS_ENDPOINT_URL", "localhost:4566"),
    ],
)
def test_a_bad_configuration_value_exits_78_naming_the_variable(
    cli: Cli, variable: str, value: str
) -> None:
    cli.env(**{variable: value})

    line = cli.refused("list", code=78)

    assert line.startswith(f"{PROG}invalid {variable}:")


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
