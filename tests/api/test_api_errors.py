"""Every failure is one line in ``{"success": false, "error"}`` with its status; never a
traceback, not even for a bug (500, logged on the server)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from python_multipart.multipart import MultipartParser
from structlog.testing import capture_logs

from api.limits import JSON_BODY_LIMIT_BYTES
from campaigns.domain.errors import QueueUnavailable, StoreUnavailable
from tests.api.support import CREATE, Api, build_api, csv_of, error_of
from tests.unit.producer_support import national

LIMIT_BYTES = 2048


@pytest.fixture
def small() -> Iterator[Api]:
    """An API taking uploads of at most ``LIMIT_BYTES`` (the whole multipart body)."""
    running = build_api(api_max_upload_bytes=LIMIT_BYTES)
    with running.client:
        yield running


def multipart(data: bytes, boundary: str = "b0undary") -> tuple[bytes, dict[str, str]]:
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="r.csv"\r\n'
            f"Content-Type: text/csv\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def test_malformed_json_is_400(api: Api) -> None:
    headers = {"Content-Type": "application/json"}
    for body in (b"{bad", b"", b'{"name": '):
        assert api.refused("POST", "/api/campaigns/create", 400, content=body, headers=headers) in (
            "malformed JSON body",
            "the body must be a JSON object",
        )
    for body in (b"[]", b'"text"', b"12"):
        assert api.refused("POST", "/api/campaigns/create", 400, content=body, headers=headers) == (
            "the body must be a JSON object"
        )


def test_a_field_of_the_wrong_type_is_422_naming_it_without_echoing_it(api: Api) -> None:
    error = api.refused("POST", "/api/campaigns/create", 422, json=CREATE | {"name": 12345})
    assert error.startswith("name: ")
    assert "12345" not in error


def test_an_unknown_route_is_404_and_a_wrong_method_405(api: Api) -> None:
    assert api.refused("GET", "/api/nothing", 404) == "not found"
    assert api.refused("GET", "/api/campaigns/create/more", 404) == "not found"
    campaign_id = api.create()
    response = api.call("DELETE", f"/api/campaigns/{campaign_id}")
    assert response.status_code == 405
    assert error_of(response) == "method not allowed"
    assert response.headers["allow"] == "GET"


def test_an_upload_declared_too_large_is_413_before_a_byte_is_read(small: Api) -> None:
    campaign_id = small.create()
    body, headers = multipart(csv_of(national(400)))
    assert len(body) > LIMIT_BYTES
    read: list[bytes] = []

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 256):
            read.append(body[start : start + 256])
            yield body[start : start + 256]

    headers["Content-Length"] = str(len(body))
    error = small.refused(
        "POST", f"/api/campaigns/{campaign_id}/populate", 413, content=chunks(), headers=headers
    )
    assert error == f"upload too large: the limit is {LIMIT_BYTES} bytes"
    assert read == []  # refused on the header
    assert not list(small.world.store.iter_recipients(campaign_id))


def test_a_chunked_upload_is_413_as_soon_as_it_crosses_the_limit(
    small: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    campaign_id = small.create()
    body, headers = multipart(csv_of(national(4000)))
    parsed: list[int] = []
    write = MultipartParser.write

    def counting(parser: MultipartParser, data: bytes) -> int:
        parsed.append(len(data))
        return write(parser, data)

    monkeypatch.setattr(MultipartParser, "write", counting)

    def chunks() -> Iterator[bytes]:  # no Content-Length: Transfer-Encoding: chunked
        for start in range(0, len(body), 512):
            yield body[start : start + 512]

    response = small.call(
        "POST", f"/api/campaigns/{campaign_id}/populate", content=chunks(), headers=headers
    )
    assert response.status_code == 413
    assert error_of(response) == f"upload too large: the limit is {LIMIT_BYTES} bytes"
    assert not list(small.world.store.iter_recipients(campaign_id))
    assert small.campaign(campaign_id)["totalRecipients"] == 0
    assert len(body) > 10 * LIMIT_BYTES
    assert sum(parsed) <= LIMIT_BYTES  # the body past the limit was never parsed or stored


def test_an_upload_within_the_limit_streams_through(small: Api) -> None:
    campaign_id = small.create()
    body, headers = multipart(csv_of(national(20)))
    assert len(body) < LIMIT_BYTES
    pieces = (body[i : i + 7] for i in range(0, len(body), 7))  # splits every boundary
    response = small.call(
        "POST", f"/api/campaigns/{campaign_id}/populate", content=pieces, headers=headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["inserted"] == 20


@pytest.mark.parametrize(
    "body",
    [b"--b0undary\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n9876500000\r\n",
     b"not multipart at all"],
    ids=["truncated", "garbage"],
)  # fmt: skip
def test_a_malformed_or_truncated_multipart_body_is_400(api: Api, body: bytes) -> None:
    campaign_id = api.create()
    headers = {"Content-Type": "multipart/form-data; boundary=b0undary"}
    error = api.refused(
        "POST", f"/api/campaigns/{campaign_id}/populate", 400, content=body, headers=headers
    )
    assert "multipart" in error
    assert not list(api.world.store.iter_recipients(campaign_id))


def _raise(exc: Exception) -> Any:
    def fail(*_: Any, **__: Any) -> Any:
        raise exc

    return fail


@pytest.mark.parametrize(
    "exc", [StoreUnavailable("DynamoDB: ThrottlingException"), QueueUnavailable("SQS down")]
)
def test_aws_unreachable_is_503_with_the_core_s_line(
    api: Api, monkeypatch: pytest.MonkeyPatch, exc: Exception
) -> None:
    campaign_id = api.create()
    monkeypatch.setattr(api.world.store, "require_campaign", _raise(exc))
    assert api.refused("GET", f"/api/campaigns/{campaign_id}", 503) == str(exc)


def test_a_bug_is_a_generic_500_logged_with_its_traceback_not_returned(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    campaign_id = api.create()
    monkeypatch.setattr(
        api.world.store, "require_campaign", _raise(RuntimeError("secret internals"))
    )
    with capture_logs() as logs:
        response = api.call("POST", f"/api/campaigns/{campaign_id}/execute-batch")
    assert response.status_code == 500
    assert error_of(response) == "internal error (logged on the server)"
    assert "secret internals" not in response.text
    errors = [log for log in logs if log["event"] == "api.error"]
    assert len(errors) == 1
    assert errors[0]["exc_info"] is True
    audit = [log for log in logs if log["event"] == "api.audit"]
    assert audit[0]["status"] == 500
    assert audit[0]["outcome"] == "failed"


def test_execute_batch_without_cloud_api_credentials_is_503_naming_them() -> None:
    running = build_api(meta_access_token="")
    campaign_id = running.populated()
    running.control(campaign_id, "start")
    assert running.refused("POST", f"/api/campaigns/{campaign_id}/execute-batch", 503) == (
        "invalid META_ACCESS_TOKEN / META_PHONE_NUMBER_ID: must be set"
    )


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_an_oversized_json_body_is_413_before_it_is_read(api: Api, chunked: bool) -> None:
    body = json.dumps(CREATE | {"name": "x" * (JSON_BODY_LIMIT_BYTES + 1)}).encode()
    content: bytes | Iterator[bytes] = (
        iter([body[: len(body) // 2], body[len(body) // 2 :]]) if chunked else body
    )
    response = api.call(
        "POST",
        "/api/campaigns/create",
        content=content,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert error_of(response) == f"body too large: the limit is {JSON_BODY_LIMIT_BYTES} bytes"
    assert not api.world.store.list_campaigns()
