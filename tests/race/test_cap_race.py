"""The cap under a race: several consumer *processes* reserving units of one portfolio's cap."""

from __future__ import annotations

import pytest

from campaigns.domain.models import CampaignStatus, RecipientStatus
from tests.harness import Harness, counts_by_number, valid_numbers

CONSUMERS = 6
RECIPIENTS = 300
CAP = 100


@pytest.mark.parametrize("shards", [1, 3])
def test_cap_is_never_exceeded_by_racing_consumer_processes(harness: Harness, shards: int) -> None:
    harness.sandbox.set_rules([{"latency_ms": [5, 30]}])
    harness.env |= {
        "DAILY_CAP": str(CAP),
        "BATCH_SIZE": "10",
        "SEND_RATE_PER_SECOND": "200",
        "COUNTER_SHARDS": str(shards),  # 3: the cap in shares of 34/33/33, counters spread
    }
    # A portfolio of its own, so earlier tests' units in this moving window do not count.
    harness.env["BUSINESS_PORTFOLIO_ID"] = f"race-{harness.env['CAMPAIGNS_TABLE']}"
    phones = valid_numbers(RECIPIENTS)
    campaign_id = harness.campaign_with(phones)

    assert harness.run_consumers(CONSUMERS, timeout_s=150) == [0] * CONSUMERS

    per_number = counts_by_number(harness.accepted())
    assert len(per_number) == CAP  # exactly the cap, not one more, not one less
    assert set(per_number.values()) == {1}  # and nobody twice
    campaign = harness.campaign(campaign_id)
    assert campaign.status is CampaignStatus.PAUSED
    assert campaign.pause_reason == f"Daily limit reached: {CAP}/{CAP} conversations"
    recipients = harness.recipients(campaign_id)
    sent = [r for r in recipients if r.status is RecipientStatus.SENT]
    assert campaign.sent_count == len(sent) == CAP
    assert {r.phone for r in sent} == set(per_number)
    others = {r.status for r in recipients if r.status is not RecipientStatus.SENT}
    assert others == {RecipientStatus.PENDING}
    # Several consumers really did take part.
    senders = {e["consumer"] for e in harness.log_events("batch.completed") if e["sent"]}
    assert len(senders) >= 2
