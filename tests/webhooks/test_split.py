"""A signed body over SQS's 256 KiB goes as one message per ``entry[].changes[]`` item (a
change still too large, split on its longest list), each a valid payload, every status in
exactly one of them; the groups fit SendMessageBatch."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from campaigns.memory import MemoryQueue
from tests.webhooks.support import (
    PATH,
    TestClient,
    encoded,
    settings,
    signed,
    status,
    statuses_payload,
)
from webhooks.app import create_app
from webhooks.split import MAX_SQS_MESSAGE_BYTES, Unqueueable, batches, queue_bodies, size_of


def _ids(payloads: list[dict[str, Any]]) -> Counter[str]:
    return Counter(
        item["id"]
        for payload in payloads
        for entry in payload["entry"]
        for change in entry["changes"]
        for item in change["value"]["statuses"]
    )


def _large_payload() -> dict[str, Any]:
    """Two entries of three changes, 40 statuses of ~2 KiB each per change: ~480 KiB."""
    changes = [[status(c * 100 + n, padding=2000) for n in range(40)] for c in range(3)]
    payload = statuses_payload(*changes, entries=2)
    for e, entry in enumerate(payload["entry"]):  # distinct ids across entries
        for change in entry["changes"]:
            for item in change["value"]["statuses"]:
                item["id"] = f"{item['id']}-e{e}"
    return payload


def test_a_body_over_256_kib_is_queued_as_one_valid_payload_per_change() -> None:
    queue = MemoryQueue()
    payload = _large_payload()
    body = encoded(payload)
    assert len(body) > MAX_SQS_MESSAGE_BYTES

    with TestClient(create_app(settings(), lambda: queue)) as http:
        answer = http.post(PATH, content=body, headers=signed(body))

    assert answer.status_code == 200
    parts = [json.loads(text) for text in queue.bodies()]
    assert len(parts) == 6
    for part in parts:
        assert size_of(json.dumps(part)) <= MAX_SQS_MESSAGE_BYTES
        assert part["object"] == "whatsapp_business_account"
        assert len(part["entry"]) == 1
        assert set(part["entry"][0]) == {"id", "changes"}
        assert len(part["entry"][0]["changes"]) == 1
        assert part["entry"][0]["changes"][0]["field"] == "messages"
    sent = _ids(parts)
    assert sent == _ids([payload])
    assert set(sent.values()) == {1}
    assert Counter(p["entry"][0]["id"] for p in parts) == {"WABA-0": 3, "WABA-1": 3}


def test_a_single_change_over_the_limit_is_split_on_its_statuses_keeping_its_metadata() -> None:
    payload = statuses_payload([status(n, padding=2000) for n in range(300)])  # ~650 KiB

    bodies = queue_bodies(json.dumps(payload), payload)

    parts = [json.loads(b) for b in bodies]
    assert len(parts) > 1
    assert all(size_of(b) <= MAX_SQS_MESSAGE_BYTES for b in bodies)
    assert _ids(parts) == _ids([payload])
    assert set(_ids(parts).values()) == {1}
    for part in parts:
        value = part["entry"][0]["changes"][0]["value"]
        assert value["metadata"] == {"phone_number_id": "106540352242922"}


def test_a_body_at_the_limit_goes_whole_and_unchanged() -> None:
    payload = statuses_payload([status(1)])
    text = json.dumps(payload, indent=3)

    assert queue_bodies(text, payload) == [text]


def test_a_body_sqs_cannot_carry_is_escaped_to_the_same_json() -> None:
    text = '{"object": "x", "entry": [], "note": "\ufffe"}'
    payload = json.loads(text)

    [body] = queue_bodies(text, payload)

    assert "\ufffe" not in body
    assert json.loads(body) == payload


@pytest.mark.parametrize(
    "payload",
    [
        {"object": "x", "blob": "y" * (MAX_SQS_MESSAGE_BYTES + 1)},
        {"object": "x", "entry": [{"id": "1", "changes": [{"value": {"s": "y" * 300_000}}]}]},
    ],
)
def test_an_unsplittable_body_over_the_limit_is_refused(payload: dict[str, Any]) -> None:
    with pytest.raises(Unqueueable):
        queue_bodies(json.dumps(payload), payload)


def test_an_unsplittable_body_is_413_too_large_and_not_queued() -> None:
    queue = MemoryQueue()
    body = encoded({"object": "x", "blob": "y" * (MAX_SQS_MESSAGE_BYTES + 1)})

    with TestClient(create_app(settings(), lambda: queue)) as http:
        answer = http.post(PATH, content=body, headers=signed(body))

    assert answer.status_code == 413
    assert queue.bodies() == []


def test_batches_hold_at_most_ten_bodies_and_256_kib_together() -> None:
    bodies = ["a" * 100_000] * 5 + ["b"] * 25

    groups = batches(bodies)

    assert [body for group in groups for body in group] == bodies
    for group in groups:
        assert len(group) <= 10
        assert sum(size_of(b) for b in group) <= MAX_SQS_MESSAGE_BYTES
