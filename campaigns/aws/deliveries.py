"""``campaigns.ports.DeliveryStore`` on the two tables: what the status webhooks write.

``apply_delivery`` reads the recipient (consistently), decides with the pure merge
(``campaigns.domain.delivery.merge_delivery``) and writes the decision conditioned on every
value it was decided from — the recipient's ``status``, its ``deliveryStatus`` and each
attribute it sets — so a write that lost a race is refused and decided again (bounded, after a
random wait: ``retrying.delivery_races``). When the decision moves counters, the recipient
update and the counter ``ADD`` go in ONE ``TransactWriteItems``: both or neither, so the
counters are exact under duplicates, any order and concurrent consumers. The counter item is
one of the delivery counters' own shards, ``COUNTER#D<k>`` (k from the phone,
``DELIVERY_SHARDS`` of them at least), summed on read with the others
(``counters.with_shards``): never METADATA nor a send-counter shard, because DynamoDB refuses a
plain write to an item a transaction holds (TransactionConflict), and the batch threads ADD to
those on the send path. Several shards also keep concurrent delivery transactions from
conflicting with each other. A decision that moves no counter (a SENT, an earlier timestamp) is
one conditional ``UpdateItem``. This is the one transaction of the system, and it is off the
send path (docs/architecture.md).

A lost answer: the transaction carries a ClientRequestToken per decision, so on DynamoDB a
retry of a landed try succeeds (moto ignores the token: there it is refused, decided again and
reported as ``changed=False``, the counters still exact); the single UpdateItem recognises its
own landed try by the values it wrote.

``find_by_message_id`` queries the recipients table's sparse GSI on ``messageId``
(``items.MESSAGE_ID_INDEX``, KEYS_ONLY): GSIs are eventually consistent, so a send committed a
moment ago may not be found yet (the caller leaves the receipt to be retried or counts it
unmatched). The BSUID link is an item of the campaigns table (``items.user_link_key``).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from campaigns.aws.counters import shard_of
from campaigns.aws.dynamo import (
    MAX_CLIENT_REQUEST_TOKEN,
    Cancelled,
    Landed,
    Refused,
    Table,
    number,
    serialize,
    text,
    transact_write,
)
from campaigns.aws.items import (
    MESSAGE_ID,
    MESSAGE_ID_INDEX,
    counter_attribute,
    delivery_shard_key,
    encoded_value,
    recipient_attribute,
    recipient_from_item,
    recipient_key,
    recipient_of_key,
    user_link_key,
)
from campaigns.aws.retrying import DELIVERY_RACE_TRIES, delivery_races
from campaigns.domain.clock import iso_utc
from campaigns.domain.delivery import DeliveryChange, merge_delivery
from campaigns.domain.errors import StoreUnavailable
from campaigns.domain.models import DeliveryApplied, DeliveryReport, Recipient
from campaigns.ports import Clock

if TYPE_CHECKING:
    from tenacity import Retrying

DELIVERY_SHARDS = 8  # at least: COUNTER#D0..7 (more with COUNTER_SHARDS)
_NOT_FOUND = DeliveryApplied(
    found=False, changed=False, resolved_unknown=False, before=None, after=None
)


class _LostRace(Exception):
    """The recipient moved between the read and the write: decide again."""


class Deliveries:
    """The DeliveryStore part of ``DynamoStore``."""

    def __init__(
        self, campaigns: Table, recipients: Table, clock: Clock, retry: Retrying, shards: int
    ) -> None:
        self._client = recipients.client  # TransactWriteItems spans both tables
        self._campaigns = campaigns
        self._recipients = recipients
        self._clock = clock
        self._retry = retry
        self._shards = shards
        self._races = delivery_races(clock, _LostRace)

    def apply_delivery(self, report: DeliveryReport) -> DeliveryApplied:
        try:
            return self._races(lambda: self._apply_once(report))
        except _LostRace:
            raise StoreUnavailable(
                f"DynamoDB delivery write lost {DELIVERY_RACE_TRIES} races in a row: "
                "try again later"
            ) from None

    def _apply_once(self, report: DeliveryReport) -> DeliveryApplied:
        """Read, decide, write conditioned on what was read (``_LostRace`` if it moved)."""
        item = self._recipients.get(recipient_key(report.campaign_id, report.phone))
        if item is None:
            return _NOT_FOUND
        current = recipient_from_item(report.campaign_id, item)
        change = merge_delivery(current, report)
        if change.writes:
            self._write(report, current, change)
        return change.applied()

    def _write(self, report: DeliveryReport, current: Recipient, change: DeliveryChange) -> None:
        """The decision, conditioned on what it was decided from (``_LostRace`` if refused)."""
        update = _recipient_update(current, change)
        if not change.counts:
            try:
                self._recipients.update(
                    update["Key"],
                    update["UpdateExpression"],
                    condition=update["ConditionExpression"],
                    names=update["ExpressionAttributeNames"],
                    values=update["ExpressionAttributeValues"],
                    landed=_holds(change),  # a retry whose first try landed, answer lost
                    retry=self._retry,
                )
            except Refused:
                raise _LostRace from None
            return
        items = [
            {"Update": {"TableName": self._recipients.name, **update}},
            {"Update": {"TableName": self._campaigns.name, **self._counter_update(report, change)}},
        ]
        token = uuid.uuid4().hex[:MAX_CLIENT_REQUEST_TOKEN]
        try:
            transact_write(self._client, items, token=token, retry=self._retry)
        except Cancelled:
            # The recipient moved, or another delivery transaction held one of the items.
            raise _LostRace from None

    def _counter_update(self, report: DeliveryReport, change: DeliveryChange) -> dict[str, Any]:
        names = {f"#c{i}": counter_attribute(name) for i, name in enumerate(change.counts)}
        values = {f":c{i}": number(delta) for i, delta in enumerate(change.counts.values())}
        update: dict[str, Any] = {
            "UpdateExpression": "ADD " + ", ".join(f"#c{i} :c{i}" for i in range(len(names))),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
        shards = max(self._shards, DELIVERY_SHARDS)
        update["Key"] = delivery_shard_key(report.campaign_id, shard_of(report.phone, shards))
        return update

    def find_by_message_id(self, message_id: str) -> tuple[str, str] | None:
        """The recipient sent ``message_id``, through the GSI (eventually consistent)."""
        page = self._recipients.query(
            IndexName=MESSAGE_ID_INDEX,
            KeyConditionExpression="#m = :m",
            ExpressionAttributeNames={"#m": MESSAGE_ID},
            ExpressionAttributeValues={":m": text(message_id)},
        )
        for item in page.get("Items", []):
            found = recipient_of_key(item)
            if found is not None:
                return found
        return None

    def link_user(self, user_id: str, phone: str) -> None:
        values = {"userId": user_id, "phone": phone, "linkedAt": iso_utc(self._clock.now())}
        self._campaigns.put(user_link_key(user_id) | serialize(values), retry=self._retry)

    def phone_for_user(self, user_id: str) -> str | None:
        item = self._campaigns.get(user_link_key(user_id))
        phone = item.get("phone", {}).get("S") if item else None
        return str(phone) if phone else None


def _recipient_update(current: Recipient, change: DeliveryChange) -> dict[str, Any]:
    """The recipient's UpdateItem: SET (or REMOVE, for None) what the decision changes, on the
    condition that every attribute it was decided from still holds the value read."""
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    sets: list[str] = []
    removes: list[str] = []
    conditions = ["attribute_exists(PK)"]
    decided_from = list(dict.fromkeys(["status", "delivery_status", *change.sets]))
    for index, field_name in enumerate(decided_from):
        name, old = f"#a{index}", f":o{index}"
        names[name] = recipient_attribute(field_name)
        was = getattr(current, field_name)
        if was is None:
            conditions.append(f"attribute_not_exists({name})")
        else:
            conditions.append(f"{name} = {old}")
            values[old] = _attribute_value(field_name, was)
        if field_name not in change.sets:
            continue
        new = change.sets[field_name]
        if new is None:
            removes.append(name)
        else:
            sets.append(f"{name} = :n{index}")
            values[f":n{index}"] = _attribute_value(field_name, new)
    expression = ("SET " + ", ".join(sets) if sets else "") + (
        " REMOVE " + ", ".join(removes) if removes else ""
    )
    return {
        "Key": recipient_key(current.campaign_id, current.phone),
        "UpdateExpression": expression.strip(),
        "ConditionExpression": " AND ".join(conditions),
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }


def _holds(change: DeliveryChange) -> Landed:
    """The item already holds every value this decision writes (its own landed try)."""
    expected = {
        recipient_attribute(name): encoded_value(name, value) for name, value in change.sets.items()
    }
    return lambda found: all(found.get(name) == value for name, value in expected.items())


def _attribute_value(field_name: str, value: Any) -> Any:
    return serialize({"v": encoded_value(field_name, value)})["v"]
