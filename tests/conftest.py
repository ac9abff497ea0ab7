"""Shared fixtures: an in-thread moto server for adapter tests, settings pointing at it with
fresh table and queue names per test, and fake AWS credentials (never real ones)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from campaigns.aws.clients import dynamodb_client, sqs_client
from campaigns.aws.provision import provision
from campaigns.aws.store import DynamoStore
from campaigns.settings import Settings, load_settings
from sandbox.aws import MotoServer
from sandbox.stack import LocalStack
from tests.harness import AwsClients, Harness
from tests.unit.producer_support import SETTINGS_VARIABLES, Cli

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(autouse=True)
def _fake_aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "CAMPAIGN_QUEUE_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


@pytest.fixture(scope="session")
def aws_clients(moto_server: MotoServer) -> Iterator[AwsClients]:
    """One DynamoDB and one SQS client on the moto server for the whole session: building a
    client loads botocore's service model (~0.1 s), and the adapter tests need hundreds. They
    are built by the project's one factory, with the fake credentials, and get no handlers."""
    with pytest.MonkeyPatch.context() as env:
        for name, value in FAKE_CREDENTIALS.items():
            env.setenv(name, value)
        settings = load_settings(aws_endpoint_url=moto_server.url)
        yield AwsClients(dynamodb_client(settings), sqs_client(settings))


@pytest.fixture
def aws_settings(aws_clients: AwsClients, moto_server: MotoServer) -> Settings:
    """Settings on the shared moto server, with tables and queues no other test uses."""
    suffix = uuid.uuid4().hex[:8]
    settings = load_settings(
        aws_endpoint_url=moto_server.url,
        campaigns_table=f"campaigns-{suffix}",
        recipients_table=f"recipients-{suffix}",
        campaign_queue_name=f"batches-{suffix}",
        meta_access_token="sandbox-token",
        meta_phone_number_id="100000000000001",
    )
    provision(aws_clients.db, aws_clients.sqs, settings)
    return settings


@pytest.fixture
def dynamo_store(aws_clients: AwsClients, aws_settings: Settings) -> DynamoStore:
    return DynamoStore(aws_clients.db, aws_settings)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """The real processes (moto server, Cloud API emulator) for integration-level tests."""
    with LocalStack(tmp_path_factory.mktemp("stack")) as running:
        yield running


@pytest.fixture
def harness(stack: LocalStack, tmp_path: Path) -> Iterator[Harness]:
    """Fresh tables, queues and a reset emulator on the shared stack; consumers killed after."""
    running = Harness(stack, tmp_path)
    yield running
    running.stop()


@pytest.fixture
def cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Cli]:
    """``campaign-producer`` in-process on in-memory adapters, with an environment of its own
    (the CLI configures structlog on the captured stderr: the old config is restored after)."""
    for name in SETTINGS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    saved = structlog.get_config()
    yield Cli(capsys=capsys, monkeypatch=monkeypatch, tmp_path=tmp_path)
    structlog.configure(**saved)
