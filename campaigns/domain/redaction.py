"""Masking by value, which ``campaigns.logging`` applies to every field of every log event:
whatever field holds them (nested dicts and lists, free text, a formatted traceback), a wamid,
a BSUID or a phone number never reaches a log line whole.

A wamid is base64 of a structure that starts with the recipient's phone number (``wamid.HBgM``
+ ``OTE5ODc2NTQzMjEw`` …), so it is masked like an identifier: its tag and its last characters
(the message's own id) are kept to correlate, the part that encodes the number is not. A
BSUID (``IN.1502576394655843``) keeps its country and its last characters. A phone-like run of
7 to 15 digits is masked as ``campaigns.domain.phones.mask`` masks a number (``9198******10``)
unless it is part of a larger token: a campaign id (``cmp_<uuid>``), a uuid's segment, an error
code (``META_131026``), a decimal (``1767225600.5``) or a word stay as they are. Numbers
(counts, durations, epoch seconds as ints) and booleans are never touched; an object that is
neither (an exception passed as a value, a dataclass) is logged as its masked ``str``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from campaigns.domain.phones import mask

MASK: Final = "…"
KEPT_ID_CHARS: Final = 6  # the end of an identifier kept to correlate (as mask_id keeps)
# ``wamid.`` + base64 (standard or url-safe alphabet), or the bare base64 of one (``HBg…``).
WAMID: Final = re.compile(
    r"(?P<tag>wamid\.)(?P<body>[A-Za-z0-9+/_-]+={0,2})"
    r"|(?<![A-Za-z0-9+/=_-])(?P<bare>HBg[A-Za-z0-9+/_-]{16,}={0,2})"
)
# A business-scoped user id: two capitals, a period, up to 128 alphanumerics (WHATSAPP.md).
BSUID: Final = re.compile(r"(?<![\w.])(?P<country>[A-Z]{2}\.)(?P<body>[A-Za-z0-9]{6,128})(?!\w)")
# 7..15 digits (E.164's longest), an optional '+', not inside a word, an id or a decimal.
PHONE: Final = re.compile(r"(?<![\w.+/-])\+?\d{7,15}(?![\w/+-]|\.\d)")


def _tail(value: str) -> str:
    return MASK + value[-KEPT_ID_CHARS:] if len(value) > KEPT_ID_CHARS + 2 else MASK


def _wamid(found: re.Match[str]) -> str:
    if found.group("tag"):
        return found.group("tag") + _tail(found.group("body"))
    return _tail(found.group("bare"))


def _bsuid(found: re.Match[str]) -> str:
    return found.group("country") + _tail(found.group("body"))


def _phone(found: re.Match[str]) -> str:
    number = found.group()
    return ("+" if number.startswith("+") else "") + mask(number)


def mask_string(text: str) -> str:
    """``text`` with every wamid, BSUID and phone-like number in it masked."""
    if not text:
        return text
    text = WAMID.sub(_wamid, text)
    text = BSUID.sub(_bsuid, text)
    return PHONE.sub(_phone, text)


def mask_value(value: Any) -> Any:
    """One field of a log event, masked all the way down (keys of nested dicts too)."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return mask_string(value)
    if isinstance(value, Mapping):
        return {mask_value(key): mask_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [mask_value(item) for item in value]
    return mask_string(str(value))
