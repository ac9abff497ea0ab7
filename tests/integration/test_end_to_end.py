"""The full flow over HTTP: producer CLI → SQS (moto) → consumer processes → Cloud API
emulator → DynamoDB (moto)."""

from __future__ import annotations

import signal

from campaigns.domain.models import CampaignStatus, RecipientStatus
from tests.harness import Harness, counts_by_number, valid_numbers, wait_until


def test_every_recipient_is_sent_exactly_once_and_the_campaign_completes(
    harness: Harness,
) -> None:
    phones = valid_numbers(60)
    harness.sandbox.set_rules([{"match": phones[0], "code": 131026}])
    campaign_id = harness.campaign_with(phones)

    assert harness.run_consumers(2) == [0, 0]

    accepted = harness.accepted()
    per_number = counts_by_number(accepted)
    assert set(per_number) == set(phones[1:])
    assert set(per_number.values()) == {1}
    campaign = harness.campaign(campaign_id)
    assert campaign.status is CampaignStatus.COMPLETED
    assert (campaign.sent_count, campaign.failed_count, campaign.unknown_count) == (59, 1, 0)
    wamids = {m.to: m.wamid for m in accepted}
    for recipient in harness.recipients(campaign_id):
        if recipient.phone == phones[0]:
            assert recipient.status is RecipientStatus.FAILED
            assert recipient.error_code == "META_131026"
        else:
            assert recipient.status is RecipientStatus.SENT
            assert recipient.message_id == wamids[recipient.phone]
    assert all(m.biz_opaque_callback_data == f"{campaign_id}:{m.to}" for m in accepted)
    assert harness.queue().depth() == (0, 0)
    assert len(harness.log_events("campaign.completed")) == 1


def test_the_message_stays_queued_when_the_consumer_dies_before_committing(
    harness: Harness,
) -> None:
    phones = valid_numbers(3)
    harness.sandbox.set_rules([{"hang_s": 30}])  # every send hangs: the process dies mid-send
    env = {"VISIBILITY_TIMEOUT_S": "5", "META_READ_TIMEOUT_S": "20", "LEASE_S": "30"}
    harness.env |= env
    campaign_id = harness.campaign_with(phones)
    consumer = harness.consumer()
    assert wait_until(
        lambda: any(r.status is RecipientStatus.SENDING for r in harness.recipients(campaign_id)),
        timeout_s=30,
    )
    consumer.send_signal(signal.SIGKILL)
    consumer.wait(timeout=10)

    # Nothing was committed, so nothing was deleted: the message comes back after its timeout.
    assert wait_until(lambda: harness.queue().depth()[0] == 1, timeout_s=20)
    statuses = sorted(r.status.value for r in harness.recipients(campaign_id))
    assert statuses == ["PENDING", "PENDING", "SENDING"]
    assert harness.accepted() == []


def test_a_campaign_paused_mid_batch_sends_nothing_more_and_resume_finishes_it(
    harness: Harness,
) -> None:
    phones = valid_numbers(40)
    harness.sandbox.set_rules([{"latency_ms": 150}])
    campaign_id = harness.campaign_with(phones)
    consumer = harness.consumer()
    assert wait_until(lambda: len(harness.accepted()) >= 5, timeout_s=30)

    harness.cli("pause", campaign_id)
    # Pause takes effect within one second or one send, whichever is longer.
    wait_until(lambda: False, timeout_s=2.5)
    settled = len(harness.accepted())
    wait_until(lambda: False, timeout_s=2.0)
    assert len(harness.accepted()) == settled
    assert settled < len(phones)
    assert wait_until(lambda: harness.queue().depth() == (0, 0), timeout_s=10)

    resumed = harness.cli("resume", campaign_id)
    assert resumed["enqueuedRecipients"] == len(phones) - settled
    assert wait_until(
        lambda: harness.campaign(campaign_id).status is CampaignStatus.COMPLETED, timeout_s=60
    )
    consumer.send_signal(signal.SIGTERM)
    assert consumer.wait(timeout=30) == 0
    assert counts_by_number(harness.accepted()) == dict.fromkeys(phones, 1)


def test_a_campaign_with_several_consumers_is_completed_exactly_once(harness: Harness) -> None:
    phones = valid_numbers(30)
    campaign_id = harness.campaign_with(phones)
    harness.env["BATCH_SIZE"] = "5"

    assert harness.run_consumers(3) == [0, 0, 0]

    campaign = harness.campaign(campaign_id)
    assert campaign.status is CampaignStatus.COMPLETED
    assert campaign.completed_at is not None
    assert len(harness.log_events("campaign.completed")) == 1
    assert campaign.sent_count == 30


def test_sigterm_drains_and_exits_zero_leaving_unstarted_recipients_pending(
    harness: Harness,
) -> None:
    phones = valid_numbers(25)
    harness.sandbox.set_rules([{"latency_ms": 300}])
    campaign_id = harness.campaign_with(phones)
    consumer = harness.consumer()
    assert wait_until(lambda: len(harness.accepted()) >= 2, timeout_s=30)

    consumer.send_signal(signal.SIGTERM)
    assert consumer.wait(timeout=30) == 0

    recipients = harness.recipients(campaign_id)
    sent = {r.phone for r in recipients if r.status is RecipientStatus.SENT}
    assert sent == {m.to for m in harness.accepted()}
    assert all(r.status in (RecipientStatus.SENT, RecipientStatus.PENDING) for r in recipients)
    assert len(sent) < len(phones)
    # The released message is visible again at once for another consumer.
    assert wait_until(lambda: harness.queue().depth()[0] == 1, timeout_s=5)
    stopped = harness.log_events("consumer.stopped")
    assert len(stopped) == 1
    assert stopped[0]["released"] == len(phones) - len(sent)


def test_a_consumer_stopped_while_still_starting_exits_cleanly(harness: Harness) -> None:
    consumer = harness.consumer()
    wait_until(lambda: False, timeout_s=0.3)  # past interpreter start, inside the imports
    consumer.send_signal(signal.SIGTERM)

    assert consumer.wait(timeout=30) == 0
