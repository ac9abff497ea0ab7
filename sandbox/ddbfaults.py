"""DynamoDB fault injection, as reusable test tooling.

A chosen share of calls fails with ``ProvisionedThroughputExceededException``,
``ThrottlingException`` or ``InternalServerError`` — *before* the call took effect, or, for
writes, *after* it took effect with the answer lost (the hard case: the caller's retry then
meets its own earlier write).

Two ways in:
- ``FaultyDynamoDBClient`` wraps a boto3 client in-process (adapter tests);
- the moto server's WSGI wrapper (``sandbox.aws``) applies a ``FaultPlan`` to real HTTP
  requests, so consumer *processes* see real error responses and botocore's own retries.
"""

from __future__ import annotations

import json
import random
import threading
from dataclasses import dataclass, field
from typing import Any

import requests
from botocore.exceptions import ClientError

FAULT_CODES = (
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "InternalServerError",
)
WRITE_OPERATIONS = frozenset(
    {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
)
_TYPE_PREFIX = {
    "ProvisionedThroughputExceededException": "com.amazonaws.dynamodb.v20120810#",
    "ThrottlingException": "com.amazon.coral.availability#",
    "InternalServerError": "com.amazonaws.dynamodb.v20120810#",
}
_STATUS = {"InternalServerError": 500}


@dataclass(frozen=True)
class FaultPlan:
    rate: float = 0.0  # share of matching calls that fail
    after_write: float = 0.5  # of failing writes, the share that took effect before failing
    codes: tuple[str, ...] = FAULT_CODES
    operations: frozenset[str] = field(default_factory=frozenset)  # empty: every operation
    seed: int = 0
    times: int | None = None  # inject at most this many faults (None: no limit)

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0 or not 0.0 <= self.after_write <= 1.0:
            raise ValueError("rate and after_write must be in [0, 1]")
        unknown = set(self.codes) - set(FAULT_CODES)
        if unknown or not self.codes:
            raise ValueError(f"codes must be among {FAULT_CODES}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaultPlan:
        allowed = {"rate", "after_write", "codes", "operations", "seed", "times"}
        if set(data) - allowed:
            raise ValueError(f"unknown fault plan keys: {sorted(set(data) - allowed)}")
        values = dict(data)
        if "codes" in values:
            values["codes"] = tuple(values["codes"])
        if "operations" in values:
            values["operations"] = frozenset(values["operations"])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rate": self.rate,
            "after_write": self.after_write,
            "codes": list(self.codes),
            "operations": sorted(self.operations),
            "seed": self.seed,
            "times": self.times,
        }


@dataclass(frozen=True)
class Fault:
    code: str
    after: bool  # the call took effect; only its answer is lost

    @property
    def http_status(self) -> int:
        return _STATUS.get(self.code, 400)

    def body(self) -> bytes:
        return json.dumps(
            {"__type": _TYPE_PREFIX[self.code] + self.code, "message": "injected fault"}
        ).encode()


class FaultDecider:
    """Decides, reproducibly for a seed, which calls fail and how; counts what it did."""

    def __init__(self, plan: FaultPlan | None = None) -> None:
        self._lock = threading.Lock()
        self._plan = plan or FaultPlan()
        self._rng = random.Random(self._plan.seed)
        self.injected: dict[str, int] = {}

    @property
    def plan(self) -> FaultPlan:
        return self._plan

    def set_plan(self, plan: FaultPlan) -> None:
        with self._lock:
            self._plan = plan
            self._rng = random.Random(plan.seed)
            self.injected = {}

    def decide(self, operation: str) -> Fault | None:
        with self._lock:
            plan = self._plan
            if plan.rate <= 0 or (plan.operations and operation not in plan.operations):
                return None
            if plan.times is not None and sum(self.injected.values()) >= plan.times:
                return None
            if self._rng.random() >= plan.rate:
                return None
            code = self._rng.choice(plan.codes)
            after = operation in WRITE_OPERATIONS and self._rng.random() < plan.after_write
            key = f"{operation}:{code}:{'after' if after else 'before'}"
            self.injected[key] = self.injected.get(key, 0) + 1
            return Fault(code=code, after=after)


def client_error(fault: Fault, operation: str) -> ClientError:
    response: Any = {
        "Error": {"Code": fault.code, "Message": "injected fault"},
        "ResponseMetadata": {"HTTPStatusCode": fault.http_status},
    }
    return ClientError(response, operation)


_OPERATION_NAMES = {
    "put_item": "PutItem",
    "update_item": "UpdateItem",
    "delete_item": "DeleteItem",
    "get_item": "GetItem",
    "query": "Query",
    "scan": "Scan",
    "batch_get_item": "BatchGetItem",
    "batch_write_item": "BatchWriteItem",
    "transact_write_items": "TransactWriteItems",
}


class FaultyDynamoDBClient:
    """A boto3 DynamoDB client whose calls fail as the plan says (in-process)."""

    def __init__(self, client: Any, decider: FaultDecider) -> None:
        self._client = client
        self.decider = decider

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._client, name)
        operation = _OPERATION_NAMES.get(name)
        if operation is None:
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            fault = self.decider.decide(operation)
            if fault is None:
                return target(*args, **kwargs)
            if fault.after:
                target(*args, **kwargs)  # it happened; the answer is what gets lost
            raise client_error(fault, operation)

        return call


def set_server_plan(aws_url: str, plan: FaultPlan) -> dict[str, Any]:
    """Apply ``plan`` on a running ``sandbox.aws`` server (its ``/_chaos/dynamodb`` endpoint)."""
    with requests.put(f"{aws_url}/_chaos/dynamodb", json=plan.to_dict(), timeout=5) as response:
        response.raise_for_status()
        state: dict[str, Any] = response.json()
    return state


def server_state(aws_url: str) -> dict[str, Any]:
    with requests.get(f"{aws_url}/_chaos/dynamodb", timeout=5) as response:
        response.raise_for_status()
        state: dict[str, Any] = response.json()
    return state
