"""The operator API's figures, each measured side by side with its CLI twin in one run.

- ``GET /api/campaigns/{id}`` per second: the real ``campaign-api`` app served by uvicorn in its
  own process, on the counting DynamoDB/SQS stand-ins of ``bench/fakeaws.py`` (moto would
  measure moto), driven by client threads with keep-alive sessions.
- A CSV uploaded and imported through ``POST /api/campaigns/{id}/populate`` versus the CLI's
  import of the same file (``bench.producer_scale --populate-only``), each in a fresh process on
  the same stand-ins, with each process's peak RSS.

``python -m bench.api_bench serve --ready-file F`` is the server half (used by ``run``).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests
import uvicorn

from api.app import create_app
from bench.fakeaws import FakeDynamoDB, FakeSQS
from bench.producer_scale import QUEUE_URL, peak_rss_mb
from campaigns.aws.bulk import BulkRecipients
from campaigns.aws.queue import SqsQueue
from campaigns.aws.store import DynamoStore
from campaigns.logging import configure
from campaigns.operator.commands import Producer
from campaigns.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent
KEY = "bench-operator-key-0123456789abcdef"
READY_TIMEOUT_S = 30.0


def serve(ready_file: Path) -> int:
    configure("console", "warning")
    settings = load_settings(operator_api_keys=f"bench:{KEY}")
    db, sqs = FakeDynamoDB(settings.recipients_table), FakeSQS()
    producer = Producer(
        settings=settings,
        store=DynamoStore(db, settings),  # type: ignore[arg-type]
        bulk=BulkRecipients(db, settings.campaigns_table, settings.recipients_table),  # type: ignore[arg-type]
        queue_factory=lambda: SqsQueue(sqs, QUEUE_URL),  # type: ignore[arg-type]
    )
    app = create_app(settings, build=lambda _: producer)
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and
    # without it every keep-alive answer waits ~40 ms for a delayed ACK (Nagle).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    ready_file.write_text(json.dumps({"url": f"http://127.0.0.1:{port}", "pid": os.getpid()}))
    config = uvicorn.Config(app, log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])
    return 0


class Server:
    """``serve`` in its own process, for one measurement."""

    def __init__(self, workdir: Path) -> None:
        self.ready = workdir / "api.ready"
        self.ready.unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.api_bench", "serve", "--ready-file", str(self.ready)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not (self.ready.exists() and self.ready.read_text()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                raise RuntimeError("the benchmark API server did not start")
            time.sleep(0.05)
        self.url = str(json.loads(self.ready.read_text())["url"])
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {KEY}"

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
        return 0.0

    def create(self) -> str:
        body = {"name": "bench", "templateName": "order_update", "channel": "WHATSAPP",
                "audienceType": "CSV"}  # fmt: skip
        answer = self.session.post(f"{self.url}/api/campaigns/create", json=body, timeout=30)
        answer.raise_for_status()
        return str(answer.json()["campaignId"])

    def close(self) -> None:
        self.session.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def get_rate(workdir: Path, requests_total: int, threads: int) -> dict[str, Any]:
    server = Server(workdir)
    try:
        url = f"{server.url}/api/campaigns/{server.create()}"
        per_thread = requests_total // threads

        def client(_: int) -> list[float]:
            latencies = []
            with requests.Session() as session:
                session.headers["Authorization"] = f"Bearer {KEY}"
                for _ in range(per_thread):
                    started = time.perf_counter()
                    answer = session.get(url, timeout=30)
                    latencies.append(time.perf_counter() - started)
                    if answer.status_code != 200 or not answer.json()["success"]:
                        raise RuntimeError(f"GET answered {answer.status_code}")
            return latencies

        client(0)  # warm up: the first requests build the app's caches
        started = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            latencies = [x for run in pool.map(client, range(threads)) for x in run]
        wall = time.perf_counter() - started
    finally:
        server.close()
    quantiles = statistics.quantiles(latencies, n=100)
    return {
        "requests": len(latencies),
        "client_threads": threads,
        "per_s": round(len(latencies) / wall, 1),
        "p50_ms": round(quantiles[49] * 1000, 2),
        "p99_ms": round(quantiles[98] * 1000, 2),
    }


def upload_versus_cli(workdir: Path, csv_file: Path) -> dict[str, Any]:
    server = Server(workdir)
    try:
        campaign_id = server.create()
        started = time.perf_counter()
        with csv_file.open("rb") as handle:
            answer = server.session.post(
                f"{server.url}/api/campaigns/{campaign_id}/populate",
                files={"file": (csv_file.name, handle, "text/csv")},
                timeout=600,
            )
        api_wall = time.perf_counter() - started
        answer.raise_for_status()
        api_inserted = int(answer.json()["inserted"])
        api_rss = server.peak_rss_mb()
    finally:
        server.close()
    done = subprocess.run(
        [sys.executable, "-m", "bench.producer_scale", "--impl", "ours", "--populate-only",
         "--csv", str(csv_file)],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )  # fmt: skip
    cli = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        "rows": sum(1 for _ in csv_file.open()) - 1,
        "api_wall_s": round(api_wall, 2),
        "api_inserted": api_inserted,
        "api_server_peak_rss_mb": api_rss,
        "cli_wall_s": cli["wall_s"],
        "cli_inserted": cli["inserted"],
        "cli_peak_rss_mb": cli["peak_rss_mb"],
        "api_over_cli": round(api_wall / max(cli["wall_s"], 0.01), 2),
    }


def figures(workdir: Path, csv_file: Path, *, smoke: bool) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    return {
        "get_campaign": get_rate(workdir, 100 if smoke else 4000, 4 if smoke else 8),
        "upload": upload_versus_cli(workdir, csv_file),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    served = sub.add_parser("serve")
    served.add_argument("--ready-file", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "serve":
        return serve(args.ready_file)
    return 2  # pragma: no cover


__all__ = ["figures", "peak_rss_mb"]

if __name__ == "__main__":
    sys.exit(main())
