"""deploy/cloudformation: the template is deployed into moto's CloudFormation (on the local
stack's moto server), and a small campaign runs end to end on the resources it created,
configured only by the stack's outputs: producer CLI, consumers, the Cloud API emulator.

Every AWS call of that run is recorded (tests/deploy/recording.py wraps the real entry
points in their own processes with a botocore event hook) and checked against the IAM
policy the stack created for the role that made it: each call allowed, and each policy
granting exactly what its role used, on the stack's resources only. The operator API's run
is the real ``campaign-api`` process driven through every endpoint it serves; the webhook
receiver's is the real ``campaign-webhooks`` process asked /readyz and posted a signed body."""

from __future__ import annotations

import ast
import hashlib
import hmac
import json
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
import requests
from botocore import xform_name

from campaigns.aws.items import (
    CAMPAIGN_PREFIX,
    COUNTER_PREFIX,
    SUPPRESSION_PREFIX,
    USER_LINK_PREFIX,
)
from campaigns.aws.provision import MAX_RECEIVE_COUNT, MESSAGE_ID_INDEX
from campaigns.domain.message import encode, new_batch
from campaigns.domain.models import CampaignStatus
from campaigns.settings import Settings
from sandbox.cloudapi import SandboxControl
from sandbox.stack import LocalStack
from tests.deploy.iam import (
    LEADING_KEYS,
    Context,
    allows,
    granted_actions,
    granted_resources,
    iam_action,
    leading_key_patterns,
    like,
    lower,
    resource_arn,
    statements,
)
from tests.deploy.support import DEPLOY, ROOT, load_cfn
from tests.harness import valid_numbers, wait_until

TEMPLATE = DEPLOY / "cloudformation" / "campaign-executor.yaml"
ROLES = {
    "consumer": "ConsumerPolicyArn",
    "producer": "ProducerPolicyArn",
    "api": "ApiPolicyArn",
    "webhooks": "WebhooksPolicyArn",
    "reconcile": "ReconcilePolicyArn",
}
# The recordings made under each role. "deliveries" adds every DeliveryStore call a status
# webhook can make (tests/deploy/delivery_calls.py) to what the consumer's own receipts loop
# applied in the run. "reconcile" is `campaign-producer reconcile`, the CronJob's (and the ECS
# scheduled task's) only command, under its own role; an operator may run it by hand too, so
# the producer's policy grants it as well.
RECORDINGS = {
    "consumer": ("consumer", "deliveries"),
    "producer": ("producer", "reconcile"),
    "api": ("api",),
    "webhooks": ("webhooks",),
    "reconcile": ("reconcile",),
}
PROVISIONING = {"dynamodb:createtable", "dynamodb:describetable", "sqs:createqueue"}
PROVISIONING |= {"sqs:setqueueattributes"}
VISIBILITY_TIMEOUT_S = 5  # short, so the consumer's visibility heartbeat runs within a batch
SLOW_RATE_PER_S = "2"  # 6 recipients → a 3 s batch: longer than a heartbeat interval (5 / 3 s)


def _settings_from_outputs(outputs: list[dict[str, str]]) -> dict[str, str]:
    """Every output described as ``Setting NAME`` is that setting's value."""
    env: dict[str, str] = {}
    for output in outputs:
        description = output.get("Description", "")
        if description.startswith("Setting "):
            env[description.removeprefix("Setting ").strip()] = output["OutputValue"]
    return env


@dataclass
class Run:
    """The end-to-end run and what it recorded."""

    workdir: Path
    env: dict[str, str]
    outputs: dict[str, str]
    policies: dict[str, dict[str, Any]]
    results: dict[str, Any] = field(default_factory=dict)

    def calls(self, role: str) -> list[dict[str, Any]]:
        """Every call recorded under ``role`` (its recordings: ``RECORDINGS``)."""
        return [call for name in RECORDINGS.get(role, (role,)) for call in self.recorded(name)]

    def recorded(self, name: str) -> list[dict[str, Any]]:
        path = self.workdir / f"{name}.calls.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()]

    def run(
        self,
        role: str,
        *args: str,
        program: str | None = None,
        unset: tuple[str, ...] = (),
        **env: str,
    ) -> subprocess.CompletedProcess[str]:
        """``program`` (default: the role's name) recorded as ``role``, without ``unset``."""
        program = program or role
        extra = ["--json"] if program == "producer" else []
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "tests.deploy.recording",
                str(self.workdir / f"{role}.calls.jsonl"),
                program,
                *args,
                *extra,
            ],
            env={k: v for k, v in self.env.items() if k not in unset} | env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, f"{role} {args}: {done.returncode}\n{done.stderr[-2000:]}"
        return done

    def producer(self, *args: str) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.run("producer", *args).stdout)
        return result

    def reconcile(self, *args: str) -> dict[str, Any]:
        """``campaign-producer reconcile`` under the reconcile role, configured as the CronJob
        is (the ConfigMap names the queue; no CAMPAIGN_QUEUE_URL)."""
        done = self.run(
            "reconcile", "reconcile", *args, program="producer", unset=("CAMPAIGN_QUEUE_URL",)
        )
        result: dict[str, Any] = json.loads(done.stdout)
        return result


def _client(stack: LocalStack, service: str) -> Any:
    return boto3.client(  # type: ignore[call-overload]
        service,
        endpoint_url=stack.aws_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture(scope="module")
def stack_run(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> Run:
    suffix = uuid.uuid4().hex[:8]
    cfn = _client(stack, "cloudformation")
    name = f"campaign-executor-{suffix}"
    cfn.create_stack(
        StackName=name,
        TemplateBody=TEMPLATE.read_text(),
        Parameters=[
            {"ParameterKey": "CampaignsTableName", "ParameterValue": f"campaigns-{suffix}"},
            {"ParameterKey": "RecipientsTableName", "ParameterValue": f"recipients-{suffix}"},
            {"ParameterKey": "QueueName", "ParameterValue": f"batches-{suffix}"},
            {"ParameterKey": "ReceiptsQueueName", "ParameterValue": f"receipts-{suffix}"},
            {
                "ParameterKey": "VisibilityTimeoutSeconds",
                "ParameterValue": str(VISIBILITY_TIMEOUT_S),
            },
        ],
    )
    cfn.get_waiter("stack_create_complete").wait(
        StackName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )
    (described,) = cfn.describe_stacks(StackName=name)["Stacks"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described["Outputs"]}
    iam = _client(stack, "iam")
    policies: dict[str, dict[str, Any]] = {}
    for role, output in ROLES.items():
        policy = iam.get_policy(PolicyArn=outputs[output])["Policy"]
        version = iam.get_policy_version(
            PolicyArn=policy["Arn"], VersionId=policy["DefaultVersionId"]
        )
        document = version["PolicyVersion"]["Document"]
        policies[role] = json.loads(document) if isinstance(document, str) else document
    local = stack.env()  # where AWS and Meta are (moto, the emulator), nothing else
    env = {"PATH": "/usr/bin:/bin", "LOG_FORMAT": "json", "POLL_WAIT_S": "1", "METRICS_PORT": "0"}
    env["RECEIPTS_POLL_WAIT_S"] = "1"  # a consumer stop waits out the receipts poll (10 s)
    env |= local | _settings_from_outputs(described["Outputs"])
    return Run(tmp_path_factory.mktemp("stack-run"), env, outputs, policies)


@pytest.fixture(scope="module")
def campaign_run(stack_run: Run, stack: LocalStack) -> Run:
    """One campaign through the consumer, one through execute-batch, the DLQ tools, reconcile."""
    run = stack_run
    sandbox = SandboxControl(stack.cloudapi_url)
    sandbox.reset()
    first, second = valid_numbers(6, start=700), valid_numbers(3, start=800)
    # One recipient of each sender has opted out (131050): FAILED, and the consumer, the
    # producer's execute-batch and the API's each suppress the number (a write they must hold).
    opted_out = [first[-1], second[-1], API_PHONES[-1]]
    sandbox.set_rules([{"match": phone, "code": 131050} for phone in opted_out])
    csv_first, csv_second = run.workdir / "first.csv", run.workdir / "second.csv"
    csv_first.write_text("phone\n" + "".join(f"+{p}\n" for p in first))
    csv_second.write_text("phone\n" + "".join(f"+{p}\n" for p in second))

    first_id = run.producer("create", "--name", "first", "--template", "order_update")
    first_id = first_id["campaignId"]
    run.producer("populate", first_id, str(csv_first))
    run.producer("start", first_id)
    run.run("consumer", "--once", SEND_RATE_PER_SECOND=SLOW_RATE_PER_S)
    run.results["first"] = run.producer("status", first_id)
    # Every DeliveryStore call a status webhook can make, on the delivered recipient.
    run.run("deliveries", first_id, first[0])
    run.results["delivered"] = run.producer("status", first_id)

    second_id = run.producer("create", "--name", "second", "--template", "order_update")
    second_id = second_id["campaignId"]
    run.producer("populate", second_id, str(csv_second))
    run.producer("start", second_id)
    # RUNNING with PENDING recipients and its batch queued: reconcile checks the queue depth.
    run.results["reconcile"] = run.reconcile(second_id)
    run.results["execute"] = run.producer("execute-batch", second_id)
    run.results["lost"] = _lost_batch_and_dead_lease(run, stack)
    run.producer("list")
    run.reconcile()
    run.reconcile(first_id)

    # A dead letter (a copy of a real batch message) to look at and redrive.
    sqs = _client(stack, "sqs")
    dlq_url = sqs.get_queue_url(QueueName=run.env["CAMPAIGN_QUEUE_NAME"] + "-dlq")["QueueUrl"]
    sqs.send_message(QueueUrl=dlq_url, MessageBody=encode(new_batch(first_id, first[:2])))
    run.results["dlq"] = run.producer("dlq", "list")
    run.results["redrive"] = run.producer("dlq", "redrive")
    # A consumer configured by queue name only (no CAMPAIGN_QUEUE_URL): it takes the
    # redriven message (its campaign is COMPLETED: deleted untouched) and the batch reconcile
    # re-enqueued for the third campaign, and its receipts loop applies a status webhook.
    receipts_url = sqs.get_queue_url(QueueName=run.env["CAMPAIGN_RECEIPTS_QUEUE_NAME"])
    sqs.send_message(
        QueueUrl=receipts_url["QueueUrl"], MessageBody=_read_status(first_id, first[1])
    )
    by_name = {k: v for k, v in run.env.items() if k != "CAMPAIGN_QUEUE_URL"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.deploy.recording",
            str(run.workdir / "consumer.calls.jsonl"),
            "consumer",
            "--once",
        ],
        env=by_name,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    run.results["second"] = run.producer("status", second_id)
    run.results["read"] = run.producer("status", first_id)
    run.results["third"] = run.producer("status", run.results["lost"]["campaignId"])
    run.results["accepted"] = [m.to for m in sandbox.messages()]
    run.results["phones"] = first[:-1] + second[:-1] + run.results["lost"]["sendable"]
    queue_url = sqs.get_queue_url(QueueName=run.env["CAMPAIGN_QUEUE_NAME"])["QueueUrl"]
    run.results["depths"] = [
        sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        for url in (queue_url, dlq_url)
    ]
    run.results["api"] = _drive_api(run)
    run.results["webhooks"] = _drive_webhooks(run, sqs)
    return run


def _lost_batch_and_dead_lease(run: Run, stack: LocalStack) -> dict[str, Any]:
    """A third campaign started, then its batch message lost (the queue purged with the test's
    own client) and one recipient left SENDING by a consumer that died (its lease long
    expired, written directly): reconcile expires the lease and re-enqueues the others."""
    phones = valid_numbers(3, start=850)
    csv = run.workdir / "third.csv"
    csv.write_text("phone\n" + "".join(f"+{p}\n" for p in phones))
    campaign_id = run.producer("create", "--name", "third", "--template", "order_update")
    campaign_id = campaign_id["campaignId"]
    run.producer("populate", campaign_id, str(csv))
    run.producer("start", campaign_id)
    sqs = _client(stack, "sqs")
    sqs.purge_queue(QueueUrl=run.env["CAMPAIGN_QUEUE_URL"])
    _client(stack, "dynamodb").update_item(
        TableName=run.env["RECIPIENTS_TABLE"],
        Key={"PK": {"S": f"CAMPAIGN#{campaign_id}"}, "SK": {"S": f"USER#{phones[0]}"}},
        UpdateExpression="SET #s = :s, leaseOwner = :o, leaseUntil = :u, attempts = :a",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={
            ":s": {"S": "SENDING"},
            ":o": {"S": "a-consumer-that-died"},
            ":u": {"N": "1"},
            ":a": {"N": "1"},
        },
    )
    (report,) = run.reconcile(campaign_id)["campaigns"]
    return {"campaignId": campaign_id, "report": report, "sendable": phones[1:]}


def _read_status(campaign_id: str, phone: str) -> str:
    """A signed-and-queued status webhook as the receiver queues it: ``read`` for a recipient
    the first campaign sent, tied to it by the callback data the executor set."""
    status = {
        "id": "wamid.deploy-read",
        "status": "read",
        "timestamp": "1767225900",
        "recipient_id": phone,
        "biz_opaque_callback_data": f"{campaign_id}:{phone}",
    }
    value = {"messaging_product": "whatsapp", "statuses": [status]}
    entry = {"id": "102290129340398", "changes": [{"field": "messages", "value": value}]}
    return json.dumps({"object": "whatsapp_business_account", "entry": [entry]})


class _Api:
    """The real ``campaign-api`` under the recorder, and a client holding its key."""

    def __init__(self, run: Run) -> None:
        self.key = uuid.uuid4().hex
        ready = run.workdir / "api.ready"
        # Configured by queue name, as the Kubernetes ConfigMap configures it (no queue URL):
        # the API resolves the URL itself (sqs:GetQueueUrl).
        env = {k: v for k, v in run.env.items() if k != "CAMPAIGN_QUEUE_URL"}
        env |= {"OPERATOR_API_KEYS": f"iam:{self.key}"}
        self.log = run.workdir / "api.log"
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tests.deploy.recording",
                 str(run.workdir / "api.calls.jsonl"), "api",
                 "--port", "0", "--ready-file", str(ready)],
                env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log,
            )  # fmt: skip
        wait_until(lambda: ready.exists() or self.proc.poll() is not None, timeout_s=60)
        assert ready.exists(), self.log.read_text()[-2000:]
        self.url = json.loads(ready.read_text())["url"]
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {self.key}"

    def __call__(self, method: str, path: str, expect: int = 200, **kwargs: Any) -> Any:
        answer = self.http.request(method, f"{self.url}/api/campaigns{path}", timeout=60, **kwargs)
        assert answer.status_code == expect, (method, path, answer.text)
        is_json = answer.headers["content-type"].startswith("application/json")
        return answer.json() if is_json else answer.text

    def stop(self) -> int:
        self.http.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)


API_PHONES = valid_numbers(4, start=900)  # the last one has opted out (campaign_run's rules)


def _drive_api(run: Run) -> dict[str, Any]:
    """Every endpoint the API serves that reaches AWS, in an operator's order."""
    api = _Api(run)
    try:
        phones = API_PHONES
        csv = "phone\n" + "".join(f"+{p}\n" for p in phones)
        body = {"name": "by the API", "templateName": "order_update", "channel": "WHATSAPP",
                "audienceType": "CSV"}  # fmt: skip
        campaign_id = api("POST", "/create", json=body)["campaignId"]
        populated = api("POST", f"/{campaign_id}/populate", files={"file": ("r.csv", csv)})
        api("GET", f"/{campaign_id}")
        listed = api("GET", "", params={"limit": 5})
        api("POST", f"/{campaign_id}/control", json={"action": "start"})
        api("POST", f"/{campaign_id}/control", json={"action": "pause"})
        api("POST", f"/{campaign_id}/control", json={"action": "resume"})
        api("POST", f"/{campaign_id}/enqueue")
        api("POST", f"/{campaign_id}/reconcile")
        api("POST", f"/{campaign_id}/requeue-unknown", json={"confirm": True})
        executed = api("POST", f"/{campaign_id}/execute-batch")["result"]
        sent = api("GET", f"/{campaign_id}/recipients", params={"status": "SENT"})
        exported = api("GET", f"/{campaign_id}/recipients.csv")
        other = api("POST", "/create", json=body | {"name": "cancelled"})["campaignId"]
        cancelled = api("POST", f"/{other}/control", json={"action": "cancel"})
        final = api("GET", f"/{campaign_id}")["campaign"]
    finally:
        code = api.stop()
    return {
        "inserted": populated["inserted"],
        "listed": [c["campaignId"] for c in listed["campaigns"]],
        "campaignId": campaign_id,
        "executed": executed,
        "sent": sorted(r["phone"] for r in sent["recipients"]),
        "exportedLines": len(exported.splitlines()),
        "cancelled": cancelled["newStatus"],
        "final": final["status"],
        "phones": phones,
        "exitCode": code,
    }


APP_SECRET = "deploy-test-app-secret"
STATUS_BODY = json.dumps(
    {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "102290129340398",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {"phone_number_id": "106540352242922"},
                            "statuses": [
                                {
                                    "id": "wamid.deploy-test",
                                    "status": "delivered",
                                    "timestamp": "1767225600",
                                    "recipient_id": "15550001234",
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }
)


def _drive_webhooks(run: Run, sqs: Any) -> dict[str, Any]:
    """The real ``campaign-webhooks`` under the recorder, configured by queue name as the
    Kubernetes ConfigMap configures it: /readyz first (nothing sent yet, so it asks the queue:
    GetQueueUrl, GetQueueAttributes), then one body signed as Meta signs it (HMAC-SHA256 of the
    raw bytes, key META_APP_SECRET), then SIGTERM. The queued message is read back (and
    deleted) with the test's own client, outside the recording."""
    ready = run.workdir / "webhooks.ready"
    env = {k: v for k, v in run.env.items() if k != "CAMPAIGN_QUEUE_URL"}
    env |= {"META_APP_SECRET": APP_SECRET, "META_WEBHOOK_VERIFY_TOKEN": uuid.uuid4().hex}
    log = run.workdir / "webhooks.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.deploy.recording",
             str(run.workdir / "webhooks.calls.jsonl"), "webhooks",
             "--port", "0", "--metrics-port", "0", "--ready-file", str(ready)],
            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=out,
        )  # fmt: skip
    try:
        wait_until(lambda: ready.exists() or proc.poll() is not None, timeout_s=60)
        assert ready.exists(), log.read_text()[-2000:]
        url = json.loads(ready.read_text())["url"]
        readyz = requests.get(f"{url}/readyz", timeout=30).status_code
        body = STATUS_BODY.encode()
        digest = hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
        posted = requests.post(
            f"{url}/webhooks/whatsapp",
            data=body,
            headers={"Content-Type": "application/json", "X-Hub-Signature-256": f"sha256={digest}"},
            timeout=30,
        ).status_code
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    queue_url = sqs.get_queue_url(QueueName=run.env["CAMPAIGN_RECEIPTS_QUEUE_NAME"])["QueueUrl"]
    queued = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=2)
    messages = queued.get("Messages", [])
    for message in messages:
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return {
        "readyz": readyz,
        "posted": posted,
        "queued": [m["Body"] for m in messages],
        "exitCode": code,
    }


# -- the template -----------------------------------------------------------------------------


def _resources(kind: str) -> dict[str, dict[str, Any]]:
    template = load_cfn(TEMPLATE)
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def test_both_tables_are_on_demand_recoverable_encrypted_with_the_engines_keys() -> None:
    tables = _resources("AWS::DynamoDB::Table")
    assert set(tables) == {"CampaignsTable", "RecipientsTable"}
    for table in tables.values():
        props = table["Properties"]
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert props["SSESpecification"]["SSEEnabled"] is True
        assert props["KeySchema"] == [
            {"AttributeName": "PK", "KeyType": "HASH"},
            {"AttributeName": "SK", "KeyType": "RANGE"},
        ]
        assert props["AttributeDefinitions"][:2] == [
            {"AttributeName": "PK", "AttributeType": "S"},
            {"AttributeName": "SK", "AttributeType": "S"},
        ]
        assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain"
    assert len(tables["CampaignsTable"]["Properties"]["AttributeDefinitions"]) == 2
    assert "GlobalSecondaryIndexes" not in tables["CampaignsTable"]["Properties"]


def test_the_recipients_table_has_the_message_id_index_init_creates() -> None:
    props = _resources("AWS::DynamoDB::Table")["RecipientsTable"]["Properties"]

    assert props["GlobalSecondaryIndexes"] == [MESSAGE_ID_INDEX]
    assert props["AttributeDefinitions"][2:] == [
        {"AttributeName": "messageId", "AttributeType": "S"}
    ]


def test_the_queue_and_dlq_match_the_engines_settings() -> None:
    template = load_cfn(TEMPLATE)
    queues = _resources("AWS::SQS::Queue")
    batch, dead = queues["BatchQueue"]["Properties"], queues["DeadLetterQueue"]["Properties"]
    assert batch["RedrivePolicy"]["maxReceiveCount"] == MAX_RECEIVE_COUNT == 5
    assert batch["VisibilityTimeout"] == {"Ref": "VisibilityTimeoutSeconds"}
    defaults = template["Parameters"]
    assert defaults["VisibilityTimeoutSeconds"]["Default"] == Settings().visibility_timeout_s
    assert defaults["QueueName"]["Default"] == Settings().campaign_queue_name
    assert defaults["CampaignsTableName"]["Default"] == Settings().campaigns_table
    assert defaults["RecipientsTableName"]["Default"] == Settings().recipients_table
    assert dead["QueueName"] == {"Fn::Sub": "${QueueName}-dlq"}  # Settings.dlq_name
    assert batch["SqsManagedSseEnabled"] is True
    assert dead["SqsManagedSseEnabled"] is True


def test_the_stack_deploys_in_moto_and_its_resources_are_as_declared(
    stack_run: Run, stack: LocalStack
) -> None:
    env = stack_run.env
    dynamodb = _client(stack, "dynamodb")
    for name in (env["CAMPAIGNS_TABLE"], env["RECIPIENTS_TABLE"]):
        table = dynamodb.describe_table(TableName=name)["Table"]
        assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        assert [k["AttributeName"] for k in table["KeySchema"]] == ["PK", "SK"]
    recipients = dynamodb.describe_table(TableName=env["RECIPIENTS_TABLE"])["Table"]
    assert [i["IndexName"] for i in recipients["GlobalSecondaryIndexes"]] == ["messageId-index"]
    sqs = _client(stack, "sqs")
    url = sqs.get_queue_url(QueueName=env["CAMPAIGN_QUEUE_NAME"])["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["VisibilityTimeout"] == env["VISIBILITY_TIMEOUT_S"]
    assert attributes["SqsManagedSseEnabled"] == "true"
    redrive = json.loads(attributes["RedrivePolicy"])
    assert redrive["maxReceiveCount"] == MAX_RECEIVE_COUNT
    assert redrive["deadLetterTargetArn"].endswith(":" + env["CAMPAIGN_QUEUE_NAME"] + "-dlq")
    assert set(_settings_from_outputs_keys()) <= {n.upper() for n in Settings.model_fields}


def _settings_from_outputs_keys() -> list[str]:
    outputs = load_cfn(TEMPLATE)["Outputs"]
    return [
        o["Description"].removeprefix("Setting ")
        for o in outputs.values()
        if o["Description"].startswith("Setting ")
    ]


# -- the campaign -----------------------------------------------------------------------------


def test_a_campaign_runs_end_to_end_on_the_stacks_resources_configured_by_its_outputs(
    campaign_run: Run,
) -> None:
    results = campaign_run.results
    assert results["first"]["status"] == CampaignStatus.COMPLETED.value
    assert (results["first"]["sentCount"], results["first"]["failedCount"]) == (5, 1)
    assert (results["execute"]["sent"], results["execute"]["failed"]) == (2, 1)
    assert results["second"]["status"] == CampaignStatus.COMPLETED.value
    lost = results["lost"]["report"]
    assert (lost["expiredLeases"], lost["reenqueuedRecipients"]) == (1, 2), lost
    third = results["third"]
    assert (third["sentCount"], third["unknownCount"], third["status"]) == (2, 1, "COMPLETED")
    assert results["read"]["readCount"] == 2, "the consumer's receipts loop applied the read"
    assert sorted(results["accepted"]) == sorted(results["phones"]), "each number exactly once"
    assert [d["valid"] for d in results["dlq"]["messages"]] == [True]
    assert results["redrive"]["redriven"] == 1
    for depth in results["depths"]:
        assert depth == {
            "ApproximateNumberOfMessages": "0",
            "ApproximateNumberOfMessagesNotVisible": "0",
        }


def test_the_operator_api_runs_a_campaign_on_the_stacks_resources_through_every_endpoint(
    campaign_run: Run,
) -> None:
    api = campaign_run.results["api"]
    assert api["inserted"] == len(api["phones"])
    assert api["listed"][0] == api["campaignId"], "newest first"
    executed = api["executed"]
    assert (executed["sent"], executed["failed"], executed["completed"]) == (3, 1, True)
    assert [p.lstrip("+") for p in api["sent"]] == sorted(api["phones"][:-1])
    assert api["exportedLines"] == 1 + len(api["phones"])
    assert (api["cancelled"], api["final"]) == ("CANCELLED", "COMPLETED")
    assert api["exitCode"] == 0


def test_the_webhook_receiver_queues_a_signed_body_on_the_stacks_receipts_queue(
    campaign_run: Run,
) -> None:
    webhooks = campaign_run.results["webhooks"]
    assert (webhooks["readyz"], webhooks["posted"]) == (200, 200)
    assert webhooks["queued"] == [STATUS_BODY], "the body as Meta sent it, on the receipts queue"
    assert webhooks["exitCode"] == 0


# -- IAM --------------------------------------------------------------------------------------


def _region(run: Run) -> str:
    return run.env["AWS_REGION"]


def _context(call: dict[str, Any], name: str) -> Context:
    """IAM's request context of one recorded call on one resource: its partition keys."""
    keys = call.get("leadingKeys", {}).get(name)
    return {LEADING_KEYS: keys} if keys else {}


def _authorised(run: Run, role: str) -> list[tuple[str, str, Context]]:
    """(action, resource ARN, context) of every call recorded under ``role``."""
    return [
        (
            iam_action(call["service"], call["operation"]).lower(),
            resource_arn(call["service"], name, _region(run)),
            _context(call, name),
        )
        for call in run.calls(role)
        for name in call["resources"]
    ]


@pytest.mark.parametrize("role", sorted(ROLES))
def test_every_aws_call_the_code_made_is_allowed_by_its_roles_policy(
    campaign_run: Run, role: str
) -> None:
    """Each call, on each resource it names, with its partition keys (the leading-key
    conditions are evaluated on the keys the call really sent)."""
    calls = campaign_run.calls(role)
    assert calls, f"the {role} made no AWS call?"
    assert all(call["resources"] for call in calls)
    denied = [
        (action, arn, context.get(LEADING_KEYS))
        for action, arn, context in _authorised(campaign_run, role)
        if not allows(campaign_run.policies[role], action, arn, context)
    ]
    assert not denied, sorted({(a, r, str(k)) for a, r, k in denied})


@pytest.mark.parametrize("role", sorted(ROLES))
def test_each_policy_grants_exactly_the_actions_its_role_used(campaign_run: Run, role: str) -> None:
    used = {iam_action(c["service"], c["operation"]).lower() for c in campaign_run.calls(role)}
    assert granted_actions(campaign_run.policies[role]) == used


@pytest.mark.parametrize("role", sorted(ROLES))
def test_each_policy_grants_each_action_only_on_the_resources_it_was_called_on(
    campaign_run: Run, role: str
) -> None:
    """Exact per resource, not only per action: a grant of an action the role calls on one
    table is not a reason to grant it on the other (the consumer's PutItem is for the
    campaigns table's user links, never a recipient)."""
    used = {(action, arn) for action, arn, _ in _authorised(campaign_run, role)}
    unused = [
        (action.lower(), resource)
        for statement in statements(campaign_run.policies[role])
        for action in _listed(statement["Action"])
        for resource in _listed(statement["Resource"])
        if (action.lower(), resource) not in used
    ]
    assert not unused, sorted(unused)


@pytest.mark.parametrize("role", sorted(ROLES))
def test_each_leading_key_pattern_a_policy_grants_was_used_by_each_of_its_actions(
    campaign_run: Run, role: str
) -> None:
    """The leading-key conditions are exact too: every (action, table, key pattern) a
    statement allows was called with a key of that shape."""
    calls = _authorised(campaign_run, role)
    unused = [
        (action.lower(), resource, pattern)
        for statement in statements(campaign_run.policies[role])
        for pattern in leading_key_patterns(statement)
        for action in _listed(statement["Action"])
        for resource in _listed(statement["Resource"])
        if not any(
            a == action.lower()
            and r == resource
            and any(like(pattern, key) for key in c.get(LEADING_KEYS, []))
            for a, r, c in calls
        )
    ]
    assert not unused, sorted(unused)


# Every partition key shape of the two tables (campaigns/aws/items.py).
PARTITION_KEYS = {
    CAMPAIGN_PREFIX + "*",  # a campaign's metadata and counter shards; every recipient
    COUNTER_PREFIX + "*",  # the daily cap's counters
    SUPPRESSION_PREFIX + "*",  # the suppression list
    USER_LINK_PREFIX + "*",  # BSUID -> phone links
}


@pytest.mark.parametrize("role", sorted(ROLES))
def test_keyed_access_to_either_table_is_bounded_by_partition_key_prefixes(
    campaign_run: Run, role: str
) -> None:
    """Every statement granting an action that names a key on a table carries a leading-key
    condition (a Scan names none, and the wamid index's keys are wamids: those two alone are
    unconditioned), the condition requires a key (``Null: false``, so a Scan cannot slip
    through ``ForAllValues``, which holds for an empty set), and its patterns are the tables'
    own key shapes."""
    env, region = campaign_run.env, _region(campaign_run)
    tables = {
        resource_arn("dynamodb", env[n], region) for n in ("CAMPAIGNS_TABLE", "RECIPIENTS_TABLE")
    }
    for statement in statements(campaign_run.policies[role]):
        if not set(_listed(statement["Resource"])) & tables:
            continue
        actions = lower(_listed(statement["Action"]))
        if actions == {"dynamodb:scan"}:
            assert "Condition" not in statement
            continue
        assert "dynamodb:scan" not in actions, statement
        assert statement["Condition"]["Null"] == {LEADING_KEYS: "false"}, statement
        assert set(leading_key_patterns(statement)) <= PARTITION_KEYS, statement
        assert leading_key_patterns(statement), statement


def test_the_consumer_policy_is_the_hot_path_only(campaign_run: Run) -> None:
    consumer = granted_actions(campaign_run.policies["consumer"])
    assert consumer == lower(
        [
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:Query",
            "dynamodb:DeleteItem",  # the status webhooks: unsuppress
            "dynamodb:Scan",  # the status webhooks: running_campaigns
            "dynamodb:BatchGetItem",  # the executor's per-batch suppression check
            "sqs:GetQueueUrl",
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:ChangeMessageVisibility",
        ]
    )


def test_policies_name_only_the_stacks_resources_and_no_provisioning(campaign_run: Run) -> None:
    region, env = _region(campaign_run), campaign_run.env
    stack_resources = {
        resource_arn("dynamodb", env["CAMPAIGNS_TABLE"], region),
        resource_arn("dynamodb", env["RECIPIENTS_TABLE"], region),
        resource_arn("dynamodb", f"{env['RECIPIENTS_TABLE']}/index/messageId-index", region),
        resource_arn("sqs", env["CAMPAIGN_QUEUE_NAME"], region),
        resource_arn("sqs", env["CAMPAIGN_QUEUE_NAME"] + "-dlq", region),
        resource_arn("sqs", env.get("CAMPAIGN_RECEIPTS_QUEUE_NAME", "campaign-receipts"), region),
    }
    for role, policy in campaign_run.policies.items():
        assert granted_resources(policy) <= stack_resources, role
        assert not any("*" in action for action in granted_actions(policy)), role
        assert not granted_actions(policy) & PROVISIONING, role


def _listed(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _operations_in_code() -> set[str]:
    """Every DynamoDB and SQS operation the application's source calls (by boto3 method name),
    as IAM actions: a policy must not grant anything outside this set."""
    session = botocore.session.get_session()
    methods: dict[str, str] = {}
    for service in ("dynamodb", "sqs"):
        model = session.get_service_model(service)
        for operation in model.operation_names:
            methods[xform_name(operation)] = iam_action(service, operation).lower()
    called: set[str] = set()
    for package in ("campaigns", "consumer", "producer", "api", "webhooks"):
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr in methods
                ):
                    called.add(methods[node.func.attr])
    return called


def test_no_policy_grants_an_action_the_code_never_calls(campaign_run: Run) -> None:
    in_code = _operations_in_code()
    assert {"dynamodb:updateitem", "sqs:receivemessage"} <= in_code
    for role, policy in campaign_run.policies.items():
        assert granted_actions(policy) <= in_code, role


def test_the_api_policy_is_the_producers_without_the_dead_letter_queue(
    campaign_run: Run,
) -> None:
    api, producer = campaign_run.policies["api"], campaign_run.policies["producer"]
    region, env = _region(campaign_run), campaign_run.env
    dlq = resource_arn("sqs", env["CAMPAIGN_QUEUE_NAME"] + "-dlq", region)
    assert granted_actions(api) < granted_actions(producer)
    assert granted_actions(api) == lower(
        [
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:Query",
            "dynamodb:Scan",
            "dynamodb:BatchGetItem",
            "dynamodb:BatchWriteItem",
            "sqs:GetQueueUrl",
            "sqs:SendMessage",
            "sqs:GetQueueAttributes",
        ]
    )
    assert dlq not in granted_resources(api)
    for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueUrl"):
        assert not allows(api, action, dlq), action
    queue = resource_arn("sqs", env["CAMPAIGN_QUEUE_NAME"], region)
    assert not allows(api, "sqs:ReceiveMessage", queue), "the consumer's job, not the API's"
    recipients = resource_arn("dynamodb", env["RECIPIENTS_TABLE"], region)
    assert not allows(api, "dynamodb:DeleteItem", recipients)


def test_the_scaler_policy_only_reads_the_batch_queues_attributes(
    stack_run: Run, stack: LocalStack
) -> None:
    iam = _client(stack, "iam")
    arn = stack_run.outputs["ScalerPolicyArn"]
    policy = iam.get_policy(PolicyArn=arn)["Policy"]
    version = iam.get_policy_version(PolicyArn=arn, VersionId=policy["DefaultVersionId"])
    document = version["PolicyVersion"]["Document"]
    document = json.loads(document) if isinstance(document, str) else document
    assert granted_actions(document) == {"sqs:getqueueattributes"}
    queue = resource_arn("sqs", stack_run.env["CAMPAIGN_QUEUE_NAME"], _region(stack_run))
    assert granted_resources(document) == {queue}


def test_the_consumer_policy_refuses_what_the_consumer_has_no_business_doing(
    campaign_run: Run,
) -> None:
    consumer, region, env = (
        campaign_run.policies["consumer"],
        _region(campaign_run),
        campaign_run.env,
    )
    recipients = resource_arn("dynamodb", env["RECIPIENTS_TABLE"], region)
    queue = resource_arn("sqs", env["CAMPAIGN_QUEUE_NAME"], region)
    assert allows(consumer, "dynamodb:UpdateItem", recipients, {LEADING_KEYS: ["CAMPAIGN#c"]})
    assert not allows(consumer, "dynamodb:Scan", recipients)
    index = resource_arn("dynamodb", f"{env['RECIPIENTS_TABLE']}/index/messageId-index", region)
    assert allows(consumer, "dynamodb:Query", index)
    assert not allows(consumer, "dynamodb:Scan", index)
    assert not allows(consumer, "dynamodb:BatchWriteItem", recipients)
    assert not allows(consumer, "dynamodb:BatchGetItem", recipients)  # suppressions only
    assert not allows(consumer, "dynamodb:DeleteItem", recipients)
    recipient_key = {LEADING_KEYS: ["CAMPAIGN#cmp_1"]}
    assert allows(consumer, "dynamodb:UpdateItem", recipients, recipient_key)
    assert not allows(consumer, "dynamodb:PutItem", recipients, recipient_key), "never called"
    campaigns = resource_arn("dynamodb", env["CAMPAIGNS_TABLE"], region)
    assert allows(consumer, "dynamodb:PutItem", campaigns, {LEADING_KEYS: ["BSUID#IN.1"]})
    for pk in ("CAMPAIGN#cmp_1", "DAILY_COUNTER#2026-01-01", "SUPPRESSED#1", "OTHER#1"):
        assert not allows(consumer, "dynamodb:PutItem", campaigns, {LEADING_KEYS: [pk]}), pk
    assert not allows(consumer, "dynamodb:UpdateItem", campaigns, {LEADING_KEYS: ["OTHER#1"]})
    assert not allows(consumer, "dynamodb:UpdateItem", campaigns), "a key is required"
    assert not allows(consumer, "dynamodb:GetItem", resource_arn("dynamodb", "other", region))
    assert not allows(consumer, "sqs:SendMessage", queue)
    assert not allows(consumer, "sqs:PurgeQueue", queue)
    dlq = resource_arn("sqs", env["CAMPAIGN_QUEUE_NAME"] + "-dlq", region)
    assert not allows(consumer, "sqs:ReceiveMessage", dlq)


def test_the_consumer_policy_grants_every_call_a_status_webhook_makes(campaign_run: Run) -> None:
    """The DeliveryStore's calls, recorded by tests/deploy/delivery_calls.py (RECORDINGS): a
    delivery's TransactWriteItems is authorised as UpdateItem on the recipient's table and on
    the counter's, the wamid lookup as Query on the index, unsuppress as DeleteItem and
    running_campaigns as Scan on the campaigns table. It really applied them."""
    region, env = _region(campaign_run), campaign_run.env
    calls = campaign_run.recorded("deliveries")
    made = {
        (call["operation"], call.get("via"), name) for call in calls for name in call["resources"]
    }
    campaigns, recipients = env["CAMPAIGNS_TABLE"], env["RECIPIENTS_TABLE"]
    assert {
        ("UpdateItem", "TransactWriteItems", recipients),
        ("UpdateItem", "TransactWriteItems", campaigns),
        ("UpdateItem", None, recipients),
        ("Query", None, f"{recipients}/index/messageId-index"),
        ("DeleteItem", None, campaigns),
        ("Scan", None, campaigns),
        ("PutItem", None, campaigns),  # the BSUID link, in the campaigns table
        ("GetItem", None, campaigns),
    } <= made
    assert ("PutItem", None, recipients) not in made
    for call in calls:
        for name in call["resources"]:
            arn = resource_arn("dynamodb", name, region)
            action, context = f"dynamodb:{call['operation']}", _context(call, name)
            assert allows(campaign_run.policies["consumer"], action, arn, context), call
    delivered = campaign_run.results["delivered"]
    assert (delivered["deliveredCount"], delivered["readCount"]) == (1, 1)


def test_the_webhooks_policy_only_sends_to_and_asks_the_receipts_queue(campaign_run: Run) -> None:
    """What the receiver's recording showed (the exact-grants test above proves each action was
    called): GetQueueUrl (configured by name), SendMessage (its SendMessageBatch) and
    GetQueueAttributes (/readyz), on the receipts queue and nothing else: no table, no batch
    queue, no receive or delete (the consumer applies the receipts)."""
    webhooks, region, env = (
        campaign_run.policies["webhooks"],
        _region(campaign_run),
        campaign_run.env,
    )
    receipts = resource_arn("sqs", env["CAMPAIGN_RECEIPTS_QUEUE_NAME"], region)
    assert granted_actions(webhooks) == lower(
        ["sqs:GetQueueUrl", "sqs:SendMessage", "sqs:GetQueueAttributes"]
    )
    assert granted_resources(webhooks) == {receipts}
    operations = {(c["operation"], tuple(c["resources"])) for c in campaign_run.calls("webhooks")}
    name = (env["CAMPAIGN_RECEIPTS_QUEUE_NAME"],)
    assert operations == {
        ("GetQueueUrl", name),
        ("GetQueueAttributes", name),
        ("SendMessageBatch", name),
    }
    for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage"):
        assert not allows(webhooks, action, receipts), action
    batch = resource_arn("sqs", env["CAMPAIGN_QUEUE_NAME"], region)
    assert not allows(webhooks, "sqs:SendMessage", batch)
    for table in (env["CAMPAIGNS_TABLE"], env["RECIPIENTS_TABLE"]):
        assert not allows(webhooks, "dynamodb:GetItem", resource_arn("dynamodb", table, region))


def test_the_reconcile_role_is_what_reconcile_calls_and_not_the_producers(
    campaign_run: Run,
) -> None:
    """Reconcile's own policy (the CronJob's and the scheduled ECS task's): the calls of
    `campaign-producer reconcile` as recorded (its exactness is the parametrized tests'), and
    none of the operators' powers: no dead-letter queue, no BatchWriteItem, no receive or
    delete, no new campaign."""
    reconcile, producer = campaign_run.policies["reconcile"], campaign_run.policies["producer"]
    region, env = _region(campaign_run), campaign_run.env
    assert granted_actions(reconcile) < granted_actions(producer)
    assert granted_actions(reconcile) == lower(
        [
            "dynamodb:Query",  # the campaign, its counters, its recipients by status
            "dynamodb:UpdateItem",  # expire a lease, repair a counter, complete
            "dynamodb:Scan",  # reconcile without an id: every RUNNING or PAUSED campaign
            "sqs:GetQueueUrl",  # the ConfigMap names the queue
            "sqs:GetQueueAttributes",  # is the queue empty?
            "sqs:SendMessage",  # re-enqueue the PENDING recipients of a lost batch
        ]
    )
    dlq = resource_arn("sqs", env["CAMPAIGN_QUEUE_NAME"] + "-dlq", region)
    assert dlq not in granted_resources(reconcile)
    queue = resource_arn("sqs", env["CAMPAIGN_QUEUE_NAME"], region)
    for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage"):
        assert not allows(reconcile, action, queue), action
    for table in (env["CAMPAIGNS_TABLE"], env["RECIPIENTS_TABLE"]):
        arn = resource_arn("dynamodb", table, region)
        key = {LEADING_KEYS: ["CAMPAIGN#cmp_1"]}
        assert not allows(reconcile, "dynamodb:BatchWriteItem", arn, key), table
        assert not allows(reconcile, "dynamodb:PutItem", arn, key), table
    campaigns = resource_arn("dynamodb", env["CAMPAIGNS_TABLE"], region)
    for pk in ("DAILY_COUNTER#2026-01-01", "SUPPRESSED#1", "BSUID#IN.1"):
        assert not allows(reconcile, "dynamodb:UpdateItem", campaigns, {LEADING_KEYS: [pk]}), pk
    assert [call["operation"] for call in campaign_run.recorded("reconcile")].count(
        "SendMessageBatch"
    ) >= 1, "the lost batch was re-enqueued under this role"
