"""``campaign-producer init`` (``provision``) makes the receipts queue and its dead-letter
queue, redriving after five receives, once."""

from __future__ import annotations

import json
import uuid

from campaigns.aws.provision import provision
from campaigns.settings import Settings, load_settings
from sandbox.aws import MotoServer
from tests.harness import AwsClients


def _settings(moto_server: MotoServer) -> Settings:
    suffix = uuid.uuid4().hex[:8]
    return load_settings(
        aws_endpoint_url=moto_server.url,
        campaigns_table=f"campaigns-{suffix}",
        recipients_table=f"recipients-{suffix}",
        campaign_queue_name=f"batches-{suffix}",
        campaign_receipts_queue_name=f"receipts-{suffix}",
    )


def test_provision_creates_the_receipts_queue_redriving_to_its_dlq_after_five_receives(
    aws_clients: AwsClients, moto_server: MotoServer
) -> None:
    settings = _settings(moto_server)

    done = provision(aws_clients.db, aws_clients.sqs, settings)

    name = settings.campaign_receipts_queue_name
    assert {name, f"{name}-dlq"} <= set(done.created)
    sqs = aws_clients.sqs
    assert done.receipts_queue_url == sqs.get_queue_url(QueueName=name)["QueueUrl"]
    assert done.receipts_dlq_url == sqs.get_queue_url(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=done.receipts_dlq_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    attributes = sqs.get_queue_attributes(QueueUrl=done.receipts_queue_url, AttributeNames=["All"])[
        "Attributes"
    ]
    redrive = json.loads(attributes["RedrivePolicy"])
    assert (int(redrive["maxReceiveCount"]), redrive["deadLetterTargetArn"]) == (5, dlq_arn)
    assert int(attributes["MessageRetentionPeriod"]) >= 7 * 24 * 3600  # Meta's retry window


def test_provision_run_again_creates_no_receipts_queue(
    aws_clients: AwsClients, moto_server: MotoServer
) -> None:
    settings = _settings(moto_server)
    first = provision(aws_clients.db, aws_clients.sqs, settings)

    second = provision(aws_clients.db, aws_clients.sqs, settings)

    assert second.created == ()
    assert (second.receipts_queue_url, second.receipts_dlq_url) == (
        first.receipts_queue_url,
        first.receipts_dlq_url,
    )
