"""A tiny run of `make bench`: correctness of what it measures, never its timings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.harness import ROOT


def test_the_benchmark_runs_end_to_end_and_measures_real_work(tmp_path: Path) -> None:
    output = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--smoke", "--output", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(output.read_text())

    assert results["send_rate"]["accepted"] == 100  # every recipient reached the API once
    assert results["send_rate_throttled"]["throttled_answers"] > 0
    assert results["seed_loop"]["accepted"] == 10
    trips = results["round_trips"]
    assert (trips["sent"], trips["status"]) == (50, "COMPLETED")
    assert trips["consumer_dynamodb_writes_per_recipient"] >= 4  # claim, reserve, commit, count
    assert results["engine_overhead"]["recipients"] == 500
    runs = {run["impl"]: run for run in results["producer"]}
    assert runs["ours"]["inserted"] == runs["ours"]["enqueued"] == 1000
    assert runs["naive"]["inserted"] == 1000
    assert runs["ours"]["dynamodb_calls"] < runs["naive"]["dynamodb_calls"]
    loop = results["receipts"]["loop"]  # every status applied at each concurrency, one end state
    assert loop["same_end_state"]
    assert all(run["applied"] == run["statuses"] and run["left"] == 0 for run in loop["runs"])
    assert len(results["table"]) >= 10
    assert "measured" in done.stdout
