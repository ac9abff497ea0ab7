"""Opaque page cursors: URL-safe base64 of a small JSON list, checked on the way back in."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from campaigns.domain.errors import InvalidInput

MAX_CURSOR_CHARS = 512  # a cursor this long was not written by us


def encode_cursor(*values: str) -> str:
    raw = json.dumps(list(values), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, arity: int) -> tuple[str, ...]:
    """The values ``encode_cursor`` wrote, or ``InvalidInput("invalid cursor")``."""
    try:
        if len(cursor) > MAX_CURSOR_CHARS:
            raise ValueError(cursor)
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values: Any = json.loads(raw)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput("invalid cursor") from None
    if (
        not isinstance(values, list)
        or len(values) != arity
        or not all(isinstance(v, str) for v in values)
    ):
        raise InvalidInput("invalid cursor")
    return tuple(values)
