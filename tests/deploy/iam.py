"""Enough of IAM's policy evaluation to answer "does this policy allow this call?" for
identity policies made of Allow/Deny statements with Action and Resource lists (wildcards
``*`` and ``?``; actions case-insensitive). NotAction/NotResource/Condition are refused,
so a policy using them cannot pass by accident."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

ACCOUNT = "123456789012"  # moto's account


def iam_action(service: str, operation: str) -> str:
    """The IAM action that authorises an API operation. SQS has no batch actions: its batch
    APIs are authorised by the single-message action (SendMessageBatch → sqs:SendMessage)."""
    if service == "sqs" and operation.endswith("Batch"):
        operation = operation.removesuffix("Batch")
    return f"{service}:{operation}"


def resource_arn(service: str, name: str, region: str, account: str = ACCOUNT) -> str:
    if service == "dynamodb":
        return f"arn:aws:dynamodb:{region}:{account}:table/{name}"
    if service == "sqs":
        return f"arn:aws:sqs:{region}:{account}:{name}"
    raise ValueError(service)


def _pattern(text: str, flags: int = 0) -> re.Pattern[str]:
    escaped = re.escape(text).replace(r"\*", ".*").replace(r"\?", ".")
    return re.compile(escaped + r"\Z", flags)


def _listed(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    found = policy["Statement"]
    listed = [found] if isinstance(found, dict) else list(found)
    for statement in listed:
        unsupported = {"NotAction", "NotResource", "Condition", "NotPrincipal"} & set(statement)
        assert not unsupported, f"cannot evaluate {sorted(unsupported)}"
    return listed


def _matches(statement: dict[str, Any], action: str, resource: str) -> bool:
    return any(
        _pattern(a, re.IGNORECASE).match(action) for a in _listed(statement["Action"])
    ) and any(_pattern(r).match(resource) for r in _listed(statement["Resource"]))


def allows(policy: dict[str, Any], action: str, resource: str) -> bool:
    """Allowed: some Allow statement matches and no Deny does (default deny otherwise)."""
    listed = statements(policy)
    if any(s["Effect"] == "Deny" and _matches(s, action, resource) for s in listed):
        return False
    return any(s["Effect"] == "Allow" and _matches(s, action, resource) for s in listed)


def granted_actions(policy: dict[str, Any]) -> set[str]:
    return {
        a.lower()
        for s in statements(policy)
        if s["Effect"] == "Allow"
        for a in _listed(s["Action"])
    }


def granted_resources(policy: dict[str, Any]) -> set[str]:
    return {r for s in statements(policy) for r in _listed(s["Resource"])}


def lower(actions: Iterable[str]) -> set[str]:
    return {a.lower() for a in actions}
