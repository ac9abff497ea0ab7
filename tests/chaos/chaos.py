"""The chaos controller: real processes over HTTP, consumers SIGKILLed and SIGTERMed mid-batch
with replacements started, the Cloud API emulator and DynamoDB failing on purpose — then every
promise checked on the emulator's record and on DynamoDB itself.

Used by ``tests/chaos/test_chaos.py`` (fixed seeds) and by the soak mode
``make chaos SEED=… ROUNDS=…`` (``python -m tests.chaos.chaos --seed … --rounds …``).
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from campaigns.domain.models import Campaign, CampaignStatus, Recipient, RecipientStatus
from sandbox.cloudapi import AcceptedMessage
from sandbox.ddbfaults import FaultPlan, server_state, set_server_plan
from sandbox.stack import LocalStack
from tests.harness import Harness, counts_by_number, valid_numbers, wait_until

SHUTDOWN_TIMEOUT_S = 5.0
CONSUMER_ENV = {
    "VISIBILITY_TIMEOUT_S": "6",
    "LEASE_S": "5",
    "META_CONNECT_TIMEOUT_S": "1",
    "META_READ_TIMEOUT_S": "1.5",
    "SHUTDOWN_TIMEOUT_S": str(SHUTDOWN_TIMEOUT_S),
    "POLL_WAIT_S": "1",
    "BATCH_SIZE": "10",
    "SEND_RATE_PER_SECOND": "40",
    "CONSUMER_CONCURRENCY": "2",
    "MAX_SEND_ATTEMPTS": "3",
}
# The Cloud API misbehaving: slow, flaky, HTML pages, hangs past the read timeout, and
# connections reset after Meta accepted the message (the case that must end UNKNOWN).
CLOUD_API_FAULTS: list[dict[str, Any]] = [
    {"latency_ms": [10, 50]},
    {"match": r"\d*17", "code": 131026},
    {"probability": 0.03, "code": 131016},
    {"probability": 0.01, "html": True, "http_status": 502},
    {"probability": 0.01, "hang_s": 3},
    {"probability": 0.01, "reset": True, "after_accept": True},
]


@dataclass(frozen=True)
class ChaosConfig:
    seed: int = 7
    rounds: int = 6
    consumers: int = 4
    recipients: int = 300
    daily_cap: int = 0  # 0: no cap
    pause_resume: bool = True
    dynamodb_fault_rate: float = 0.02
    gap_s: tuple[float, float] = (1.0, 2.5)
    settle_timeout_s: float = 90.0


@dataclass
class ChaosReport:
    campaign_id: str = ""
    final_status: str = ""
    actions: list[str] = field(default_factory=list)
    sigterm_exits: list[tuple[int | None, float]] = field(default_factory=list)
    injected_dynamodb_faults: dict[str, int] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)
    accepted: int = 0
    violations: list[str] = field(default_factory=list)
    final_repair: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        return (
            f"campaign {self.campaign_id} {self.final_status}; actions {self.actions}; "
            f"statuses {self.statuses}; accepted {self.accepted}; "
            f"dynamodb faults {sum(self.injected_dynamodb_faults.values())}; "
            f"final reconcile {self.final_repair}; "
            f"violations {self.violations or 'none'}"
        )


def _terminate(proc: subprocess.Popen[bytes], report: ChaosReport) -> None:
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        code: int | None = proc.wait(timeout=SHUTDOWN_TIMEOUT_S + 10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
        code = None
    report.sigterm_exits.append((code, time.monotonic() - started))


def run_chaos(harness: Harness, config: ChaosConfig) -> ChaosReport:
    rng = random.Random(config.seed)
    report = ChaosReport()
    harness.env |= CONSUMER_ENV | {
        "DAILY_CAP": str(config.daily_cap),
        # A portfolio of its own: other runs' units in this moving window do not count.
        "BUSINESS_PORTFOLIO_ID": f"chaos-{harness.env['CAMPAIGNS_TABLE']}",
    }
    phones = valid_numbers(config.recipients)
    campaign_id = harness.campaign_with(phones)
    report.campaign_id = campaign_id
    harness.sandbox.set_rules(CLOUD_API_FAULTS)
    set_server_plan(
        harness.stack.aws_url,
        FaultPlan(rate=config.dynamodb_fault_rate, after_write=0.5, seed=config.seed),
    )
    consumers = [harness.consumer() for _ in range(config.consumers)]
    try:
        for _ in range(config.rounds):
            time.sleep(rng.uniform(*config.gap_s))
            actions = ["sigkill", "sigterm"] + (["pause"] if config.pause_resume else [])
            action = rng.choice(actions)
            victim = rng.randrange(len(consumers))
            report.actions.append(action)
            if action == "sigkill":
                consumers[victim].send_signal(signal.SIGKILL)
                consumers[victim].wait(timeout=10)
                consumers[victim] = harness.consumer()
            elif action == "sigterm":
                # Mid-batch, as a scale-down would: once the victim is running.
                wait_until(partial(harness.is_started, consumers[victim]), timeout_s=15)
                _terminate(consumers[victim], report)
                consumers[victim] = harness.consumer()
            elif harness.cli("pause", campaign_id, check=False)["_exit"] == 0:
                # (refused when the cap paused it first, or it completed)
                time.sleep(rng.uniform(0.5, 1.5))
                harness.cli("resume", campaign_id)
        _settle(harness, campaign_id, config)
    finally:
        for proc in consumers:
            if proc.poll() is None:
                _terminate(proc, report)
        report.injected_dynamodb_faults = server_state(harness.stack.aws_url)["injected"]
        set_server_plan(harness.stack.aws_url, FaultPlan())
        harness.sandbox.set_rules([])
    # The scheduled repair job, as operators run it, then the checks.
    repair = harness.cli("reconcile", campaign_id)["campaigns"][0]
    report.final_repair = {k: repair[k] for k in ("expiredLeases", "repairedCounters")}
    report.violations = check_invariants(harness, campaign_id, config, report)
    return report


def _settle(harness: Harness, campaign_id: str, config: ChaosConfig) -> None:
    """Let the survivors finish, with `reconcile` every few seconds like the CronJob."""
    deadline = time.monotonic() + config.settle_timeout_s

    def stopped_running() -> bool:
        return harness.campaign(campaign_id).status is not CampaignStatus.RUNNING

    while time.monotonic() < deadline:
        # Looked at every half second, so the settle ends as soon as the campaign does.
        if wait_until(stopped_running, timeout_s=4.0, interval_s=0.5):
            break
        harness.cli("reconcile", campaign_id)
    wait_until(lambda: harness.queue().depth() == (0, 0), timeout_s=15)


def check_invariants(
    harness: Harness, campaign_id: str, config: ChaosConfig, report: ChaosReport
) -> list[str]:
    """Every promise, checked on the final state; one line per broken one."""
    accepted = harness.accepted()
    per_number = counts_by_number(accepted)
    report.accepted = len(per_number)
    campaign = harness.campaign(campaign_id)
    report.final_status = campaign.status.value
    recipients = harness.recipients(campaign_id)
    statuses = Counter(r.status for r in recipients)
    report.statuses = {s.value: n for s, n in statuses.items()}
    return [
        *_nobody_twice(per_number),
        *_within_the_cap(accepted, config),
        *_nobody_dropped(campaign, recipients, statuses, config),
        *_counters_true(campaign, recipients, statuses),
        *_wamids_issued(accepted, per_number, recipients),
        *_queues_drained(harness, campaign),
        *_sigterm_exits(report),
    ]


def _nobody_twice(per_number: Mapping[str, int]) -> list[str]:
    twice = [phone for phone, n in per_number.items() if n > 1]
    return [f"1: accepted more than once: {twice[:5]}"] if twice else []


def _within_the_cap(accepted: list[AcceptedMessage], config: ChaosConfig) -> list[str]:
    # Everything here happened within minutes, so inside one window.
    if config.daily_cap and len(accepted) > config.daily_cap:
        return [f"2: {len(accepted)} accepted > DAILY_CAP {config.daily_cap}"]
    return []


def _nobody_dropped(
    campaign: Campaign,
    recipients: list[Recipient],
    statuses: Counter[RecipientStatus],
    config: ChaosConfig,
) -> list[str]:
    """Every recipient in a final state, or PENDING in a PAUSED campaign; none lost."""
    problems: list[str] = []
    if statuses[RecipientStatus.SENDING]:
        problems.append(f"3: {statuses[RecipientStatus.SENDING]} recipients left SENDING")
    if statuses[RecipientStatus.PENDING] and campaign.status is not CampaignStatus.PAUSED:
        problems.append(f"3: PENDING recipients in a {campaign.status.value} campaign")
    if len(recipients) != config.recipients:
        problems.append(f"3: {len(recipients)} recipient items, expected {config.recipients}")
    return problems


def _counters_true(
    campaign: Campaign, recipients: list[Recipient], statuses: Counter[RecipientStatus]
) -> list[str]:
    truth = {
        "sentCount": (campaign.sent_count, statuses[RecipientStatus.SENT]),
        "failedCount": (campaign.failed_count, statuses[RecipientStatus.FAILED]),
        "unknownCount": (campaign.unknown_count, statuses[RecipientStatus.UNKNOWN]),
        "totalRecipients": (campaign.total_recipients, len(recipients)),
    }
    problems = [
        f"4: {name} {counter} != {items} items"
        for name, (counter, items) in truth.items()
        if counter != items
    ]
    if sum(statuses.values()) != campaign.total_recipients:
        problems.append("4: sent + failed + unknown + pending != totalRecipients")
    return problems


def _wamids_issued(
    accepted: list[AcceptedMessage], per_number: Mapping[str, int], recipients: list[Recipient]
) -> list[str]:
    """Every SENT wamid was issued by the emulator for that number; UNKNOWN at most once."""
    problems: list[str] = []
    issued = {(m.to, m.wamid) for m in accepted}
    for recipient in recipients:
        if recipient.status is RecipientStatus.SENT and (
            (recipient.phone, recipient.message_id) not in issued
        ):
            problems.append(f"5: SENT {recipient.phone[-4:]} has a wamid the API never issued")
        if recipient.status is RecipientStatus.UNKNOWN and per_number.get(recipient.phone, 0) > 1:
            problems.append(f"5: UNKNOWN {recipient.phone[-4:]} accepted twice")
        if (
            recipient.status in (RecipientStatus.PENDING, RecipientStatus.FAILED)
            and per_number.get(recipient.phone, 0) > 0
        ):
            problems.append(f"5: {recipient.status.value} {recipient.phone[-4:]} was accepted")
    return problems


def _queues_drained(harness: Harness, campaign: Campaign) -> list[str]:
    """A completed campaign leaves the queue and the DLQ empty."""
    if campaign.status is CampaignStatus.COMPLETED:
        problems: list[str] = []
        if harness.queue().depth() != (0, 0):
            problems.append(f"6: queue not empty: {harness.queue().depth()}")
        if harness.queue(dead_letter=True).depth() != (0, 0):
            problems.append(f"6: DLQ not empty: {harness.queue(dead_letter=True).depth()}")
        return problems
    if campaign.status is not CampaignStatus.PAUSED:
        return [f"6: campaign ended {campaign.status.value}"]
    return []


def _sigterm_exits(report: ChaosReport) -> list[str]:
    """SIGTERM: exit 0 within SHUTDOWN_TIMEOUT_S."""
    return [
        f"7: SIGTERM exit {code} after {took_s:.1f} s"
        for code, took_s in report.sigterm_exits
        if code != 0 or took_s > SHUTDOWN_TIMEOUT_S + 1.0
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Soak the engine under chaos.")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--recipients", type=int, default=600)
    parser.add_argument("--daily-cap", type=int, default=0)
    args = parser.parse_args(argv)
    config = ChaosConfig(
        seed=args.seed,
        rounds=args.rounds,
        recipients=args.recipients,
        daily_cap=args.daily_cap,
        settle_timeout_s=max(90.0, args.recipients / 3),
    )
    workdir = Path(tempfile.mkdtemp(prefix="campaign-chaos-"))
    with LocalStack(workdir / "stack", seed=args.seed) as stack:
        os.environ.update(stack.env())  # this process reads DynamoDB and SQS for the checks
        harness = Harness(stack, workdir)
        try:
            report = run_chaos(harness, config)
        finally:
            harness.stop()
    print(report.summary())
    print(f"logs in {workdir}")
    return 1 if report.violations else 0


if __name__ == "__main__":
    sys.exit(main())
