"""The error table of ``shared/WHATSAPP.md`` as test data, and Meta's answers built as
``requests.Response`` objects, so tests get their exceptions from the client's real translation
(``CloudApiSender._interpret``) rather than constructing them by hand."""

from __future__ import annotations

import json
from collections.abc import Mapping

import requests

from campaigns.domain.errors import SendError
from campaigns.meta.cloudapi import CloudApiSender
from campaigns.settings import load_settings
from sandbox.cloudapi import error_status

# | 130429, 4, 80007 | throughput / app / WABA rate limit | retry later, slow down |
THROTTLE_CODES = (130429, 4, 80007)
# | 131056 | pair limit | retry that recipient later (4^n s) |
PAIR_RATE_CODES = (131056,)
# | 1, 2, 131000, 131016, 131057, 133004, any HTTP 5xx, non-JSON body | retry with backoff |
TRANSIENT_CODES = (1, 2, 131000, 131016, 131057, 133004)
RETRYABLE_CODES = THROTTLE_CODES + PAIR_RATE_CODES + TRANSIENT_CODES

# Campaign-level rows: pause the campaign, with the short reason of campaign_pauses_total.
PAUSE_CODES: dict[int, str] = {
    0: "auth",  # authentication failed
    190: "auth",  # token expired
    3: "auth",  # permission problems
    10: "auth",
    **dict.fromkeys(range(200, 300), "auth"),
    368: "account",  # account restricted / locked
    131031: "account",
    130497: "account",
    131048: "quality",  # spam / template-classification enforcement
    131064: "quality",
    132001: "template",  # template missing / unapproved, paused, disabled; marketing off
    132015: "template",
    132016: "template",
    131063: "template",
}

# Recipient-level rows: fail the recipient (and refund its cap unit).
FAIL_CODES = (
    100, 131008, 131009, 132000, 132005, 132007, 132012,  # bad parameter / payload
    131026,  # undeliverable
    131047,  # outside the 24 h window
    131049,  # per-user marketing limit
    130472, 130403,  # experiment / blocked by the business
)  # fmt: skip
SUPPRESS_CODES = (131050,)  # opted out: fail and suppress the number

UNCLASSIFIED_CODE = 987_654  # in no row of the table


def error_body(code: int, message: str = "Injected by a test") -> bytes:
    """Meta's error JSON for ``code``."""
    error = {
        "message": f"(#{code}) {message}",
        "type": "OAuthException",
        "code": code,
        "error_data": {"messaging_product": "whatsapp", "details": message},
        "fbtrace_id": "AbCdEf123",
    }
    return json.dumps({"error": error}).encode()


def answer(status: int, body: bytes, headers: Mapping[str, str] | None = None) -> requests.Response:
    """A complete, already-read HTTP answer."""
    response = requests.Response()
    response.status_code = status
    response._content = body
    response.headers.update(headers or {})
    response.url = "https://graph.example/v25.0/1/messages"
    return response


def translate(response: requests.Response) -> SendError:
    """The exception ``CloudApiSender`` raises for ``response`` (which must not be a success)."""
    sender = CloudApiSender(load_settings(meta_access_token="t", meta_phone_number_id="1"))
    try:
        sender._interpret(response)
    except SendError as exc:
        return exc
    finally:
        sender.close()
    raise AssertionError(f"the client accepted {response.status_code} {response.content!r}")


def meta_error(
    code: int, http_status: int | None = None, retry_after: str | None = None
) -> SendError:
    """The client's exception for Meta's JSON error ``code`` (HTTP status as Meta pairs it)."""
    headers = {"Retry-After": retry_after} if retry_after is not None else None
    status = http_status if http_status is not None else error_status(code)
    return translate(answer(status, error_body(code), headers))


def non_json_error(status: int, body: bytes) -> SendError:
    """The client's exception for an HTML or empty error answer from Meta's edge."""
    content_type = "text/html; charset=utf-8" if body else ""
    return translate(answer(status, body, {"Content-Type": content_type} if body else None))


HTML_502 = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
HTML_503 = b"<html><body><h1>503 Service Unavailable</h1></body></html>"
