"""Run a real entry point with every AWS call it makes recorded, for the IAM test.

    python -m tests.deploy.recording CALLS.jsonl producer|consumer|api|webhooks [ARGS...]

The producer, the consumer, the operator API and the webhook receiver run as they do in
production, in their own process; before their code is imported, a handler for botocore's
``before-parameter-build`` event is registered on every botocore session the process creates
(campaigns/aws/clients.py makes a new boto3 Session per client, so hooking the default session
alone would miss them).
Each AWS call appends one JSON line: service, operation and the resources it names (table names,
queue names; ``<table>/index/<index>`` for a Query on an index, whose ARN IAM authorises). A
TransactWriteItems is recorded as the per-item operations IAM authorises it by (an Update item
as ``UpdateItem`` on its table, ``via`` TransactWriteItems). A DynamoDB call also records
``leadingKeys``: per resource, the partition key values it names (IAM's ``dynamodb:LeadingKeys``:
the ``PK`` of a key or an item, the value a Query's key condition sets the hash key to; none for
a Scan), so the test can check each against the policy's leading-key conditions.

``deliveries`` adds every DeliveryStore call a status webhook can make
(tests/deploy/delivery_calls.py) to what the consumer's own receipts loop applied in the run,
recorded under the consumer's role."""

from __future__ import annotations

import json
import re
import sys
import threading
from pathlib import Path
from typing import Any

import botocore.session

_lock = threading.Lock()
_out: Path | None = None


# A TransactWriteItems item kind -> the IAM action (and API operation) that authorises it.
_TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}


# The partition key attribute of each table and index the code uses (campaigns/aws/items.py).
_HASH_KEYS = ("PK", "messageId")
_EQUALS = re.compile(r"(#?[A-Za-z0-9_]+)\s*=\s*(:[A-Za-z0-9_]+)")


def describe(service: str, operation: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """The recorded lines of one call (one per item for a TransactWriteItems)."""
    if operation == "TransactWriteItems":
        return [
            {
                "service": service,
                "operation": _TRANSACT_ACTIONS[kind],
                "via": operation,
                "resources": [str(op["TableName"])],
                "leadingKeys": {str(op["TableName"]): _partition_keys(op)},
            }
            for item in params.get("TransactItems", [])
            for kind, op in item.items()
        ]
    line: dict[str, Any] = {
        "service": service,
        "operation": operation,
        "resources": _resources(params),
    }
    if service == "dynamodb":
        line["leadingKeys"] = _leading_keys(operation, params)
    return [line]


def _pk(item: dict[str, Any]) -> list[str]:
    value = item.get("PK", {})
    return [str(value["S"])] if "S" in value else []


def _partition_keys(op: dict[str, Any]) -> list[str]:
    """The partition key of one Get/Put/Update/Delete (its ``Key`` or its ``Item``)."""
    return _pk(op.get("Key") or op.get("Item") or {})


def _query_key(params: dict[str, Any]) -> list[str]:
    """The value a Query's key condition gives the hash key (``PK = :pk``)."""
    names = params.get("ExpressionAttributeNames", {})
    values = params.get("ExpressionAttributeValues", {})
    for name, placeholder in _EQUALS.findall(params.get("KeyConditionExpression", "")):
        if names.get(name, name) in _HASH_KEYS and "S" in values.get(placeholder, {}):
            return [str(values[placeholder]["S"])]
    return []


def _leading_keys(operation: str, params: dict[str, Any]) -> dict[str, list[str]]:
    requested: dict[str, Any] = params.get("RequestItems", {})
    if operation == "BatchGetItem":
        return {t: sorted({k for key in r["Keys"] for k in _pk(key)}) for t, r in requested.items()}
    if operation == "BatchWriteItem":
        return {
            table: sorted({k for w in writes for op in w.values() for k in _partition_keys(op)})
            for table, writes in requested.items()
        }
    resources = _resources(params)
    if len(resources) != 1:
        return {}
    resource = resources[0]
    if operation == "Query":
        return {resource: _query_key(params)}
    if operation == "Scan":
        return {resource: []}
    return {resource: _partition_keys(params)}


def _resources(params: dict[str, Any]) -> list[str]:
    names: list[str] = []
    if "TableName" in params:
        table = str(params["TableName"])
        index = params.get("IndexName")
        names.append(f"{table}/index/{index}" if index else table)
    names.extend(str(table) for table in params.get("RequestItems", {}))
    if "QueueUrl" in params:
        names.append(str(params["QueueUrl"]).rstrip("/").rsplit("/", 1)[-1])
    if "QueueName" in params:
        names.append(str(params["QueueName"]))
    return sorted(set(names))


def _record(**kwargs: Any) -> None:
    params: dict[str, Any] = kwargs["params"]
    model = kwargs["model"]
    lines = describe(model.service_model.signing_name, model.name, params)
    assert _out is not None
    with _lock, _out.open("a") as out:
        out.writelines(json.dumps(line) + "\n" for line in lines)


def install(out: Path) -> None:
    global _out  # noqa: PLW0603 (one recorder per process)
    _out = out
    original = botocore.session.Session.__init__

    def init(self: botocore.session.Session, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.register("before-parameter-build", _record)

    botocore.session.Session.__init__ = init  # type: ignore[method-assign]


def main(argv: list[str]) -> int:
    out, program, *args = argv
    install(Path(out))
    if program == "producer":
        from producer.cli import main as producer

        return producer(args)
    if program == "consumer":
        from consumer.boot import main as consumer

        return consumer(args)
    if program == "api":
        from api.cli import main as api

        return api(args)
    if program == "webhooks":
        from webhooks.cli import main as webhooks

        return webhooks(args)
    if program == "deliveries":
        from tests.deploy.delivery_calls import main as deliveries

        return deliveries(args)
    raise SystemExit(f"unknown program {program!r}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
