"""The receiver over HTTP (TestClient) on an in-memory receipts queue: the signature checked
before anything else, the handshake, the limits, and a 2xx only once the queue took the body."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator

import pytest
from structlog.testing import capture_logs

from campaigns.memory import MemoryQueue
from tests.webhooks.support import (
    APP_SECRET,
    PATH,
    VERIFY_TOKEN,
    DownQueue,
    TestClient,
    encoded,
    settings,
    signed,
    status,
    statuses_payload,
)
from webhooks.app import create_app
from webhooks.metrics import WebhookMetrics

BODY = encoded(statuses_payload([status(1)]))


def requests_with(metrics: WebhookMetrics, outcome: str) -> float:
    value = metrics.registry.get_sample_value(
        "campaign_webhook_requests_total", {"outcome": outcome}
    )
    return value or 0.0


def test_a_signed_body_is_queued_unchanged_and_answered_200(
    client: TestClient, queue: MemoryQueue, metrics: WebhookMetrics
) -> None:
    body = b'{"object": "whatsapp_business_account",  "entry": []}'  # spacing kept as sent

    answer = client.post(PATH, content=body, headers=signed(body))

    assert answer.status_code == 200
    assert answer.json() == {"success": True}
    assert queue.bodies() == [body.decode()]
    assert requests_with(metrics, "ok") == 1
    seconds = metrics.registry.get_sample_value(
        "campaign_webhook_request_seconds_count", {"outcome": "ok"}
    )
    assert seconds == 1


def _bad_signatures() -> Iterator[tuple[str, dict[str, str]]]:
    good = hmac.new(APP_SECRET.encode(), BODY, hashlib.sha256).hexdigest()
    yield "missing", {}  # the test ids are these names
    yield "empty", {"X-Hub-Signature-256": ""}
    yield "sha1 prefix", {"X-Hub-Signature-256": "sha1=" + good}
    yield "no prefix", {"X-Hub-Signature-256": good}
    yield "wrong key", signed(BODY, secret="another-apps-secret")
    yield "tampered body", signed(BODY.replace(b"delivered", b"read"))
    yield "non-hex", {"X-Hub-Signature-256": "sha256=" + "z" * 64}
    yield "short", {"X-Hub-Signature-256": "sha256=" + good[:-2]}
    yield "long", {"X-Hub-Signature-256": "sha256=" + good + "00"}


@pytest.mark.parametrize(("case", "headers"), list(_bad_signatures()))
def test_a_bad_signature_is_401_with_nothing_queued_one_line_and_no_body_logged(
    client: TestClient,
    queue: MemoryQueue,
    metrics: WebhookMetrics,
    case: str,
    headers: dict[str, str],
) -> None:
    with capture_logs() as logs:
        answer = client.post(PATH, content=BODY, headers=headers)

    assert answer.status_code == 401, case
    assert answer.json()["success"] is False
    assert queue.bodies() == []
    assert requests_with(metrics, "bad_signature") == 1
    assert requests_with(metrics, "ok") == 0
    assert [line["event"] for line in logs] == ["webhook.bad_signature"]
    logged = json.dumps(logs)
    assert "wamid" not in logged
    assert "919876543210" not in logged
    assert APP_SECRET not in logged
    for value in headers.values():
        assert not value or value not in logged


def test_a_valid_signature_in_upper_case_hex_is_accepted(
    client: TestClient, queue: MemoryQueue
) -> None:
    header = signed(BODY)["X-Hub-Signature-256"]
    upper = "sha256=" + header.removeprefix("sha256=").upper()

    answer = client.post(PATH, content=BODY, headers={"X-Hub-Signature-256": upper})

    assert answer.status_code == 200
    assert len(queue.bodies()) == 1


@pytest.mark.parametrize(
    "body", [b"{not json", b'{"object": "whatsapp', b"\xff\xfe{}", b"[1, 2]", b'"text"', b""]
)
def test_malformed_json_with_a_good_signature_is_400_and_never_queued(
    client: TestClient, queue: MemoryQueue, metrics: WebhookMetrics, body: bytes
) -> None:
    with capture_logs() as logs:
        answer = client.post(PATH, content=body, headers=signed(body))

    assert answer.status_code == 400
    assert answer.json()["success"] is False
    assert queue.bodies() == []
    assert requests_with(metrics, "malformed") == 1
    assert [line["event"] for line in logs] == ["webhook.malformed"]


def test_a_declared_length_over_the_limit_is_413_before_reading(
    queue: MemoryQueue, metrics: WebhookMetrics
) -> None:
    app = create_app(settings(webhook_max_body_bytes=2048), lambda: queue, metrics)
    body = encoded(statuses_payload([status(n) for n in range(30)]))
    assert len(body) > 2048

    with TestClient(app) as http:
        answer = http.post(PATH, content=body, headers=signed(body))

    assert answer.status_code == 413
    assert queue.bodies() == []
    assert requests_with(metrics, "too_large") == 1


def test_a_chunked_body_crossing_the_limit_is_413(
    queue: MemoryQueue, metrics: WebhookMetrics
) -> None:
    app = create_app(settings(webhook_max_body_bytes=2048), lambda: queue, metrics)
    body = encoded(statuses_payload([status(n) for n in range(30)]))

    def chunks() -> Iterator[bytes]:  # no Content-Length: Transfer-Encoding: chunked
        for start in range(0, len(body), 500):
            yield body[start : start + 500]

    with TestClient(app) as http:
        answer = http.post(PATH, content=chunks(), headers=signed(body))

    assert answer.status_code == 413
    assert queue.bodies() == []
    assert requests_with(metrics, "too_large") == 1


def test_a_chunked_body_under_the_limit_is_read_whole_and_queued(
    client: TestClient, queue: MemoryQueue
) -> None:
    def chunks() -> Iterator[bytes]:
        yield BODY[:10]
        yield BODY[10:]

    answer = client.post(PATH, content=chunks(), headers=signed(BODY))

    assert answer.status_code == 200
    assert queue.bodies() == [BODY.decode()]


def test_queue_down_is_503_so_meta_retries_and_nothing_is_claimed(
    metrics: WebhookMetrics,
) -> None:
    down = DownQueue()
    with TestClient(create_app(settings(), lambda: down, metrics)) as http, capture_logs() as logs:
        answer = http.post(PATH, content=BODY, headers=signed(BODY))

    assert answer.status_code == 503
    assert answer.json() == {"success": False, "error": "the receipts queue is unavailable"}
    assert len(down.calls) == 1
    assert requests_with(metrics, "error") == 1
    assert requests_with(metrics, "ok") == 0
    assert metrics.registry.get_sample_value("campaign_webhook_queued_messages_total") == 0
    assert [line["event"] for line in logs] == ["webhook.queue_failed"]


def test_a_queue_missing_at_start_is_503_then_found_later(metrics: WebhookMetrics) -> None:
    from campaigns.domain.errors import QueueUnavailable

    found = MemoryQueue()
    attempts: list[int] = []

    def factory() -> MemoryQueue:
        attempts.append(1)
        if len(attempts) == 1:
            raise QueueUnavailable("SQS GetQueueUrl(campaign-receipts) failed: NonExistentQueue")
        return found

    with TestClient(create_app(settings(), factory, metrics)) as http:
        first = http.post(PATH, content=BODY, headers=signed(BODY))
        second = http.post(PATH, content=BODY, headers=signed(BODY))

    assert (first.status_code, second.status_code) == (503, 200)
    assert found.bodies() == [BODY.decode()]


def test_the_handshake_echoes_the_challenge_as_text_when_the_token_matches(
    client: TestClient,
) -> None:
    answer = client.get(
        PATH,
        params={
            "hub.mode": "subscribe",
            "hub.verify_token": VERIFY_TOKEN,
            "hub.challenge": "1158201444",
        },
    )

    assert answer.status_code == 200
    assert answer.text == "1158201444"
    assert answer.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize(
    "params",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "42"},
        {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN[:-1], "hub.challenge": "42"},
        {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "42"},
        {"hub.verify_token": VERIFY_TOKEN, "hub.challenge": "42"},
        {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN},
        {"hub.mode": "subscribe", "hub.challenge": "42"},
        {},
    ],
)
def test_any_other_handshake_is_403_and_never_logs_the_token(
    client: TestClient, params: dict[str, str]
) -> None:
    with capture_logs() as logs:
        answer = client.get(PATH, params=params)

    assert answer.status_code == 403
    assert answer.json() == {"success": False, "error": "verification failed"}
    assert "42" not in answer.text
    assert VERIFY_TOKEN not in json.dumps(logs)
    assert [line["event"] for line in logs] == ["webhook.handshake_refused"]


def test_healthz_answers_without_the_queue(metrics: WebhookMetrics) -> None:
    with TestClient(create_app(settings(), DownQueue, metrics)) as http:
        assert http.get("/healthz").json() == {"status": "ok"}


def test_readyz_follows_the_queue(queue: MemoryQueue, metrics: WebhookMetrics) -> None:
    with TestClient(create_app(settings(), lambda: queue, metrics)) as up:
        assert up.get("/readyz").status_code == 200
    assert metrics.registry.get_sample_value("campaign_webhook_queue_ready") == 1
    down_metrics = WebhookMetrics()
    with TestClient(create_app(settings(), DownQueue, down_metrics)) as down:
        answer = down.get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["success"] is False
    assert down_metrics.registry.get_sample_value("campaign_webhook_queue_ready") == 0


def test_metrics_are_not_served_on_the_public_app(client: TestClient) -> None:
    answer = client.get("/metrics")

    assert answer.status_code == 404
    assert answer.json() == {"success": False, "error": "not found"}


def test_the_metrics_app_counts_every_outcome(
    client: TestClient, metrics_client: TestClient
) -> None:
    client.post(PATH, content=BODY, headers=signed(BODY))
    client.post(PATH, content=BODY)
    client.post(PATH, content=b"{", headers=signed(b"{"))

    text = metrics_client.get("/metrics").text

    assert 'campaign_webhook_requests_total{outcome="ok"} 1.0' in text
    assert 'campaign_webhook_requests_total{outcome="bad_signature"} 1.0' in text
    assert 'campaign_webhook_requests_total{outcome="malformed"} 1.0' in text
    assert 'campaign_webhook_requests_total{outcome="too_large"} 0.0' in text
    assert 'campaign_webhook_requests_total{outcome="error"} 0.0' in text
    assert "campaign_webhook_request_seconds_bucket" in text


def test_the_receiver_refuses_to_exist_without_its_secrets(queue: MemoryQueue) -> None:
    from campaigns.domain.errors import ConfigError

    with pytest.raises(ConfigError, match="META_APP_SECRET"):
        create_app(settings(meta_app_secret=""), lambda: queue)
    with pytest.raises(ConfigError, match="META_WEBHOOK_VERIFY_TOKEN"):
        create_app(settings(meta_webhook_verify_token=""), lambda: queue)


def test_an_unknown_path_or_method_is_a_json_error(client: TestClient) -> None:
    assert client.get("/nope").json() == {"success": False, "error": "not found"}
    answer = client.put(PATH, content=b"{}")
    assert (answer.status_code, answer.json()["error"]) == (405, "method not allowed")
