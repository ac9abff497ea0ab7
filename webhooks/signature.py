"""Meta's ``X-Hub-Signature-256``: ``sha256=<hex HMAC-SHA256 of the raw body>``, keyed with
the app secret. Checked on the bytes as received, before any parsing, in constant time (as
Stripe's and GitHub's webhook libraries do)."""

from __future__ import annotations

import hashlib
import hmac
from enum import StrEnum

HEADER = "X-Hub-Signature-256"
PREFIX = "sha256="
SHA256_HEX_LENGTH = 64
_HEX = frozenset("0123456789abcdefABCDEF")


class Verdict(StrEnum):
    """Why a signature was refused (a log field; never the header's value)."""

    VALID = "valid"
    MISSING = "missing"
    MALFORMED = "malformed"  # not "sha256=" and 64 hex digits
    MISMATCH = "mismatch"  # well formed, but not this body under this secret


def sign(secret: str, body: bytes) -> str:
    """The header value Meta would send (for the tests and the emulator)."""
    return PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str | None) -> Verdict:
    if not header:
        return Verdict.MISSING
    scheme, digest = header[: len(PREFIX)], header[len(PREFIX) :]
    if scheme.lower() != PREFIX or len(digest) != SHA256_HEX_LENGTH or not _HEX.issuperset(digest):
        return Verdict.MALFORMED
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if hmac.compare_digest(expected.encode(), digest.lower().encode()):
        return Verdict.VALID
    return Verdict.MISMATCH
