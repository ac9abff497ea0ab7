"""The DynamoDB edge: the one place that speaks DynamoDB's wire format.

Everything the store, the counters, the leases, the cap guard and the bulk writer send to
DynamoDB or read back goes through here: the attribute values (``text``, ``number``, ``flag``,
``serialize``), the translation of botocore's errors into ``StoreUnavailable`` (and of a failed
condition into ``Refused``), and the one way a conditional write recognises that an earlier
try of itself had landed: ``Table.update`` and ``Table.put`` take a ``landed(item)`` predicate
that is asked about the item a refused retry found. The keys and the item codecs (the layout)
are its companion, ``campaigns.aws.items``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from campaigns.domain.errors import StoreUnavailable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef
    from tenacity import Retrying

T = TypeVar("T")

# DynamoDB quotas (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html)
MAX_BATCH_WRITE = 25  # items per BatchWriteItem
MAX_BATCH_GET = 100  # keys per BatchGetItem
MAX_TRANSACT_ITEMS = 100  # not used on the hot path: see docs/architecture.md
# A TransactWriteItems ClientRequestToken: at most 36 characters, idempotent for 10 minutes.
MAX_CLIENT_REQUEST_TOKEN = 36

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

Item = dict[str, "AttributeValueTypeDef"]
Landed = Callable[[dict[str, Any]], bool]

# -- attribute values -------------------------------------------------------------------------


def text(value: str) -> AttributeValueTypeDef:
    return {"S": value}


def number(value: float) -> AttributeValueTypeDef:
    return {"N": repr(value) if isinstance(value, float) else str(value)}


def flag(value: bool) -> AttributeValueTypeDef:
    return {"BOOL": value}


def serialize(values: Mapping[str, Any]) -> Item:
    return {name: _serializer.serialize(_to_dynamo(value)) for name, value in values.items()}


def deserialize(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _from_dynamo(_deserializer.deserialize(value)) for name, value in item.items()}


def _to_dynamo(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: _to_dynamo(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_dynamo(v) for v in value]
    return value


def _from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_dynamo(v) for v in value]
    return value


# -- errors and the call wrapper ----------------------------------------------------------------


class Refused(Exception):
    """A write's condition failed. ``item`` is the item DynamoDB returned with the refusal
    (``ReturnValuesOnConditionCheckFailure=ALL_OLD``): None when there was none or it was not
    asked for. Internal to the adapters: callers turn it into a domain answer."""

    def __init__(self, item: Item | None) -> None:
        super().__init__("condition failed")
        self.item = item

    @property
    def found(self) -> dict[str, Any]:
        """The refused item's attributes, deserialised ({} when none came back)."""
        return deserialize(self.item) if self.item else {}


def is_conditional_failure(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class Cancelled(Exception):
    """A TransactWriteItems cancelled by a race, not by a fault: each of its items failed its
    condition, met another transaction (``TransactionConflict``) or was fine (``None``).
    ``reasons`` holds one code per item, in order. Internal to the adapters."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__(f"transaction cancelled: {reasons}")
        self.reasons = reasons


RACE_REASONS = frozenset({"None", "ConditionalCheckFailed", "TransactionConflict"})


def _cancelled(exc: ClientError) -> Cancelled | None:
    """The race a ``TransactionCanceledException`` reports, or None when it reports a fault
    (throttling, capacity, validation: those are ``StoreUnavailable``)."""
    if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
        return None
    found: Any = exc.response
    reasons = [str(reason.get("Code", "None")) for reason in found.get("CancellationReasons", [])]
    if not reasons or not set(reasons) <= RACE_REASONS:
        return None
    return Cancelled(reasons)


def unavailable(exc: ClientError | BotoCoreError, what: str) -> StoreUnavailable:
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "Unknown")
        return StoreUnavailable(f"DynamoDB {what} failed: {code}")
    return StoreUnavailable(f"DynamoDB {what} failed: {type(exc).__name__}")


def call(what: str, request: Callable[[], T]) -> T:
    """One request (botocore retries throttling and 5xx itself), its errors translated."""
    try:
        return request()
    except ClientError as exc:
        if is_conditional_failure(exc):
            raise Refused(exc.response.get("Item")) from None  # type: ignore[arg-type]
        cancelled = _cancelled(exc)
        if cancelled is not None:
            raise cancelled from None
        raise unavailable(exc, what) from None
    except BotoCoreError as exc:
        raise unavailable(exc, what) from None


# -- "did my lost write land?" ------------------------------------------------------------------

# The attribute a write that must recognise itself after a lost answer sets to a fresh token:
# a timestamp is not enough, two racers can write within the same millisecond.
WRITE_TOKEN = "writeToken"  # noqa: S105 (an attribute name, not a secret)


@dataclass(frozen=True)
class WriteToken:
    """A unique value a write sets on ``attribute``; finding it there means the write landed."""

    value: str = field(default_factory=lambda: uuid.uuid4().hex)
    attribute: str = WRITE_TOKEN

    def landed(self, found: Mapping[str, Any]) -> bool:
        return found.get(self.attribute) == self.value


@dataclass(frozen=True)
class Written:
    """A write that is in place. ``item`` is what the write returned (as its
    ``ReturnValues`` asked), or, when ``replayed``, the item as a refused retry found it: an
    earlier try of this very write had landed and its answer was lost."""

    item: Item
    replayed: bool = False


class Table:
    """One table reached through the edge: every request's errors translated, and conditional
    writes that recognise their own landed tries. ``retry`` (a policy from
    ``campaigns.aws.retrying``) puts a bounded loop on top of botocore's own retries."""

    def __init__(self, client: DynamoDBClient, name: str) -> None:
        self.client = client
        self.name = name

    def get(self, key: Item, *, what: str = "GetItem") -> Item | None:
        """A consistent read of one item (None when absent)."""
        response = call(
            what, lambda: self.client.get_item(TableName=self.name, Key=key, ConsistentRead=True)
        )
        item: Item | None = response.get("Item")
        return item

    def query(self, **request: Any) -> Any:
        """One Query page."""
        return call("Query", lambda: self.client.query(TableName=self.name, **request))

    def query_items(self, **request: Any) -> Iterator[Item]:
        """Every item a Query finds, page by page (constant memory)."""
        return self._pages("Query", lambda page: self.client.query(**page), request)

    def scan_items(self, **request: Any) -> Iterator[Item]:
        """Every item a Scan finds, page by page (constant memory)."""
        return self._pages("Scan", lambda page: self.client.scan(**page), request)

    def _pages(
        self, what: str, send: Callable[[dict[str, Any]], Any], request: dict[str, Any]
    ) -> Iterator[Item]:
        request = {"TableName": self.name, **request}
        while True:
            page: Any = call(what, lambda: send(request))
            yield from page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def put(
        self,
        item: Item,
        *,
        condition: str | None = None,
        landed: Landed | None = None,
        retry: Retrying | None = None,
    ) -> Written:
        request: dict[str, Any] = {"TableName": self.name, "Item": item}
        if condition is not None:
            request["ConditionExpression"] = condition
        if landed is not None:
            request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        return self._write("PutItem", lambda: self.client.put_item(**request), landed, retry)

    def delete(
        self,
        key: Item,
        *,
        condition: str,
        names: Mapping[str, str],
        values: Mapping[str, Any] | None = None,
    ) -> None:
        """One conditional DeleteItem (``Refused`` when the condition fails)."""
        request: dict[str, Any] = {
            "TableName": self.name,
            "Key": key,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": dict(names),
        }
        if values:  # DynamoDB refuses an empty ExpressionAttributeValues
            request["ExpressionAttributeValues"] = dict(values)
        call("DeleteItem", lambda: self.client.delete_item(**request))

    def update(
        self,
        key: Item,
        expression: str,
        *,
        condition: str | None = None,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
        returns: str | None = None,
        refused_item: bool = False,
        landed: Landed | None = None,
        retry: Retrying | None = None,
        what: str = "UpdateItem",
    ) -> Written:
        """One UpdateItem. ``refused_item`` asks DynamoDB for the item a failed condition saw
        (``Refused.item``); ``landed`` does too, and is asked whether that item shows this very
        write in place, in which case the write counts as done (``Written.replayed``)."""
        request: dict[str, Any] = {
            "TableName": self.name,
            "Key": key,
            "UpdateExpression": expression,
        }
        if condition is not None:
            request["ConditionExpression"] = condition
        if names:
            request["ExpressionAttributeNames"] = dict(names)
        if values:
            request["ExpressionAttributeValues"] = dict(values)
        if returns is not None:
            request["ReturnValues"] = returns
        if refused_item or landed is not None:
            request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        return self._write(what, lambda: self.client.update_item(**request), landed, retry)

    @staticmethod
    def _write(
        what: str, request: Callable[[], Any], landed: Landed | None, retry: Retrying | None
    ) -> Written:
        try:
            response = call(what, request) if retry is None else retry(call, what, request)
        except Refused as refused:
            # A retry (botocore's or ours) whose first try landed, answer lost, is refused by
            # its own condition: the item it finds tells whether that was this very write.
            if landed is not None and refused.item and landed(refused.found):
                return Written(refused.item, replayed=True)
            raise
        return Written(response.get("Attributes", {}))


def transact_write(
    client: DynamoDBClient,
    items: list[dict[str, Any]],
    *,
    token: str,
    retry: Retrying | None = None,
) -> None:
    """One TransactWriteItems: every item or none. ``token`` (the ClientRequestToken, one per
    decision) makes a retry of a landed try succeed instead of failing its own conditions, for
    ten minutes. A race cancels it with ``Cancelled``; faults are ``StoreUnavailable``
    (retried under ``retry``)."""
    request: dict[str, Any] = {"TransactItems": items, "ClientRequestToken": token}

    def send() -> Any:
        return client.transact_write_items(**request)

    if retry is None:
        call("TransactWriteItems", send)
    else:
        retry(call, "TransactWriteItems", send)
