"""``campaign-api`` as a real process (``python -m api --port 0 --ready-file …``) on the real
wiring: the session's moto server for DynamoDB and SQS, the sandbox Cloud API for
``execute-batch``, driven over HTTP as the old admin app would; then stopped by a signal."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from campaigns.domain.exitcodes import EXIT_CONFIG
from campaigns.settings import Settings
from sandbox.cloudapi import CloudApiEmulator
from sandbox.stack import _spawn
from tests.unit.producer_support import PHONE_NUMBER_ID, SANDBOX_TOKEN, SETTINGS_VARIABLES

pytestmark = pytest.mark.integration

KEY = "integration-key-5b1f0e7d"
STOP_TIMEOUT_S = 20


@dataclass
class Running:
    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {KEY}"})


@pytest.fixture
def cloud_api() -> Iterator[CloudApiEmulator]:
    with CloudApiEmulator(access_token=SANDBOX_TOKEN) as emulator:
        yield emulator


@pytest.fixture
def api_env(
    aws_settings: Settings, cloud_api: CloudApiEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The environment the process reads its settings from (nothing from the host)."""
    for name in SETTINGS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert aws_settings.aws_endpoint_url is not None
    for name, value in {
        "AWS_ENDPOINT_URL": aws_settings.aws_endpoint_url,
        "CAMPAIGNS_TABLE": aws_settings.campaigns_table,
        "RECIPIENTS_TABLE": aws_settings.recipients_table,
        "CAMPAIGN_QUEUE_NAME": aws_settings.campaign_queue_name,
        "META_API_BASE_URL": cloud_api.url,
        "META_ACCESS_TOKEN": SANDBOX_TOKEN,
        "META_PHONE_NUMBER_ID": PHONE_NUMBER_ID,
        "OPERATOR_API_KEYS": f"ops:{KEY}",
        "LOG_FORMAT": "json",
    }.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def api_process(api_env: None, tmp_path: Path) -> Iterator[Running]:
    log = tmp_path / "api.log"
    proc, url = _spawn(["-m", "api", "--port", "0"], tmp_path / "api.ready", log)
    try:
        yield Running(proc, url, log)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT_S)


def test_the_old_admin_apps_flow_over_real_http(api_process: Running) -> None:
    assert api_process.url.startswith("http://127.0.0.1:")
    with api_process.client() as http:
        assert httpx.get(f"{api_process.url}/healthz").status_code == 200
        assert httpx.get(f"{api_process.url}/api/campaigns").status_code == 401
        created = http.post("/api/campaigns/create", json={
            "name": "Diwali offer", "templateName": "diwali_offer",
            "channel": "WHATSAPP", "audienceType": "CSV",
        })  # fmt: skip
        assert created.status_code == 200, created.text
        campaign_id = created.json()["campaignId"]
        csv = b"phone,name\n9876500001,Asha\n9876500002,Ravi\n9876500003,Meera\nnope,X\n"
        populated = http.post(
            f"/api/campaigns/{campaign_id}/populate", files={"file": ("r.csv", csv, "text/csv")}
        )
        assert populated.status_code == 200, populated.text
        assert (populated.json()["inserted"], populated.json()["invalidCount"]) == (3, 1)
        started = http.post(f"/api/campaigns/{campaign_id}/control", json={"action": "start"})
        assert started.json() == {
            "success": True,
            "newStatus": "RUNNING",
            "enqueuedBatches": 1,
            "enqueuedRecipients": 3,
        }
        running = http.get(f"/api/campaigns/{campaign_id}").json()["campaign"]
        assert (running["status"], running["totalRecipients"]) == ("RUNNING", 3)
        batch = http.post(f"/api/campaigns/{campaign_id}/execute-batch").json()["result"]
        assert (batch["sent"], batch["completed"]) == (3, True)
        done = http.get(f"/api/campaigns/{campaign_id}").json()["campaign"]
        assert (done["status"], done["sentCount"], done["progressPercent"]) == ("COMPLETED", 3, 100)
        listed = http.get("/api/campaigns").json()["campaigns"]
        assert [c["campaignId"] for c in listed] == [campaign_id]
        exported = http.get(f"/api/campaigns/{campaign_id}/recipients.csv")
        assert exported.text.count("\n") == 4  # the header and three rows
        again = http.post(f"/api/campaigns/{campaign_id}/control", json={"action": "start"})
        assert again.status_code == 409
        assert again.json()["error"] == "Campaign status is COMPLETED: cannot start"
    assert KEY not in api_process.log.read_text()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_server_cleanly(api_process: Running, signum: int) -> None:
    with api_process.client() as http:
        assert http.get("/api/session").status_code == 200
    api_process.proc.send_signal(signum)
    assert api_process.proc.wait(timeout=STOP_TIMEOUT_S) == 0
    log = api_process.log.read_text()
    assert '"api.stopped"' in log
    assert "Traceback" not in log


def test_without_keys_the_process_refuses_to_start_in_one_line(
    api_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPERATOR_API_KEYS", "")
    done = subprocess.run(
        [sys.executable, "-m", "api", "--port", "0"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == EXIT_CONFIG
    assert done.stderr.decode().splitlines() == [
        "campaign-api: invalid OPERATOR_API_KEYS: must be set (name:key,name2:key2)"
    ]
