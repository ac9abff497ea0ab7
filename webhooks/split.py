"""From a verified webhook body to the SQS message bodies that carry it.

A body of at most ``MAX_SQS_MESSAGE_BYTES`` goes as it came (UTF-8 text, unchanged). A larger
one is split into one body per ``entry[].changes[]`` item, each re-serialised as
``{"object": <object>, "entry": [{"id": <entry id>, "changes": [<change>]}]}``; a single change
still too large is split again on its longest list (``statuses``, ``messages`` ...), each part
keeping the rest of the change's ``value`` (``metadata``, ``contacts``). The consumer parses all
of them the same way, and applying is idempotent, so a part queued twice (a retried body whose
first attempt queued some parts) changes nothing.

SQS carries only XML characters: a body holding one it refuses (U+FFFE, say: valid JSON) is
re-serialised with ``\\u`` escapes: the same JSON value, bytes SQS accepts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from typing import Any

from campaigns.settings import MAX_SQS_BATCH

# SQS: a message body, and the sum of the bodies in one SendMessageBatch, up to 256 KiB (the
# classic limit, which every SQS-compatible service and moto accept).
MAX_SQS_MESSAGE_BYTES = 256 * 1024
# SQS: the characters a message may hold (#x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD |
# #x10000-#x10FFFF).
_NOT_SQS_TEXT = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# Kept whole in every part of a split change: they describe the items, they are not items.
_KEPT_WHOLE = frozenset({"contacts", "metadata"})


class Unqueueable(Exception):
    """A signed body that cannot be carried: over the SQS limit and not splittable (no
    ``entry[].changes[]``, or one item alone over the limit)."""


def size_of(text: str) -> int:
    return len(text.encode("utf-8"))


def serialise(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if _NOT_SQS_TEXT.search(text):
        return json.dumps(value, ensure_ascii=True, separators=(",", ":"))
    return text


def queue_bodies(text: str, payload: dict[str, Any]) -> list[str]:
    """The SQS bodies for one verified body (``text``, parsed as ``payload``)."""
    if _NOT_SQS_TEXT.search(text):
        text = serialise(payload)
    if size_of(text) <= MAX_SQS_MESSAGE_BYTES:
        return [text]
    entries = payload.get("entry")
    if not isinstance(entries, list) or not entries:
        raise Unqueueable("over the SQS message limit without entry[] to split on")
    bodies: list[str] = []
    for entry in entries:
        changes = entry.get("changes") if isinstance(entry, dict) else None
        if not isinstance(changes, list):
            raise Unqueueable("over the SQS message limit with an entry without changes[]")
        for change in changes:
            bodies.extend(_fitting(payload.get("object"), entry.get("id"), change))
    return bodies


def _fitting(object_: Any, entry_id: Any, change: Any) -> Iterator[str]:
    body = serialise({"object": object_, "entry": [{"id": entry_id, "changes": [change]}]})
    if size_of(body) <= MAX_SQS_MESSAGE_BYTES:
        yield body
        return
    halves = _halves(change)
    if halves is None:
        raise Unqueueable("one change alone is over the SQS message limit")
    for half in halves:
        yield from _fitting(object_, entry_id, half)


def _halves(change: Any) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The change as two, its value's longest list cut in half; None if it has none to cut."""
    value = change.get("value") if isinstance(change, dict) else None
    if not isinstance(value, dict):
        return None
    lists = [
        (len(items), key)
        for key, items in value.items()
        if isinstance(items, list) and len(items) > 1 and key not in _KEPT_WHOLE
    ]
    if not lists:
        return None
    _, key = max(lists)
    items = value[key]
    middle = len(items) // 2
    first = {**change, "value": {**value, key: items[:middle]}}
    second = {**change, "value": {**value, key: items[middle:]}}
    return first, second


def batches(bodies: Sequence[str]) -> list[list[str]]:
    """The bodies in send order, grouped so that one SendMessageBatch carries each group:
    at most ``MAX_SQS_BATCH`` bodies, at most ``MAX_SQS_MESSAGE_BYTES`` together."""
    groups: list[list[str]] = []
    current: list[str] = []
    current_bytes = 0
    for body in bodies:
        size = size_of(body)
        if current and (
            len(current) == MAX_SQS_BATCH or current_bytes + size > MAX_SQS_MESSAGE_BYTES
        ):
            groups.append(current)
            current, current_bytes = [], 0
        current.append(body)
        current_bytes += size
    if current:
        groups.append(current)
    return groups
