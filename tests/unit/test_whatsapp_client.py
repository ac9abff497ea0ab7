"""The Cloud API client against the sandbox emulator: bodies, answers and every error path."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import pytest
import requests

from campaigns.domain.errors import (
    AmbiguousSend,
    CampaignHalted,
    PairRateLimited,
    RecipientRejected,
    RetryableSendError,
    SendError,
    ThrottledSendError,
)
from campaigns.domain.models import SendAccepted, TemplateMessage, TemplateParam
from campaigns.meta.cloudapi import CloudApiSender, parse_retry_after
from campaigns.settings import Settings, load_settings
from sandbox.cloudapi import CloudApiEmulator, FaultRule
from tests.unit.meta_errors import (
    FAIL_CODES,
    PAIR_RATE_CODES,
    PAUSE_CODES,
    SUPPRESS_CODES,
    THROTTLE_CODES,
    TRANSIENT_CODES,
    UNCLASSIFIED_CODE,
    answer,
    error_body,
    translate,
)

TOKEN = "client-test-token"
PHONE_NUMBER_ID = "106540352242922"
PHONE = "919876543210"


@pytest.fixture(scope="module")
def api() -> Iterator[CloudApiEmulator]:
    with CloudApiEmulator(access_token=TOKEN) as emulator:
        yield emulator


@pytest.fixture
def emulator(api: CloudApiEmulator) -> CloudApiEmulator:
    api.reset()
    return api


def settings_for(base_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "meta_api_base_url": base_url,
        "meta_access_token": TOKEN,
        "meta_phone_number_id": PHONE_NUMBER_ID,
        "meta_connect_timeout_s": 2.0,
        "meta_read_timeout_s": 5.0,
    }
    return load_settings(**(values | overrides))


class RecordingSession(requests.Session):
    """A real session that also keeps the JSON bodies it posted."""

    def __init__(self) -> None:
        super().__init__()
        self.bodies: list[Any] = []

    def post(self, url: str | bytes, data: Any = None, json: Any = None, **kwargs: Any) -> Any:
        self.bodies.append(json)
        return super().post(url, data=data, json=json, **kwargs)


@pytest.fixture
def session() -> Iterator[RecordingSession]:
    with RecordingSession() as session:
        yield session


@pytest.fixture
def sender(emulator: CloudApiEmulator, session: RecordingSession) -> Iterator[CloudApiSender]:
    sender = CloudApiSender(settings_for(emulator.url), session)
    yield sender
    sender.close()


def message(to: str = PHONE, **overrides: Any) -> TemplateMessage:
    values: dict[str, Any] = {
        "to": to,
        "template_name": "vendor_signup_confirmation",
        "language": "en_US",
        "params": (TemplateParam("first_name", "Asha"), TemplateParam("city", "Pune")),
        "callback_data": "cmp_1:919876543210",
    }
    return TemplateMessage(**(values | overrides))


def send_error(sender: CloudApiSender, to: str = PHONE) -> SendError:
    with pytest.raises(SendError) as raised:
        sender.send(message(to))
    return raised.value


# -- success and the body on the wire -------------------------------------------------------


def test_an_accepted_send_returns_the_wamid_meta_answered(
    sender: CloudApiSender, emulator: CloudApiEmulator
) -> None:
    accepted = sender.send(message())

    [recorded] = emulator.accepted()
    assert accepted == SendAccepted(recorded.wamid, "accepted")
    assert accepted.message_id.startswith("wamid.")


def test_the_request_body_has_the_shape_meta_documents(
    sender: CloudApiSender, emulator: CloudApiEmulator, session: RecordingSession
) -> None:
    sender.send(message())

    [body] = session.bodies
    assert body == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "+919876543210",
        "type": "template",
        "template": {
            "name": "vendor_signup_confirmation",
            "language": {"code": "en_US"},
            "components": [
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "text": "Asha"},
                        {"type": "text", "text": "Pune"},
                    ],
                }
            ],
        },
        "biz_opaque_callback_data": "cmp_1:919876543210",
    }
    [recorded] = emulator.accepted()
    assert recorded.to == PHONE
    assert recorded.phone_number_id == PHONE_NUMBER_ID
    assert recorded.template_name == "vendor_signup_confirmation"
    assert recorded.language == "en_US"
    assert recorded.components == body["template"]["components"]
    assert recorded.biz_opaque_callback_data == "cmp_1:919876543210"


def test_named_parameters_carry_their_parameter_name(
    sender: CloudApiSender, emulator: CloudApiEmulator
) -> None:
    sender.send(message(named_params=True))

    [recorded] = emulator.accepted()
    assert recorded.components == [
        {
            "type": "body",
            "parameters": [
                {"type": "text", "text": "Asha", "parameter_name": "first_name"},
                {"type": "text", "text": "Pune", "parameter_name": "city"},
            ],
        }
    ]


def test_a_template_without_params_or_callback_data_sends_neither(
    sender: CloudApiSender, emulator: CloudApiEmulator, session: RecordingSession
) -> None:
    sender.send(message(params=(), callback_data=None))

    [body] = session.bodies
    assert "components" not in body["template"]
    assert "biz_opaque_callback_data" not in body
    [recorded] = emulator.accepted()
    assert recorded.components == []
    assert recorded.biz_opaque_callback_data is None


def test_the_access_token_travels_only_in_the_authorization_header(
    sender: CloudApiSender, session: RecordingSession
) -> None:
    sender.send(message())

    assert session.headers["Authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in repr(session.bodies)


def test_added_latency_within_the_read_timeout_is_still_a_success(
    sender: CloudApiSender, emulator: CloudApiEmulator
) -> None:
    emulator.set_rules([FaultRule(latency_ms=100)])

    accepted = sender.send(message())

    assert [m.wamid for m in emulator.accepted()] == [accepted.message_id]


# -- Meta's error codes, over HTTP ----------------------------------------------------------

ERROR_CASES: list[tuple[int, type[SendError]]] = [
    *[(code, ThrottledSendError) for code in THROTTLE_CODES],
    *[(code, PairRateLimited) for code in PAIR_RATE_CODES],
    *[(code, RetryableSendError) for code in TRANSIENT_CODES],
    *[(code, CampaignHalted) for code in sorted(PAUSE_CODES)],
    *[(code, RecipientRejected) for code in (*FAIL_CODES, *SUPPRESS_CODES)],
]


@pytest.mark.parametrize(("code", "expected"), ERROR_CASES)
def test_each_meta_error_code_becomes_the_exception_the_engine_acts_on(
    sender: CloudApiSender, emulator: CloudApiEmulator, code: int, expected: type[SendError]
) -> None:
    emulator.set_rules([FaultRule(code=code)])

    error = send_error(sender)

    assert type(error) is expected
    assert error.code == f"META_{code}"
    assert emulator.accepted() == []
    if isinstance(error, CampaignHalted):
        assert error.reason == PAUSE_CODES[code]
        assert f"META_{code}" in error.detail
    if isinstance(error, RecipientRejected):
        assert error.suppress is (code in SUPPRESS_CODES)
        assert error.classified


def test_the_code_decides_not_the_http_status(
    sender: CloudApiSender, emulator: CloudApiEmulator
) -> None:
    emulator.set_rules([FaultRule(code=131026, http_status=500)])

    error = send_error(sender)

    assert type(error) is RecipientRejected
    assert error.code == "META_131026"


def test_an_unclassified_code_with_a_5xx_is_retried(
    sender: CloudApiSender, emulator: CloudApiEmulator
) -> None:
    emulator.set_rules([FaultRule(code=UNCLASSIFIED_CODE, http_status=503)])

    error = send_error(sender)

    assert type(error) is RetryableSendError
    assert error.code == f"META_{UNCLASSIFIED_CODE}"


def test_an_unclassified_code_with_a_4xx_fails_the_recipient_as_unclassified(
    sender: CloudApiSender, emulator: CloudApiEmulator
) -> None:
    emulator.set_rules([FaultRule(code=UNCLASSIFIED_CODE, http_status=400)])

    error = send_error(sender)

    assert type(error) is RecipientRejected
    assert error.code == f"META_{UNCLASSIFIED_CODE}"
    assert not error.classified
    assert not error.suppress


@pytest.mark.parametrize("status", [502, 504])
def test_a_gateway_502_or_504_without_metas_answer_is_ambiguous_and_never_resent(
    sender: CloudApiSender, emulator: CloudApiEmulator, status: int
) -> None:
    # The gateway forwarded the request and lost Meta's answer: Meta accepted the message.
    emulator.set_rules([FaultRule(html=True, http_status=status, after_accept=True)])

    error = send_error(sender)

    assert type(error) is AmbiguousSend
    assert error.code == f"META_HTTP_{status}"
    assert emulator.stats()["html"] == 1
    assert [m.to for m in emulator.accepted()] == [PHONE]


@pytest.mark.parametrize("status", [500, 503])
def test_an_html_500_or_503_is_a_transient_error_named_by_its_status(
    sender: CloudApiSender, emulator: CloudApiEmulator, status: int
) -> None:
    emulator.set_rules([FaultRule(html=True, http_status=status)])

    error = send_error(sender)

    assert type(error) is RetryableSendError
    assert error.code == f"META_HTTP_{status}"
    assert emulator.accepted() == []


@pytest.mark.parametrize("status", [502, 504])
def test_a_gateway_status_with_metas_json_error_is_decided_by_its_code(
    sender: CloudApiSender, emulator: CloudApiEmulator, status: int
) -> None:
    emulator.set_rules([FaultRule(code=131000, http_status=status)])

    error = send_error(sender)

    assert type(error) is RetryableSendError
    assert error.code == "META_131000"


def test_an_empty_400_is_a_transient_error(
    sender: CloudApiSender, emulator: CloudApiEmulator
) -> None:
    emulator.set_rules([FaultRule(empty=True)])

    error = send_error(sender)

    assert type(error) is RetryableSendError
    assert error.code == "META_HTTP_400"


def test_a_bad_token_halts_the_campaign_for_auth(emulator: CloudApiEmulator) -> None:
    sender = CloudApiSender(settings_for(emulator.url, meta_access_token="expired-token"))
    try:
        error = send_error(sender)
    finally:
        sender.close()

    assert isinstance(error, CampaignHalted)
    assert error.code == "META_190"
    assert error.reason == "auth"
    assert emulator.accepted() == []


def test_rules_for_other_numbers_leave_this_one_alone(
    sender: CloudApiSender, emulator: CloudApiEmulator
) -> None:
    emulator.set_rules([FaultRule(match="91999.*", code=131026)])

    sender.send(message(PHONE))
    error = send_error(sender, "919990000001")

    assert error.code == "META_131026"
    assert [m.to for m in emulator.accepted()] == [PHONE]


# -- ambiguity: was it sent? ----------------------------------------------------------------


def test_a_hang_past_the_read_timeout_is_ambiguous(emulator: CloudApiEmulator) -> None:
    emulator.set_rules([FaultRule(hang_s=5.0)])
    sender = CloudApiSender(settings_for(emulator.url, meta_read_timeout_s=0.3, lease_s=60))
    started = time.monotonic()
    try:
        error = send_error(sender)
    finally:
        sender.close()

    assert type(error) is AmbiguousSend
    assert error.code == "META_TIMEOUT"
    assert time.monotonic() - started < 3.0
    assert emulator.stats()["hangs"] == 1


@pytest.mark.parametrize("after_accept", [True, False])
def test_a_connection_reset_after_the_request_was_written_is_ambiguous(
    sender: CloudApiSender, emulator: CloudApiEmulator, after_accept: bool
) -> None:
    emulator.set_rules([FaultRule(reset=True, after_accept=after_accept)])

    error = send_error(sender)

    assert type(error) is AmbiguousSend
    assert len(emulator.accepted()) == (1 if after_accept else 0)  # the client cannot tell


def test_a_refused_connection_is_safe_to_retry() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    sender = CloudApiSender(settings_for(f"http://127.0.0.1:{closed_port}"))
    try:
        error = send_error(sender)
    finally:
        sender.close()

    assert type(error) is RetryableSendError
    assert error.code == "META_CONNECT"


def test_a_tls_handshake_failure_is_safe_to_retry(emulator: CloudApiEmulator) -> None:
    plain_http_spoken_as_https = emulator.url.replace("http://", "https://")
    sender = CloudApiSender(settings_for(plain_http_spoken_as_https))
    try:
        error = send_error(sender)
    finally:
        sender.close()

    assert emulator.stats()["requests"] == 0  # no request ever reached the server
    assert type(error) is RetryableSendError
    assert error.code == "META_CONNECT"


# -- answers the emulator cannot give: built by hand ----------------------------------------


def test_a_200_without_a_message_id_is_ambiguous() -> None:
    error = translate(answer(200, b'{"messaging_product": "whatsapp", "messages": []}'))

    assert type(error) is AmbiguousSend
    assert error.code == "META_HTTP_200"


def test_a_held_for_quality_assessment_answer_is_still_accepted() -> None:
    body = b'{"messages": [{"id": "wamid.HELD", "message_status": "held_for_quality_assessment"}]}'
    sender = CloudApiSender(settings_for("https://graph.example"))
    try:
        accepted = sender._interpret(answer(200, body))
    finally:
        sender.close()

    assert accepted == SendAccepted("wamid.HELD", "held_for_quality_assessment")


@pytest.mark.parametrize("code", [130429, 131056, 131000])
def test_a_retry_after_header_travels_with_the_retryable_error(code: int) -> None:
    error = translate(answer(429, error_body(code), {"Retry-After": "7"}))

    assert isinstance(error, RetryableSendError)
    assert error.retry_after_s == 7.0


def test_a_retry_after_header_on_a_non_json_answer_is_kept_too() -> None:
    error = translate(answer(503, b"<html></html>", {"Retry-After": "3"}))

    assert isinstance(error, RetryableSendError)
    assert error.retry_after_s == 3.0


def test_retry_after_is_parsed_from_seconds_or_an_http_date() -> None:
    now_s = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC).timestamp()
    in_90_s = format_datetime(datetime(2026, 3, 1, 12, 1, 30, tzinfo=UTC), usegmt=True)
    in_the_past = format_datetime(datetime(2026, 3, 1, 11, 0, 0, tzinfo=UTC), usegmt=True)

    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 2.5 ") == 2.5
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after(in_90_s, now_s) == 90.0
    assert parse_retry_after(in_the_past, now_s) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after("") is None
    assert parse_retry_after(None) is None
