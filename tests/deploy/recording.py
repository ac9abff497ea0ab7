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
as ``UpdateItem`` on its table, ``via`` TransactWriteItems).

``deliveries`` is a stand-in for the consumer's receipts loop until that loop is wired: the
DeliveryStore calls a status webhook makes (tests/deploy/delivery_calls.py), recorded under the
consumer's role."""

from __future__ import annotations

import json
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


def describe(service: str, operation: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """The recorded lines of one call (one per item for a TransactWriteItems)."""
    if operation == "TransactWriteItems":
        return [
            {
                "service": service,
                "operation": _TRANSACT_ACTIONS[kind],
                "via": operation,
                "resources": [str(op["TableName"])],
            }
            for item in params.get("TransactItems", [])
            for kind, op in item.items()
        ]
    return [{"service": service, "operation": operation, "resources": _resources(params)}]


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
