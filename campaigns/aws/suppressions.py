"""The suppression list on the campaigns table: one ``SUPPRESSED#<digits>`` item per number,
holding the SET of reasons it is suppressed for (``META_131050``, ``user_preferences``,
``keyword``), so that lifting one reason (a ``user_preferences`` resume) leaves the others
standing.

The item: ``phone``, ``createdAt``, ``reasons`` (a string set) and ``reason`` (one string: the
latest reason added, kept for the code that read it before sets existed; always a member of
``reasons`` or absent). An item written before sets existed has only ``reason``: it reads as
the one-reason set ``{reason}`` and is folded into ``reasons`` by the next ``suppress``. Every
write is conditional, none is a read-modify-write:

- ``suppress``: ``ADD reasons`` on the condition the item is not an old one (an old one is
  first folded: ``ADD reasons {old, new}`` IF ``reason`` still is ``old``).
- ``unsuppress``: ``DELETE reasons`` (and ``REMOVE reason``) IF ``contains(reasons, r)``; when
  no reason is left, ``DeleteItem`` IF still none is (a ``suppress`` in between wins). A crash
  between the two leaves a reasonless item: the number stays suppressed (the safe side).
  An old item is deleted IF its ``reason`` still is the one lifted.

Any item present suppresses its number, whatever reasons it holds: populate's check
(``campaigns.aws.bulk``) and the send path's, ``find_suppressed(phones)`` (one consistent
``BatchGetItem`` of the batch's keys, its unprocessed keys tried again), read only the keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from campaigns.aws.dynamo import (
    MAX_BATCH_GET,
    Refused,
    Table,
    WriteToken,
    call,
    deserialize,
    text,
)
from campaigns.aws.items import SUPPRESSION_PREFIX, item_key, suppression_key
from campaigns.aws.retrying import unprocessed_batches
from campaigns.domain.clock import iso_utc
from campaigns.domain.errors import StoreUnavailable
from campaigns.ports import Clock

if TYPE_CHECKING:
    from tenacity import Retrying

# A suppress or unsuppress that keeps meeting a concurrent writer of the same number (each
# refusal means another write landed) gives up with StoreUnavailable after this many rounds.
MAX_SUPPRESSION_RACES = 8
_NAMES = {"#rs": "reasons", "#r": "reason"}


def reasons_of(item: dict[str, Any]) -> frozenset[str]:
    """The reasons a (deserialised) suppression item holds: ``reasons``, or an old item's
    single ``reason``."""
    held = item.get("reasons")
    if held:
        return frozenset(str(r) for r in held)
    reason = item.get("reason")
    return frozenset({str(reason)}) if reason else frozenset()


class Suppressions:
    """The suppression part of ``DynamoStore``."""

    def __init__(self, table: Table, clock: Clock, retry: Retrying) -> None:
        self._table = table
        self._clock = clock
        self._retry = retry
        self._unprocessed = unprocessed_batches(clock)

    def suppress(self, phone: str, reason: str) -> None:
        key = suppression_key(phone)
        values = {
            ":p": text(phone),
            ":r": text(reason),
            ":rs": {"SS": [reason]},
            ":now": text(iso_utc(self._clock.now())),
        }
        for _ in range(MAX_SUPPRESSION_RACES):
            try:
                self._table.update(
                    key,
                    "SET phone = :p, #r = :r, createdAt = if_not_exists(createdAt, :now) "
                    "ADD #rs :rs",
                    condition="attribute_exists(#rs) OR attribute_not_exists(#r)",
                    names=_NAMES,
                    values=values,
                    refused_item=True,
                    retry=self._retry,  # ADD of a set member: a retry of a landed try is a no-op
                )
                return
            except Refused as refused:
                old = refused.found.get("reason")
            if old is None:  # no longer an old item: add again
                continue
            try:  # an old single-reason item: fold its reason into the set with ours
                self._table.update(
                    key,
                    "SET #r = :r ADD #rs :both",
                    condition="attribute_not_exists(#rs) AND #r = :old",
                    names=_NAMES,
                    values={
                        ":r": text(reason),
                        ":both": {"SS": sorted({str(old), reason})},
                        ":old": text(str(old)),
                    },
                    retry=self._retry,
                )
                return
            except Refused:
                continue  # someone else folded or changed it: add to what is there now
        raise StoreUnavailable(f"DynamoDB suppression write lost {MAX_SUPPRESSION_RACES} races")

    def unsuppress(self, phone: str, reason: str) -> bool:
        """Lift ``reason`` only; the item goes when no reason is left. True if it was held."""
        key = suppression_key(phone)
        for _ in range(MAX_SUPPRESSION_RACES):
            token = WriteToken()
            try:
                written = self._table.update(
                    key,
                    f"SET {token.attribute} = :tok REMOVE #r DELETE #rs :rs",
                    condition="contains(#rs, :r)",
                    names=_NAMES,
                    values={":r": text(reason), ":rs": {"SS": [reason]}, ":tok": text(token.value)},
                    returns="ALL_NEW",
                    landed=token.landed,  # a retry whose first try landed, answer lost
                    retry=self._retry,
                )
            except Refused as refused:
                found = refused.found
                if not found or "reasons" in found or found.get("reason") != reason:
                    return False  # absent, or not held for this reason
                if self._delete_old(key, reason):
                    return True
                continue  # the old item was folded into a set meanwhile: lift from the set
            if not reasons_of(deserialize(written.item)):
                self._delete_if_empty(key)
            return True
        raise StoreUnavailable(f"DynamoDB suppression write lost {MAX_SUPPRESSION_RACES} races")

    def _delete_old(self, key: Any, reason: str) -> bool:
        try:
            self._table.delete(
                key,
                condition="attribute_not_exists(#rs) AND #r = :r",
                names=_NAMES,
                values={":r": text(reason)},
            )
        except Refused:
            return False
        return True

    def _delete_if_empty(self, key: Any) -> None:
        try:
            self._table.delete(
                key,
                condition="attribute_exists(PK) AND attribute_not_exists(#rs) "
                "AND attribute_not_exists(#r)",
                names=_NAMES,
            )
        except Refused:
            return  # a reason was added meanwhile (or the item is gone): it stands as it is

    def find_suppressed(self, phones: Sequence[str]) -> set[str]:
        """The numbers among ``phones`` on the suppression list: one consistent BatchGetItem
        per 100 numbers, its unprocessed keys tried again."""
        found: set[str] = set()
        unique = list(dict.fromkeys(phones))
        for start in range(0, len(unique), MAX_BATCH_GET):
            keys = [suppression_key(p) for p in unique[start : start + MAX_BATCH_GET]]
            pending: dict[str, Any] = {
                self._table.name: {
                    "Keys": keys,
                    "ConsistentRead": True,
                    "ProjectionExpression": "PK, SK",
                }
            }

            def get_pending() -> dict[str, Any]:
                nonlocal pending
                request = pending
                response: Any = call(
                    "BatchGetItem",
                    lambda: self._table.client.batch_get_item(RequestItems=request),
                )
                for item in response.get("Responses", {}).get(self._table.name, []):
                    found.add(item_key(item)[0].removeprefix(SUPPRESSION_PREFIX))
                pending = dict(response.get("UnprocessedKeys") or {})
                return pending

            if self._unprocessed(get_pending):
                raise StoreUnavailable("DynamoDB BatchGetItem left keys unprocessed")
        return found
