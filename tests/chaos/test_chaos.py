"""The chaos suite: every promise holds while consumers die and AWS and Meta misbehave."""

from __future__ import annotations

import pytest

from tests.chaos.chaos import ChaosConfig, run_chaos
from tests.harness import Harness


@pytest.mark.timeout(170)
@pytest.mark.parametrize("seed", [7, 2026])
def test_no_duplicate_no_loss_and_true_counters_under_chaos(harness: Harness, seed: int) -> None:
    report = run_chaos(harness, ChaosConfig(seed=seed, rounds=6, recipients=240))

    assert report.violations == [], report.summary()
    assert report.final_status == "COMPLETED", report.summary()
    assert report.injected_dynamodb_faults, "the DynamoDB faults never fired"
    assert {"sigkill", "sigterm"} & set(report.actions)


@pytest.mark.timeout(170)
def test_the_cap_holds_under_chaos(harness: Harness) -> None:
    report = run_chaos(
        harness, ChaosConfig(seed=99, rounds=4, recipients=200, daily_cap=120, pause_resume=False)
    )

    assert report.violations == [], report.summary()
    assert report.final_status == "PAUSED", report.summary()
    assert report.accepted <= 120
