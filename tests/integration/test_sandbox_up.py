"""`campaign-sandbox up` as a real process: it prints exports that work from another shell
(the producer CLI, the operator API), runs consumers that send what the console starts, and
a SIGTERM stops every process it started and exits 0."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from campaigns.domain.exitcodes import EXIT_USAGE
from tests.harness import ROOT, valid_numbers, wait_until

pytestmark = pytest.mark.integration

START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 60.0
# Only what a fresh shell has: the sandbox's exports must be enough on their own.
SHELL = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "LOG_FORMAT": "json"}


@dataclass
class Up:
    proc: subprocess.Popen[bytes]
    stdout: Path
    ready: dict[str, Any]

    def printed(self) -> str:
        return self.stdout.read_text()

    def exports(self) -> dict[str, str]:
        """The ``export NAME=VALUE`` lines it printed, parsed as a shell would."""
        found: dict[str, str] = {}
        for line in self.printed().splitlines():
            if line.startswith("export "):
                name, _, value = line.removeprefix("export ").partition("=")
                (found[name],) = shlex.split(value)
        return found

    def producer(self, *args: str) -> dict[str, Any]:
        done = subprocess.run(
            [sys.executable, "-m", "producer", *args, "--json"],
            env=SHELL | self.exports(),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        result: dict[str, Any] = json.loads(done.stdout)
        return result


def _children(pid: int) -> set[int]:
    """Every live descendant of ``pid`` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _running(pid: int) -> bool:
    """Alive and not a zombie (a zombie has exited; only its exit status is left)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _start(workdir: Path, *args: str, **env: str) -> Up:
    stdout = workdir / "stdout.txt"
    ready = workdir / "ready.json"
    environ = {k: v for k, v in os.environ.items() if k != "OPERATOR_API_KEYS"} | env
    argv = [sys.executable, "-m", "sandbox.cli", "up", "--api-port", "0"]
    argv += ["--workdir", str(workdir / "sandbox"), "--ready-file", str(ready), *args]
    with stdout.open("wb") as out:
        proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=environ,
            stdout=out,
            stderr=subprocess.PIPE,
        )
    started = wait_until(lambda: ready.exists() or proc.poll() is not None, START_TIMEOUT_S)
    if not started or proc.poll() is not None:
        proc.kill()
        _, err = proc.communicate(timeout=10)
        pytest.fail(f"campaign-sandbox up did not come up: {err.decode()[-2000:]}")
    return Up(proc, stdout, json.loads(ready.read_text()))


@pytest.fixture
def sandbox_up(tmp_path: Path) -> Iterator[Up]:
    # The consumer's SIGTERM waits out its receipts poll in progress: 1 s, as in the harness.
    up = _start(tmp_path, "--consumers", "1", RECEIPTS_POLL_WAIT_S="1")
    try:
        yield up
    finally:
        if up.proc.poll() is None:
            up.proc.kill()
            up.proc.wait(timeout=10)


def test_sandbox_up_prints_working_exports_runs_the_api_and_stops_every_child_on_sigterm(
    sandbox_up: Up,
) -> None:
    up = sandbox_up
    exports, printed = up.exports(), up.printed()
    assert exports["AWS_ENDPOINT_URL"] == up.ready["awsUrl"]
    assert exports["META_API_BASE_URL"] == up.ready["cloudapiUrl"]
    for name in ("AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "CAMPAIGNS_TABLE",
                 "RECIPIENTS_TABLE", "CAMPAIGN_QUEUE_NAME", "META_ACCESS_TOKEN",
                 "META_PHONE_NUMBER_ID"):  # fmt: skip
        assert exports[name], name
    key = up.ready["operatorKey"]
    assert exports["OPERATOR_API_KEYS"] == f"operator:{key}"
    assert len(key) >= 40  # secrets.token_urlsafe(32)
    assert f"Operator key:  {key}" in printed
    assert f"Console:       {up.ready['apiUrl']}/" in printed
    descendants = _children(up.proc.pid)
    assert set(up.ready["pids"].values()) <= descendants
    assert set(up.ready["pids"]) == {
        "AWS endpoint",
        "Cloud API emulator",
        "operator API",
        "webhook receiver",
        "consumer 1",
    }
    assert f"webhook receiver       {up.ready['webhooksUrl']}" in printed

    # Another shell, with nothing but the printed exports: the CLI works against the stack...
    created = up.producer("create", "--name", "by hand", "--template", "order_update")
    campaign_id = created["campaignId"]
    listed = up.producer("list")
    assert campaign_id in [c["campaignId"] for c in listed["campaigns"]]
    # ... the API answers with the printed key (and not without it) ...
    api = up.ready["apiUrl"]
    assert requests.get(f"{api}/healthz", timeout=5).status_code == 200
    assert requests.get(f"{api}/api/campaigns/{campaign_id}", timeout=5).status_code == 401
    got = requests.get(
        f"{api}/api/campaigns/{campaign_id}",
        headers={"Authorization": f"Bearer {key}"},
        timeout=5,
    )
    assert got.status_code == 200, got.text
    assert got.json()["campaign"]["name"] == "by hand"
    # ... and the sandbox's consumer sends a campaign the API starts.
    csv = up.stdout.with_name("recipients.csv")
    phones = valid_numbers(3, start=900)
    csv.write_text("phone\n" + "".join(f"+{p}\n" for p in phones))
    up.producer("populate", campaign_id, str(csv))
    control = requests.post(
        f"{api}/api/campaigns/{campaign_id}/control",
        json={"action": "start"},
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    assert control.status_code == 200, control.text
    assert wait_until(
        lambda: up.producer("status", campaign_id)["status"] == "COMPLETED", timeout_s=60
    )
    assert up.producer("status", campaign_id)["sentCount"] == len(phones)
    # The emulator's signed statuses reach the receiver, and the consumer applies them.
    assert wait_until(
        lambda: up.producer("status", campaign_id)["deliveredCount"] == len(phones), timeout_s=60
    )

    up.proc.send_signal(signal.SIGTERM)
    _, err = up.proc.communicate(timeout=STOP_TIMEOUT_S)
    assert up.proc.returncode == 0, err.decode()[-2000:]
    assert "stopped; no process left running" in err.decode()
    assert not [pid for pid in descendants if _running(pid)], "orphans left running"


def test_sandbox_up_uses_the_callers_operator_keys_and_never_prints_them(tmp_path: Path) -> None:
    up = _start(tmp_path, OPERATOR_API_KEYS="alice:alices-own-key-0123456789")
    try:
        assert "alices-own-key" not in up.printed()
        assert "OPERATOR_API_KEYS" not in up.exports()
        assert up.ready["operatorKey"] is None
        api = up.ready["apiUrl"]
        campaign_id = up.producer("create", "--name", "x", "--template", "t")["campaignId"]
        answer = requests.get(
            f"{api}/api/campaigns/{campaign_id}",
            headers={"Authorization": "Bearer alices-own-key-0123456789"},
            timeout=5,
        )
        assert answer.status_code == 200, answer.text
        descendants = _children(up.proc.pid)
    finally:
        up.proc.send_signal(signal.SIGINT)  # Ctrl-C
        up.proc.communicate(timeout=STOP_TIMEOUT_S)
    assert up.proc.returncode == 0
    assert not [pid for pid in descendants if _running(pid)]


def test_sandbox_up_refuses_a_negative_consumer_count_in_one_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sandbox.cli", "up", "--consumers", "-1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == EXIT_USAGE
    assert len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr
