"""A campaign's counters: ``totalRecipients`` and the sent/failed/unknown counts.

The counts are ``ADD``ed by the batch threads. With a ``slot`` (one per batch thread) an ADD is
idempotent: it also writes a fresh token into that slot's ``countToken_<slot>`` attribute and is
conditional on the slot not holding it yet, so a retry whose first try landed (answer lost) is
recognised instead of counted twice. With ``COUNTER_SHARDS`` > 1 the ADDs go to ``COUNTER#<k>``
items of the campaign's partition (k from the slot), summed on read, so no single item takes
every write.
"""

from __future__ import annotations

import uuid
import zlib
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from campaigns.aws.dynamo import Item, Refused, Table, WriteToken, deserialize, number, text
from campaigns.aws.items import (
    METADATA,
    SHARD_PREFIX,
    campaign_attribute,
    campaign_from_item,
    campaign_key,
    campaign_partition,
    item_key,
    shard_key,
    tallies_of,
)
from campaigns.domain.errors import CampaignNotFound
from campaigns.domain.models import Campaign
from campaigns.ports import Clock

if TYPE_CHECKING:
    from tenacity import Retrying

COUNT_TOKEN_PREFIX = "countToken_"  # noqa: S105 (an attribute name, not a secret)
# Campaign field -> attribute of the counts the batch threads ADD (and shards hold).
_COUNTS = {
    field_name: campaign_attribute(field_name)
    for field_name in ("sent_count", "failed_count", "unknown_count", "held_count")
}
# Every count a shard may hold: the batch threads' and the status webhooks'
# (campaigns.aws.deliveries), all summed with the metadata item's on read.
SHARDED_COUNTS = _COUNTS | {
    field_name: campaign_attribute(field_name)
    for field_name in ("delivered_count", "read_count", "delivery_failed_count", "held_count")
}


@dataclass(frozen=True)
class Partition:
    """A campaign's partition as one Query reads it: its metadata item and its counter shards."""

    meta: Item | None
    shards: list[Item]

    def campaign(self) -> Campaign | None:
        """The campaign with its counts summed over its shards (None when it does not exist)."""
        return (
            None if self.meta is None else with_shards(campaign_from_item(self.meta), self.shards)
        )


def read_partition(table: Table, campaign_id: str) -> Partition:
    """The metadata item and the ``COUNTER#<k>`` items, which share the partition: one Query."""
    response = table.query(
        KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": campaign_partition(campaign_id)},
        ConsistentRead=True,
    )
    meta: Item | None = None
    shards: list[Item] = []
    for item in response.get("Items", []):
        sort_key = item_key(item)[1]
        if sort_key == METADATA:
            meta = dict(item)
        elif sort_key.startswith(SHARD_PREFIX):
            shards.append(dict(item))
    return Partition(meta, shards)


def with_shards(campaign: Campaign, shards: list[Item]) -> Campaign:
    if not shards:
        return campaign
    totals = dict.fromkeys(SHARDED_COUNTS, 0)
    tallies = dict(campaign.tallies)
    for item in shards:
        data = deserialize(item)
        for field_name, attribute in SHARDED_COUNTS.items():
            totals[field_name] += int(data.get(attribute, 0))
        for name, count in tallies_of(data).items():
            tallies[name] = tallies.get(name, 0) + count
    return replace(
        campaign,
        tallies={name: count for name, count in tallies.items() if count},
        **{
            field_name: getattr(campaign, field_name) + total
            for field_name, total in totals.items()
        },
    )


def shard_of(slot: str | None, shards: int) -> int:
    return zlib.crc32((slot or "").encode()) % shards


class Counters:
    """The counter writes of ``campaigns.ports.Store`` on the campaigns table."""

    def __init__(self, table: Table, clock: Clock, retry: Retrying, shards: int) -> None:
        self._table = table
        self._clock = clock
        self._retry = retry
        self._shards = shards

    def add_counts(
        self,
        campaign_id: str,
        *,
        sent: int = 0,
        failed: int = 0,
        unknown: int = 0,
        held: int = 0,
        slot: str | None = None,
    ) -> Campaign | None:
        """``ADD`` to the campaign counts; returns the campaign as it now is (None when the
        counts are sharded: one shard alone does not tell the campaign's state)."""
        deltas = {
            "sent_count": sent,
            "failed_count": failed,
            "unknown_count": unknown,
            "held_count": held,
        }
        adds = [(_COUNTS[field_name], delta) for field_name, delta in deltas.items() if delta]
        if not adds:
            return read_partition(self._table, campaign_id).campaign()
        sharded = self._shards > 1
        key = campaign_key(campaign_id)
        conditions = ["attribute_exists(PK)"]
        if sharded:
            key = shard_key(campaign_id, shard_of(slot, self._shards))
            conditions = []  # a shard item is created by its first ADD
        expression = "ADD " + ", ".join(f"{name} :{name}" for name, _ in adds)
        values: dict[str, Any] = {f":{name}": number(delta) for name, delta in adds}
        names: dict[str, str] = {}
        token: WriteToken | None = None
        if slot is not None:
            # The time leads the token so that prune_count_tokens can tell an idle slot.
            value = f"{int(self._clock.now())}:{uuid.uuid4().hex[:12]}"
            token = WriteToken(value, attribute=COUNT_TOKEN_PREFIX + slot)
            names["#slot"] = token.attribute
            values[":tok"] = text(token.value)
            expression += " SET #slot = :tok"
            conditions.append("(attribute_not_exists(#slot) OR #slot <> :tok)")
        try:
            written = self._table.update(
                key,
                expression,
                condition=" AND ".join(conditions) if conditions else None,
                names=names,
                values=values,
                returns="NONE" if sharded else "ALL_NEW",
                refused_item=True,
                landed=token.landed if token else None,
                retry=self._retry,
            )
        except Refused:
            return None  # the campaign does not exist
        # A replayed write is found with its ADD counted once: the item as it is now.
        return None if sharded else campaign_from_item(written.item)

    def add_total(self, campaign_id: str, inserted: int) -> None:
        try:
            self._table.update(
                campaign_key(campaign_id),
                f"ADD {campaign_attribute('total_recipients')} :n",
                condition="attribute_exists(PK)",
                values={":n": number(inserted)},
                retry=self._retry,
            )
        except Refused:
            raise CampaignNotFound(campaign_id) from None

    def set_counter(self, campaign_id: str, name: str, expected: int | None, value: int) -> bool:
        """Make one counter's total (metadata + shards) ``value`` if it still is ``expected``;
        False if it moved. The correction goes to the metadata item, conditional on the value
        read there."""
        partition = read_partition(self._table, campaign_id)
        if partition.meta is None:
            return False
        shard_sum = sum(int(deserialize(item).get(name, 0)) for item in partition.shards)
        raw = deserialize(partition.meta).get(name)
        if expected is None and raw is not None:
            return False  # "absent" was expected but it is there
        if (raw or 0) + shard_sum != (expected or 0):
            return False
        condition = "attribute_not_exists(#c)" if raw is None else "#c = :old"
        values: dict[str, Any] = {":new": number(value - shard_sum)}
        if raw is not None:
            values[":old"] = number(int(raw))
        try:
            self._table.update(
                campaign_key(campaign_id),
                "SET #c = :new",
                condition=f"attribute_exists(PK) AND {condition}",
                names={"#c": name},
                values=values,
            )
        except Refused:
            return False
        return True

    def prune_count_tokens(self, campaign_id: str, older_than_s: float) -> int:
        """Remove the idempotency tokens of batch threads idle for ``older_than_s``."""
        partition = read_partition(self._table, campaign_id)
        cutoff = self._clock.now() - older_than_s
        stale = [
            ({"PK": raw["PK"], "SK": raw["SK"]}, name, value)
            for raw in ([partition.meta] if partition.meta else []) + partition.shards
            for name, value in deserialize(raw).items()
            if name.startswith(COUNT_TOKEN_PREFIX)
            and isinstance(value, str)
            and float(value.split(":", 1)[0]) < cutoff
        ]
        removed = 0
        for key, name, value in stale:
            try:  # only if no thread reused the slot meanwhile
                self._table.update(
                    key,
                    "REMOVE #slot",
                    condition="#slot = :tok",
                    names={"#slot": name},
                    values={":tok": text(value)},
                )
                removed += 1
            except Refused:
                continue
        return removed
