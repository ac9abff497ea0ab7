"""A refund that fails (DynamoDB throttling past its retries) never costs the recipient its
counter update or the campaign its pause: the unit stays charged (the safe direction for the
cap), and the failure is a metric and one warning line."""

from __future__ import annotations

import threading

import pytest
from structlog.testing import capture_logs

from campaigns.domain.models import CampaignStatus, RecipientStatus, TemplateMessage
from campaigns.engine.outcomes import BatchOutcome, RecipientOutcome
from campaigns.memory import Outcome
from tests.unit.meta_errors import FAIL_CODES, PAUSE_CODES, meta_error
from tests.unit.test_executor import PHONES, Rig, running_store

AUTH_CODE = next(code for code, reason in PAUSE_CODES.items() if reason == "auth")


@pytest.fixture
def rig() -> Rig:
    campaign_id, store = running_store(PHONES)
    return Rig(store=store, campaign_id=campaign_id)


def test_a_failed_recipient_is_counted_even_when_its_refund_raises(rig: Rig) -> None:
    failing = PHONES[2]
    rig.script(failing, meta_error(FAIL_CODES[0]))
    rig.guard.fail_next_refunds(1)

    with capture_logs() as logs:
        summary = rig.run()

    assert rig.recipient(failing).status is RecipientStatus.FAILED
    assert summary.outcomes[failing] is RecipientOutcome.FAILED
    campaign = rig.campaign()
    assert (campaign.sent_count, campaign.failed_count) == (4, 1)
    assert campaign.status is CampaignStatus.COMPLETED
    assert rig.guard.usage(rig.clock.now()).used == 5  # its unit stays charged
    assert rig.metric("campaign_refund_failures_total") == 1
    warnings = [e for e in logs if e["event"] == "cap.refund_failed"]
    assert len(warnings) == 1
    assert warnings[0]["log_level"] == "warning"


def test_a_halted_campaign_is_paused_even_when_the_refund_raises(rig: Rig) -> None:
    rig.script(PHONES[1], meta_error(AUTH_CODE))
    rig.guard.fail_next_refunds(1)

    summary = rig.run()

    assert summary.outcome is BatchOutcome.PAUSED
    campaign = rig.campaign()
    assert campaign.status is CampaignStatus.PAUSED
    assert campaign.pause_reason is not None
    recipient = rig.recipient(PHONES[1])
    assert (recipient.status, recipient.lease_owner) == (RecipientStatus.PENDING, None)
    assert rig.metric("campaign_refund_failures_total") == 1
    assert rig.metric("campaign_pauses_total", reason="auth") == 1


def test_a_recipient_given_back_is_released_even_when_the_refund_raises(rig: Rig) -> None:
    stop = threading.Event()

    def stop_with_a_transient_error(message: TemplateMessage) -> Outcome:
        stop.set()
        return meta_error(131000)

    rig.answer_with(stop_with_a_transient_error)
    rig.guard.fail_next_refunds(1)

    summary = rig.run(stop=stop)

    assert summary.outcome is BatchOutcome.RELEASED
    assert summary.outcomes[PHONES[0]] is RecipientOutcome.RELEASED
    assert rig.recipient(PHONES[0]).status is RecipientStatus.PENDING
    assert rig.guard.usage(rig.clock.now()).used == 1  # kept: safe for the cap
    assert rig.metric("campaign_refund_failures_total") == 1
