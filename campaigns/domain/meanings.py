"""What an ``errorCode`` on a recipient means, in plain words for operators.

The codes are the engine's: ``META_<n>`` for a Cloud API error ``code`` (``shared/WHATSAPP.md``),
and ``META_CONNECT``, ``META_TIMEOUT``, ``META_NO_RESPONSE``, ``META_HTTP_<status>`` for what the
client saw when Meta gave no error code. What the engine *does* with each code is the verdict
table in ``campaigns.meta.errorcodes``; this is only what it means.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

_BAD_PAYLOAD = "Meta rejected a parameter or the payload of the message for this number"
_AUTH = "Authentication failed or the access token expired"
_PERMISSION = "The app lacks a permission needed to send"
_ACCOUNT = "The WhatsApp Business account is restricted or locked"
_QUALITY = "Blocked by Meta's spam or quality enforcement"
_TRANSIENT = "A transient error at Meta; the engine retried"
_RATE = "Meta's throughput limit was hit; the engine slowed down and retried"

META_MEANINGS: Final[Mapping[int, str]] = {
    0: _AUTH,
    190: _AUTH,
    3: _PERMISSION,
    10: _PERMISSION,
    **dict.fromkeys(range(200, 300), _PERMISSION),
    1: _TRANSIENT,
    2: _TRANSIENT,
    131000: _TRANSIENT,
    131016: "Meta's service was temporarily unavailable; the engine retried",
    131057: "The business account is in maintenance mode",
    133004: "The phone number's server was temporarily unavailable",
    4: _RATE,
    80007: _RATE,
    130429: _RATE,
    131056: "This number was messaged too often in a short time (pair rate limit)",
    368: _ACCOUNT,
    131031: _ACCOUNT,
    130497: "The business account may not message users in this country",
    131048: _QUALITY,
    131064: _QUALITY,
    132001: "The template does not exist or is not approved in this language",
    132015: "The template is paused for low quality",
    132016: "The template is disabled",
    131063: "Marketing messages are turned off for this account",
    100: _BAD_PAYLOAD,
    131008: "A required parameter of the message is missing",
    131009: "A parameter value of the message is not valid",
    132000: "The number of template parameters does not match the template",
    132005: "The translated template text is too long",
    132007: "The template text breaks Meta's formatting policy",
    132012: "A template parameter has the wrong format",
    131026: "Undeliverable: the number is not on WhatsApp or its app is too old",
    131047: "Outside the 24-hour customer service window",
    131049: "Meta held the message back: per-user marketing limit (do not retry within 24 h)",
    131050: "The user opted out of marketing messages (the number is now suppressed)",
    130472: "The user is part of a Meta experiment and was not messaged",
    130403: "The user is blocked by the business",
}

ENGINE_MEANINGS: Final[Mapping[str, str]] = {
    "SUPPRESSED": "The number opted out (it is on the suppression list): nothing was sent",
    "META_CONNECT": "Could not connect to the Cloud API (nothing was sent)",
    "META_TIMEOUT": "The Cloud API did not answer in time: the message may or may not have been "
    "sent",
    "META_NO_RESPONSE": "The connection broke after the request was sent: the message may or "
    "may not have been sent",
}

_META_CODE = re.compile(r"^META_(\d+)$")
_META_HTTP = re.compile(r"^META_HTTP_(\d{3})$")
HTTP_SERVER_ERROR = 500


def error_meaning(code: str | None) -> str | None:
    """The plain-words meaning of an ``errorCode`` (None for no code)."""
    if code is None or not code.strip():
        return None
    if code in ENGINE_MEANINGS:
        return ENGINE_MEANINGS[code]
    if found := _META_CODE.match(code):
        known = META_MEANINGS.get(int(found.group(1)))
        if known is not None:
            return known
    if found := _META_HTTP.match(code):
        status = int(found.group(1))
        if status >= HTTP_SERVER_ERROR:
            return f"The Cloud API answered HTTP {status} without an error code (server trouble)"
        return f"The Cloud API answered HTTP {status} without an error code"
    return f"Error {code}: not a code this engine knows; see Meta's error code reference"
