"""The local Cloud API emulator behaves like Meta's send endpoint and misbehaves on cue."""

from __future__ import annotations

import http.client
import json
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import pytest
import requests

from sandbox.cloudapi import AcceptedMessage, CloudApiEmulator, FaultRule, SandboxControl

TOKEN = "test-token"
PHONE_NUMBER_ID = "106540352242922"
SEND_PATH = f"/v25.0/{PHONE_NUMBER_ID}/messages"
PROJECT_ROOT = Path(__file__).resolve().parents[2]

MakeEmulator = Callable[..., CloudApiEmulator]


def template_body(to: object = "+919876543210", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "template",
        "template": {
            "name": "vendor_signup_confirmation",
            "language": {"code": "en_US"},
            "components": [{"type": "body", "parameters": [{"type": "text", "text": "Asha"}]}],
        },
        "biz_opaque_callback_data": "campaign-1:recipient-7",
    }
    body.update(overrides)
    return body


def with_template(**template: Any) -> dict[str, Any]:
    body = template_body()
    body["template"] = {**body["template"], **template}
    return body


def without(key: str) -> dict[str, Any]:
    body = template_body()
    del body[key]
    return body


@pytest.fixture
def make_emulator() -> Iterator[MakeEmulator]:
    started: list[CloudApiEmulator] = []

    def make(**kwargs: Any) -> CloudApiEmulator:
        emulator = CloudApiEmulator(access_token=TOKEN, **kwargs)
        emulator.start()
        started.append(emulator)
        return emulator

    yield make
    for emulator in started:
        emulator.stop()


@pytest.fixture
def emulator(make_emulator: MakeEmulator) -> CloudApiEmulator:
    return make_emulator()


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {TOKEN}"
        yield session


def send(
    session: requests.Session,
    emulator: CloudApiEmulator,
    body: object = None,
    *,
    timeout_s: float = 5.0,
    **kwargs: Any,
) -> requests.Response:
    """POST a template send; the response is read in full and closed."""
    payload = template_body() if body is None else body
    url = emulator.url + SEND_PATH
    with session.post(url, json=payload, timeout=timeout_s, **kwargs) as response:
        _ = response.content
    return response


def error_code(response: requests.Response) -> int:
    code = response.json()["error"]["code"]
    assert isinstance(code, int)
    return code


# -- the happy path -------------------------------------------------------------------------


@pytest.mark.parametrize("to", ["+919876543210", "919876543210"])
def test_a_valid_send_is_answered_like_meta_and_recorded_with_digits_only(
    emulator: CloudApiEmulator, session: requests.Session, to: str
) -> None:
    response = send(session, emulator, template_body(to=to))

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    payload = response.json()
    assert payload["messaging_product"] == "whatsapp"
    assert payload["contacts"] == [{"input": to, "wa_id": "919876543210"}]
    [message] = payload["messages"]
    assert message["id"].startswith("wamid.")
    assert message["message_status"] == "accepted"
    [accepted] = emulator.accepted()
    assert accepted.wamid == message["id"]
    assert accepted.to == "919876543210"
    assert accepted.phone_number_id == PHONE_NUMBER_ID
    assert accepted.template_name == "vendor_signup_confirmation"
    assert accepted.language == "en_US"
    assert accepted.components == template_body()["template"]["components"]
    assert accepted.biz_opaque_callback_data == "campaign-1:recipient-7"
    assert accepted.accepted_at == pytest.approx(time.time(), abs=60)


def test_optional_fields_may_be_left_out(
    emulator: CloudApiEmulator, session: requests.Session
) -> None:
    body = without("recipient_type")
    del body["biz_opaque_callback_data"]
    del body["template"]["components"]

    response = send(session, emulator, body)

    assert response.status_code == 200
    [accepted] = emulator.accepted()
    assert accepted.components == []
    assert accepted.biz_opaque_callback_data is None


def test_wamids_are_unique_across_sends_and_emulators(
    make_emulator: MakeEmulator, session: requests.Session
) -> None:
    first, second = make_emulator(), make_emulator()

    wamids = [
        send(session, api, template_body(to=f"+9198765432{i:02d}")).json()["messages"][0]["id"]
        for api in (first, second)
        for i in range(10)
    ]

    assert len(set(wamids)) == 20


def test_one_connection_serves_several_requests_with_keep_alive(
    emulator: CloudApiEmulator,
) -> None:
    host, port = urlsplit(emulator.url).netloc.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    try:
        sockets = []
        for _ in range(3):
            connection.request("POST", SEND_PATH, json.dumps(template_body()), headers)
            with connection.getresponse() as response:
                assert response.status == 200
                assert json.loads(response.read())["messages"]
            sockets.append(connection.sock)
    finally:
        connection.close()

    assert sockets[0] is not None
    assert all(sock is sockets[0] for sock in sockets)
    assert len(emulator.accepted()) == 3


# -- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [f"Bearer {TOKEN}x", "Bearer ", TOKEN, None],
    ids=["wrong-token", "empty-token", "no-bearer", "missing"],
)
def test_a_wrong_or_missing_token_is_refused_with_code_190(
    emulator: CloudApiEmulator, authorization: str | None
) -> None:
    with requests.Session() as session:
        if authorization is not None:
            session.headers["Authorization"] = authorization
        response = send(session, emulator)

    assert response.status_code == 401
    error = response.json()["error"]
    assert set(error) == {"message", "type", "code", "error_data", "fbtrace_id"}
    assert error["message"] == "(#190) Invalid OAuth access token"
    assert error["type"] == "OAuthException"
    assert error["code"] == 190
    assert error["error_data"]["messaging_product"] == "whatsapp"
    assert error["error_data"]["details"]
    assert error["fbtrace_id"]
    assert emulator.accepted() == []


BAD_BODIES: dict[str, object] = {
    "not-json": b"{not json",
    "json-array": [],
    "wrong-product": template_body(messaging_product="sms"),
    "missing-product": without("messaging_product"),
    "missing-to": without("to"),
    "to-with-letters": template_body(to="+91987654321a"),
    "to-too-short": template_body(to="+12345"),
    "to-too-long": template_body(to="+1234567890123456"),
    "to-leading-zero": template_body(to="+0919876543210"),
    "to-not-a-string": template_body(to=919876543210),
    "wrong-type": template_body(type="text"),
    "missing-template": without("template"),
    "template-not-object": template_body(template="vendor_signup_confirmation"),
    "empty-template-name": with_template(name=""),
    "missing-language": with_template(language=None),
    "empty-language-code": with_template(language={"code": ""}),
    "components-not-list": with_template(components={"type": "body"}),
    "component-not-object": with_template(components=["body"]),
    "group-recipient": template_body(recipient_type="group"),
    "callback-not-string": template_body(biz_opaque_callback_data=7),
    "callback-too-long": template_body(biz_opaque_callback_data="x" * 513),
    "unknown-key": template_body(text={"body": "hi"}),
}


@pytest.mark.parametrize("body", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_each_kind_of_bad_body_is_refused_with_code_100(
    emulator: CloudApiEmulator, session: requests.Session, body: object
) -> None:
    url = emulator.url + SEND_PATH
    kwargs: dict[str, Any] = {"data": body} if isinstance(body, bytes) else {"json": body}
    with session.post(url, timeout=5, **kwargs) as response:
        payload = response.json()

    assert response.status_code == 400
    assert payload["error"]["code"] == 100
    assert payload["error"]["message"] == "(#100) Invalid parameter"
    assert payload["error"]["error_data"]["details"]
    assert emulator.accepted() == []


def test_unknown_paths_get_404_and_other_methods_on_messages_get_405(
    emulator: CloudApiEmulator, session: requests.Session
) -> None:
    with session.post(emulator.url + "/v25.0/123/contacts", json={}, timeout=5) as unknown:
        assert unknown.status_code == 404
        assert unknown.json()["error"]["code"] == 100
    with session.get(emulator.url + SEND_PATH, timeout=5) as wrong_method:
        assert wrong_method.status_code == 405
        assert wrong_method.json()["error"]["code"] == 100


# -- fault rules ------------------------------------------------------------------------------


def test_a_code_rule_fires_only_for_matching_numbers(
    make_emulator: MakeEmulator, session: requests.Session
) -> None:
    emulator = make_emulator(rules=[FaultRule(match=r"9198\d+", code=131026)])

    matching = send(session, emulator, template_body(to="+919876543210"))
    other = send(session, emulator, template_body(to="+15551234567"))

    assert matching.status_code == 400
    assert error_code(matching) == 131026
    assert matching.json()["error"]["message"] == "(#131026) Message undeliverable"
    assert other.status_code == 200
    assert [m.to for m in emulator.accepted()] == ["15551234567"]


@pytest.mark.parametrize(
    ("rule", "status"),
    [
        (FaultRule(code=190), 401),
        (FaultRule(code=0), 401),
        (FaultRule(code=10), 403),
        (FaultRule(code=200), 403),
        (FaultRule(code=1), 500),
        (FaultRule(code=131000), 500),
        (FaultRule(code=133004), 500),
        (FaultRule(code=131016), 503),
        (FaultRule(code=130429), 400),
        (FaultRule(code=132001), 400),
        (FaultRule(code=131000, http_status=502), 502),
    ],
    ids=lambda value: str(value.to_dict()) if isinstance(value, FaultRule) else str(value),
)
def test_a_code_rule_answers_with_metas_status_for_that_code(
    make_emulator: MakeEmulator, session: requests.Session, rule: FaultRule, status: int
) -> None:
    emulator = make_emulator(rules=[rule])

    response = send(session, emulator)

    assert response.status_code == status
    assert error_code(response) == rule.code
    assert emulator.stats()["errors"] == 1


def test_times_limits_how_often_a_rule_fires(
    make_emulator: MakeEmulator, session: requests.Session
) -> None:
    emulator = make_emulator(rules=[FaultRule(code=131000, times=2)])

    statuses = [send(session, emulator).status_code for _ in range(4)]

    assert statuses == [500, 500, 200, 200]
    assert len(emulator.accepted()) == 2


def outcomes_with_seed(make_emulator: MakeEmulator, seed: int) -> list[int]:
    emulator = make_emulator(seed=seed, rules=[FaultRule(code=131000, probability=0.5)])
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {TOKEN}"
        return [send(session, emulator).status_code for _ in range(30)]


def test_probability_with_the_same_seed_gives_the_same_outcomes(
    make_emulator: MakeEmulator,
) -> None:
    first = outcomes_with_seed(make_emulator, seed=7)
    again = outcomes_with_seed(make_emulator, seed=7)
    other_seed = outcomes_with_seed(make_emulator, seed=8)

    assert first == again
    assert set(first) == {200, 500}
    assert other_seed != first


def test_setting_rules_restarts_the_seeded_sequence(
    emulator: CloudApiEmulator, session: requests.Session
) -> None:
    rules = [FaultRule(code=131000, probability=0.5)]
    emulator.set_rules(rules)
    first = [send(session, emulator).status_code for _ in range(20)]
    emulator.set_rules(rules)
    again = [send(session, emulator).status_code for _ in range(20)]

    assert first == again


def test_an_html_rule_answers_a_text_html_502(
    make_emulator: MakeEmulator, session: requests.Session
) -> None:
    emulator = make_emulator(rules=[FaultRule(html=True)])

    response = send(session, emulator)

    assert response.status_code == 502
    assert response.headers["Content-Type"].startswith("text/html")
    assert "502 Bad Gateway" in response.text
    with pytest.raises(requests.JSONDecodeError):
        response.json()
    assert emulator.stats()["html"] == 1
    assert emulator.accepted() == []


def test_an_empty_rule_answers_400_with_no_body(
    make_emulator: MakeEmulator, session: requests.Session
) -> None:
    emulator = make_emulator(rules=[FaultRule(empty=True)])

    response = send(session, emulator)

    assert response.status_code == 400
    assert response.content == b""
    assert emulator.accepted() == []


def test_latency_delays_the_answer_and_then_normal_handling_answers(
    make_emulator: MakeEmulator, session: requests.Session
) -> None:
    emulator = make_emulator(rules=[FaultRule(latency_ms=200)])

    started = time.monotonic()
    response = send(session, emulator)
    elapsed_s = time.monotonic() - started

    assert elapsed_s >= 0.2
    assert response.status_code == 200
    assert len(emulator.accepted()) == 1


def test_latency_rules_add_up_and_the_first_firing_terminal_rule_answers(
    make_emulator: MakeEmulator, session: requests.Session
) -> None:
    emulator = make_emulator(
        rules=[
            FaultRule(latency_ms=(100, 150)),
            FaultRule(match=r"1\d+", code=131016),
            FaultRule(code=131000, times=1),
            FaultRule(code=2),
            FaultRule(latency_ms=100),
        ]
    )

    started = time.monotonic()
    first = send(session, emulator)
    elapsed_s = time.monotonic() - started
    second = send(session, emulator)

    assert elapsed_s >= 0.2
    assert error_code(first) == 131000
    assert error_code(second) == 2


def test_a_hang_past_the_read_timeout_raises_read_timeout_and_records_nothing(
    make_emulator: MakeEmulator, session: requests.Session
) -> None:
    emulator = make_emulator(rules=[FaultRule(hang_s=3.0)])

    with pytest.raises(requests.ReadTimeout):
        send(session, emulator, timeout_s=0.3)

    assert emulator.accepted() == []
    assert emulator.stats()["hangs"] == 1


def test_a_hang_after_accept_times_out_but_records_the_message(
    make_emulator: MakeEmulator, session: requests.Session
) -> None:
    emulator = make_emulator(rules=[FaultRule(hang_s=3.0, after_accept=True)])

    with pytest.raises(requests.ReadTimeout):
        send(session, emulator, timeout_s=0.3)

    assert [m.to for m in emulator.accepted()] == ["919876543210"]


def test_a_reset_after_accept_raises_connection_error_but_records_the_message(
    make_emulator: MakeEmulator, session: requests.Session
) -> None:
    emulator = make_emulator(rules=[FaultRule(reset=True, after_accept=True, times=1)])

    with pytest.raises(requests.ConnectionError):
        send(session, emulator)

    [lost_answer] = emulator.accepted()
    assert lost_answer.to == "919876543210"
    assert emulator.stats()["resets"] == 1
    retry = send(session, emulator)
    assert retry.status_code == 200
    assert retry.json()["messages"][0]["id"] != lost_answer.wamid


def test_a_plain_reset_raises_connection_error_and_records_nothing(
    make_emulator: MakeEmulator, session: requests.Session
) -> None:
    emulator = make_emulator(rules=[FaultRule(reset=True)])

    with pytest.raises(requests.ConnectionError):
        send(session, emulator)

    assert emulator.accepted() == []


def test_stop_wakes_a_hung_request_and_closes_its_connection(
    make_emulator: MakeEmulator,
) -> None:
    emulator = make_emulator(rules=[FaultRule(hang_s=60.0)])
    failures: list[BaseException] = []

    def send_in_background() -> None:
        with requests.Session() as session:
            session.headers["Authorization"] = f"Bearer {TOKEN}"
            try:
                send(session, emulator, timeout_s=30.0)
            except requests.RequestException as exc:
                failures.append(exc)

    client = threading.Thread(target=send_in_background)
    client.start()
    while emulator.stats()["hangs"] == 0:
        time.sleep(0.01)
    emulator.stop()
    client.join(timeout=10)

    assert not client.is_alive()
    assert len(failures) == 1
    assert isinstance(failures[0], requests.ConnectionError)


# -- platform limits ------------------------------------------------------------------------


def test_sending_above_max_rate_per_s_gets_code_130429(
    make_emulator: MakeEmulator, session: requests.Session
) -> None:
    emulator = make_emulator(max_rate_per_s=2)

    responses = [send(session, emulator, template_body(to=f"+1555000{i:04d}")) for i in range(6)]

    assert responses[0].status_code == 200
    limited = [r for r in responses if r.status_code != 200]
    assert limited
    assert {error_code(r) for r in limited} == {130429}
    assert len(emulator.accepted()) == 6 - len(limited)


def test_a_second_message_to_the_same_user_within_the_pair_interval_gets_131056(
    make_emulator: MakeEmulator, session: requests.Session
) -> None:
    emulator = make_emulator(pair_interval_s=60)

    first = send(session, emulator, template_body(to="+919876543210"))
    second = send(session, emulator, template_body(to="919876543210"))
    other_user = send(session, emulator, template_body(to="+15551234567"))

    assert first.status_code == 200
    assert second.status_code == 400
    assert error_code(second) == 131056
    assert other_user.status_code == 200
    assert [m.to for m in emulator.accepted()] == ["919876543210", "15551234567"]


# -- control ----------------------------------------------------------------------------------


def test_sandbox_control_reads_messages_and_stats_sets_rules_and_resets(
    emulator: CloudApiEmulator, session: requests.Session
) -> None:
    control = SandboxControl(emulator.url)
    sent = send(session, emulator).json()["messages"][0]["id"]

    [message] = control.messages()
    assert isinstance(message, AcceptedMessage)
    assert message == emulator.accepted()[0]
    assert message.wamid == sent

    control.set_rules([{"match": r"1\d+", "code": 131048}, FaultRule(html=True, times=1)])
    assert error_code(send(session, emulator, template_body(to="+15551234567"))) == 131048
    assert send(session, emulator).status_code == 502
    assert send(session, emulator).status_code == 200

    assert control.stats() == {
        "requests": 4,
        "accepted": 2,
        "errors": 1,
        "hangs": 0,
        "resets": 0,
        "html": 1,
    }

    control.reset()
    assert control.messages() == []
    assert set(control.stats().values()) == {0}
    assert send(session, emulator, template_body(to="+15551234567")).status_code == 200


def test_a_bad_rule_is_refused_by_the_client_and_by_the_server(
    emulator: CloudApiEmulator,
) -> None:
    control = SandboxControl(emulator.url)

    with pytest.raises(ValueError, match="unknown rule key"):
        control.set_rules([{"code": 131000, "colour": "red"}])
    with requests.put(
        emulator.url + "/_sandbox/rules", json={"rules": [{"probability": 2}]}, timeout=5
    ) as response:
        assert response.status_code == 400
        assert "probability" in response.json()["error"]["error_data"]["details"]


@pytest.mark.parametrize(
    "rule",
    [
        {"colour": "red"},
        {"match": "("},
        {"probability": 1.5},
        {"probability": "half"},
        {"times": -1},
        {"times": True},
        {"code": "131000"},
        {"http_status": 700},
        {"http_status": 502},
        {"latency_ms": [300, 100]},
        {"latency_ms": -5},
        {"hang_s": -1},
        {"after_accept": True},
        {"after_accept": True, "code": 131000},
        {"code": 131000, "html": True},
        {"reset": True, "hang_s": 1},
        {"html": "yes"},
    ],
    ids=str,
)
def test_fault_rule_from_dict_refuses_unknown_keys_and_bad_values(rule: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        FaultRule.from_dict(rule)


def test_fault_rule_round_trips_through_its_json_form() -> None:
    rule = FaultRule(match=r"91\d+", probability=0.25, times=3, latency_ms=(10, 20), reset=True)

    assert FaultRule.from_dict(json.loads(json.dumps(rule.to_dict()))) == rule
    assert FaultRule().to_dict() == {}


def test_stop_is_idempotent_and_the_url_needs_a_started_emulator() -> None:
    emulator = CloudApiEmulator()
    with pytest.raises(RuntimeError):
        _ = emulator.url

    with emulator:
        assert emulator.url.startswith("http://127.0.0.1:")
    emulator.stop()


# -- as its own process -----------------------------------------------------------------------


def read_line(stream: IO[str], timeout_s: float) -> str:
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        if not selector.select(timeout_s):
            pytest.fail(f"no line within {timeout_s} s")
    return stream.readline()


def test_running_as_a_module_prints_the_url_serves_and_exits_0_on_sigterm(
    tmp_path: Path,
) -> None:
    rules_file = tmp_path / "rules.json"
    rules_file.write_text(json.dumps([{"match": r"1\d+", "code": 131026}]))
    ready_file = tmp_path / "ready.json"
    command = [
        sys.executable,
        "-m",
        "sandbox.cloudapi",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--token",
        TOKEN,
        "--seed",
        "1",
        "--rules-file",
        str(rules_file),
        "--ready-file",
        str(ready_file),
    ]
    with subprocess.Popen(
        command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        try:
            assert process.stdout is not None
            line = read_line(process.stdout, timeout_s=30)
            url = json.loads(line)["url"]
            assert url.startswith("http://127.0.0.1:")
            assert json.loads(ready_file.read_text()) == {"url": url}

            with requests.Session() as session:
                session.headers["Authorization"] = f"Bearer {TOKEN}"
                with session.post(url + SEND_PATH, json=template_body(), timeout=5) as accepted:
                    assert accepted.status_code == 200
                with session.post(
                    url + SEND_PATH, json=template_body(to="+15551234567"), timeout=5
                ) as refused:
                    assert refused.json()["error"]["code"] == 131026
            assert [m.to for m in SandboxControl(url).messages()] == ["919876543210"]

            process.send_signal(signal.SIGTERM)
            rest_of_stdout, stderr = process.communicate(timeout=5)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()

    assert process.returncode == 0
    assert rest_of_stdout == ""
    assert "Traceback" not in stderr
    assert TOKEN not in stderr
