"""Run a real entry point with every AWS call it makes recorded, for the IAM test.

    python -m tests.deploy.recording CALLS.jsonl producer|consumer|api [ARGS...]

The producer, the consumer and the operator API run as they do in production, in their own
process; before their code is imported, a handler for botocore's ``before-parameter-build``
event is registered on every botocore session the process creates (campaigns/aws/clients.py
makes a new boto3 Session per client, so hooking the default session alone would miss them).
Each AWS call appends one JSON line: service, operation and the resources it names (table names,
queue names)."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path
from typing import Any

import botocore.session

_lock = threading.Lock()
_out: Path | None = None


def _resources(params: dict[str, Any]) -> list[str]:
    names: list[str] = []
    if "TableName" in params:
        names.append(str(params["TableName"]))
    names.extend(str(table) for table in params.get("RequestItems", {}))
    for item in params.get("TransactItems", []):
        names.extend(str(op["TableName"]) for op in item.values())
    if "QueueUrl" in params:
        names.append(str(params["QueueUrl"]).rstrip("/").rsplit("/", 1)[-1])
    if "QueueName" in params:
        names.append(str(params["QueueName"]))
    return sorted(set(names))


def _record(**kwargs: Any) -> None:
    params: dict[str, Any] = kwargs["params"]
    model = kwargs["model"]
    line = json.dumps(
        {
            "service": model.service_model.signing_name,
            "operation": model.name,
            "resources": _resources(params),
        }
    )
    assert _out is not None
    with _lock, _out.open("a") as out:
        out.write(line + "\n")


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
    raise SystemExit(f"unknown program {program!r}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
