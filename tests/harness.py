"""Test tooling for integration, race and chaos tests: real processes over loopback HTTP.

One ``LocalStack`` (moto + Cloud API emulator processes) serves a whole test session; each
test gets its own tables and queues (fresh names) and a reset emulator.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from campaigns.aws.clients import dynamodb_client, sqs_client
from campaigns.aws.queue import SqsQueue, resolve_queue_url
from campaigns.aws.store import DynamoStore
from campaigns.domain.models import Campaign, Recipient
from campaigns.settings import Settings, load_settings
from sandbox.cloudapi import AcceptedMessage, SandboxControl
from sandbox.stack import LocalStack

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sqs import SQSClient

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class AwsClients:
    """A DynamoDB and an SQS client on one endpoint, shared by the adapter tests."""

    db: DynamoDBClient
    sqs: SQSClient


def valid_numbers(count: int, start: int = 0) -> list[str]:
    """Distinct valid Indian mobile numbers as E.164 digits (``919…``)."""
    return [f"919{start + i:09d}" for i in range(count)]


class Harness:
    def __init__(self, stack: LocalStack, workdir: Path, **env: str) -> None:
        self.stack = stack
        self.workdir = workdir
        suffix = uuid.uuid4().hex[:8]
        self.env: dict[str, str] = (
            dict(os.environ)
            | stack.env()
            | {
                "CAMPAIGNS_TABLE": f"campaigns-{suffix}",
                "RECIPIENTS_TABLE": f"recipients-{suffix}",
                "CAMPAIGN_QUEUE_NAME": f"batches-{suffix}",
                "LOG_FORMAT": "json",
                "POLL_WAIT_S": "1",
                # A stop waits out the receipts loop's poll in progress (10 s by default).
                "RECEIPTS_POLL_WAIT_S": "1",
                "METRICS_PORT": "0",
                "PYTHONUNBUFFERED": "1",
            }
            | env
        )
        self.sandbox = SandboxControl(stack.cloudapi_url)
        self.sandbox.reset()
        self._procs: list[subprocess.Popen[bytes]] = []
        self._logs: list[Path] = []
        self._log_of: dict[int, Path] = {}
        # Clients per settings (``env`` may change mid-test): building one loads botocore's
        # service model, ~0.1 s of CPU, and a wait_until polls every 0.1 s — a new client per
        # look kept a core busy on a 2-core machine, next to the processes under test.
        self._db_clients: dict[Settings, DynamoDBClient] = {}
        self._sqs_clients: dict[Settings, SQSClient] = {}
        self.cli("init")

    # -- settings and direct access for assertions ---------------------------------------

    def settings(self) -> Settings:
        names = {k.lower(): v for k, v in self.env.items() if k.isupper()}
        allowed = set(Settings.model_fields)
        return load_settings(**{k: v for k, v in names.items() if k in allowed})

    def store(self) -> DynamoStore:
        settings = self.settings()
        client = self._db_clients.get(settings)
        if client is None:
            client = self._db_clients[settings] = dynamodb_client(settings)
        return DynamoStore(client, settings)

    def queue(self, dead_letter: bool = False) -> SqsQueue:
        settings = self.settings()
        client = self._sqs_clients.get(settings)
        if client is None:
            client = self._sqs_clients[settings] = sqs_client(settings)
        name = settings.dlq_name if dead_letter else settings.campaign_queue_name
        return SqsQueue(client, resolve_queue_url(client, name))

    def campaign(self, campaign_id: str) -> Campaign:
        return self.store().require_campaign(campaign_id)

    def recipients(self, campaign_id: str) -> list[Recipient]:
        return list(self.store().iter_recipients(campaign_id))

    def accepted(self) -> list[AcceptedMessage]:
        return self.sandbox.messages()

    # -- the producer CLI ----------------------------------------------------------------

    def cli(self, *args: str, check: bool = True, **env: str) -> dict[str, Any]:
        done = subprocess.run(
            [sys.executable, "-m", "producer", *args, "--json"],
            env=self.env | env,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"producer {args} exited {done.returncode}: {done.stderr}")
        result: dict[str, Any] = json.loads(done.stdout) if done.stdout.strip() else {}
        result["_exit"] = done.returncode
        result["_stderr"] = done.stderr
        return result

    def campaign_with(
        self, phones: Iterable[str], *, start: bool = True, template: str = "order_update"
    ) -> str:
        campaign_id = str(
            self.cli("create", "--name", "test", "--template", template)["campaignId"]
        )
        csv_file = self.workdir / f"{campaign_id}.csv"
        csv_file.write_text("phone\n" + "\n".join(f"+{p}" for p in phones) + "\n")
        self.cli("populate", campaign_id, str(csv_file))
        if start:
            self.cli("start", campaign_id)
        return campaign_id

    # -- consumers -----------------------------------------------------------------------

    def consumer(self, *args: str, **env: str) -> subprocess.Popen[bytes]:
        log = self.workdir / f"consumer-{len(self._logs) + 1}.log"
        self._logs.append(log)
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "consumer", *args],
                env=self.env | env,
                stdout=out,
                stderr=out,
            )
        self._procs.append(proc)
        self._log_of[proc.pid] = log
        return proc

    def is_started(self, proc: subprocess.Popen[bytes]) -> bool:
        """The consumer finished starting (its loop runs): it logged ``consumer.started``."""
        log = self._log_of.get(proc.pid)
        return log is not None and '"consumer.started"' in log.read_text(errors="replace")

    def run_consumers(self, count: int, timeout_s: float = 90, **env: str) -> list[int]:
        """Run ``count`` consumers with ``--once`` until they exit; return their exit codes."""
        procs = [self.consumer("--once", **env) for _ in range(count)]
        return [proc.wait(timeout=timeout_s) for proc in procs]

    def log_events(self, event: str | None = None) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        for log in self._logs:
            for line in log.read_text(errors="replace").splitlines():
                if not line.startswith("{"):
                    continue
                record = json.loads(line)
                if event is None or record.get("event") == event:
                    events.append(record)
        return events

    def stop(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)


def wait_until(
    condition: Callable[[], bool], timeout_s: float = 30.0, interval_s: float = 0.1
) -> bool:
    """Poll ``condition`` until it holds or the (bounded) time is up."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval_s)
    return condition()


def counts_by_number(messages: Sequence[AcceptedMessage]) -> Mapping[str, int]:
    counts: dict[str, int] = {}
    for message in messages:
        counts[message.to] = counts.get(message.to, 0) + 1
    return counts
