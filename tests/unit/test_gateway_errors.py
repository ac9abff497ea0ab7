"""A gateway's 502/504 without Meta's JSON error body may follow an acceptance: the recipient
becomes UNKNOWN after that one request, never resent, its unit of the cap kept."""

from __future__ import annotations

import pytest

from campaigns.domain.models import RecipientStatus, SendAccepted
from campaigns.engine.outcomes import RecipientOutcome
from tests.unit.meta_errors import HTML_502, HTML_503, non_json_error
from tests.unit.test_executor import PHONES, Rig, running_store

HTML_504 = b"<html><body><h1>504 Gateway Time-out</h1></body></html>"


@pytest.fixture
def rig() -> Rig:
    campaign_id, store = running_store(PHONES)
    return Rig(store=store, campaign_id=campaign_id)


@pytest.mark.parametrize(("status", "body"), [(502, HTML_502), (504, HTML_504), (504, b"")])
def test_a_gateway_error_without_metas_answer_makes_the_recipient_unknown_after_one_request(
    rig: Rig, status: int, body: bytes
) -> None:
    ambiguous = PHONES[1]
    rig.script(ambiguous, non_json_error(status, body))

    summary = rig.run()

    assert rig.sender.requests_for(ambiguous) == 1
    recipient = rig.recipient(ambiguous)
    assert recipient.status is RecipientStatus.UNKNOWN
    assert recipient.unknown_reason == f"META_HTTP_{status}"
    assert summary.outcomes[ambiguous] is RecipientOutcome.UNKNOWN
    assert rig.guard.refunds == 0
    assert rig.guard.usage(rig.clock.now()).used == 5  # its unit stays charged
    assert rig.campaign().unknown_count == 1


def test_an_html_503_from_the_edge_is_still_retried(rig: Rig) -> None:
    retried = PHONES[1]
    rig.script(retried, non_json_error(503, HTML_503), SendAccepted("wamid.after503", "accepted"))

    rig.run()

    assert rig.sender.requests_for(retried) == 2
    assert rig.recipient(retried).status is RecipientStatus.SENT
