"""Enough of IAM's policy evaluation to answer "does this policy allow this call?" for
identity policies made of Allow/Deny statements with Action and Resource lists (wildcards
``*`` and ``?``; actions case-insensitive) and DynamoDB's leading-key conditions:
``ForAllValues:StringLike`` on ``dynamodb:LeadingKeys`` (every partition key the request
names matches one of the patterns; true for a request that names none, as in IAM) and
``Null`` on it (``"false"``: the request names a partition key, so a Scan does not match).
NotAction/NotResource and any other condition are refused, so a policy using them cannot pass
by accident."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

ACCOUNT = "123456789012"  # moto's account
LEADING_KEYS = "dynamodb:LeadingKeys"
FOR_ALL_LIKE = "ForAllValues:StringLike"
# The request's condition keys: ``{LEADING_KEYS: [partition key values]}``; absent when the
# request names none (a Scan, an SQS call).
Context = dict[str, list[str]]


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
        unsupported = {"NotAction", "NotResource", "NotPrincipal"} & set(statement)
        assert not unsupported, f"cannot evaluate {sorted(unsupported)}"
        for operator, keys in statement.get("Condition", {}).items():
            assert operator in (FOR_ALL_LIKE, "Null"), f"cannot evaluate {operator}"
            assert set(keys) == {LEADING_KEYS}, f"cannot evaluate {sorted(keys)}"
    return listed


def leading_key_patterns(statement: dict[str, Any]) -> list[str]:
    """The partition key patterns a statement's condition allows ([] when unconditioned)."""
    return _listed(statement.get("Condition", {}).get(FOR_ALL_LIKE, {}).get(LEADING_KEYS, []))


def _condition_holds(statement: dict[str, Any], context: Context) -> bool:
    condition = statement.get("Condition", {})
    keys = context.get(LEADING_KEYS, [])
    if "Null" in condition:
        must_be_absent = str(condition["Null"][LEADING_KEYS]).lower() == "true"
        if must_be_absent == bool(keys):
            return False
    if FOR_ALL_LIKE in condition:
        patterns = leading_key_patterns(statement)
        return all(any(like(p, key) for p in patterns) for key in keys)
    return True


def _matches(statement: dict[str, Any], action: str, resource: str, context: Context) -> bool:
    return (
        any(_pattern(a, re.IGNORECASE).match(action) for a in _listed(statement["Action"]))
        and any(_pattern(r).match(resource) for r in _listed(statement["Resource"]))
        and _condition_holds(statement, context)
    )


def allows(
    policy: dict[str, Any], action: str, resource: str, context: Context | None = None
) -> bool:
    """Allowed: some Allow statement matches and no Deny does (default deny otherwise)."""
    listed, given = statements(policy), context or {}
    if any(s["Effect"] == "Deny" and _matches(s, action, resource, given) for s in listed):
        return False
    return any(s["Effect"] == "Allow" and _matches(s, action, resource, given) for s in listed)


def like(pattern: str, value: str) -> bool:
    """IAM's StringLike: ``*`` any run of characters, ``?`` one, case-sensitive."""
    return _pattern(pattern).match(value) is not None


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
