"""Delivery rules: what happens to an *accepted* send after the 200, for matching numbers and
templates — a ``failed`` status later (131026, 131049, 131050…), a "username" user whose
statuses carry only the BSUID, ``held_for_quality_assessment`` in the send answer, a pricing
category, a user who never reads.

The send-side twin of ``sandbox.faults.FaultRule`` (which scripts the send answer itself):
same ``match``/``probability``/``times`` semantics, decided from a per-message RNG derived
from the seed, the number and how many sends that number had before, so a run decides the
same things for the same sends whatever the interleaving of other numbers.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

CATEGORIES = ("marketing", "utility", "authentication", "service")


@dataclass(frozen=True)
class DeliveryRule:
    """One scripted post-acceptance behaviour; every field is optional.

    ``match`` is a ``re.fullmatch`` over the recipient's digits, ``template`` over the template
    name. A firing rule contributes the outcome fields it sets; an earlier rule wins a field.
    """

    match: str = ".*"
    template: str = ".*"
    probability: float = 1.0
    times: int | None = None
    fail_code: int | None = None  # accepted with a wamid, then a ``failed`` status
    username: bool = False  # statuses carry recipient_user_id only, never recipient_id
    held: bool = False  # the send answer says held_for_quality_assessment
    never_read: bool = False  # sent and delivered, never read
    category: str | None = None  # pricing.category (default marketing)

    def __post_init__(self) -> None:
        for name in ("match", "template"):
            pattern = getattr(self, name)
            if not isinstance(pattern, str):
                raise ValueError(f"{name} must be a regex string, got {pattern!r}")
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{name} is not a valid regex: {exc}") from exc
        probability = self.probability
        if (
            not isinstance(probability, int | float)
            or isinstance(probability, bool)
            or not math.isfinite(probability)
            or not 0.0 <= probability <= 1.0
        ):
            raise ValueError(f"probability must be a number in [0, 1], got {probability!r}")
        for name in ("times", "fail_code"):
            value = getattr(self, name)
            if value is not None and (
                not isinstance(value, int) or isinstance(value, bool) or value < 0
            ):
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        for flag in ("username", "held", "never_read"):
            if not isinstance(getattr(self, flag), bool):
                raise ValueError(f"{flag} must be true or false")
        if self.category is not None and self.category not in CATEGORIES:
            raise ValueError(f"category must be one of {', '.join(CATEGORIES)}")

    def matches(self, digits: str, template_name: str) -> bool:
        return (
            re.fullmatch(self.match, digits) is not None
            and re.fullmatch(self.template, template_name) is not None
        )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DeliveryRule:
        """Build a rule from its JSON form; ``ValueError`` on unknown keys or bad values."""
        if not isinstance(d, Mapping):
            raise ValueError(f"a delivery rule must be a JSON object, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown delivery rule key(s): {', '.join(map(str, unknown))}")
        return cls(**dict(d))

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, without fields left at their defaults."""
        default = DeliveryRule()
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if getattr(self, f.name) != getattr(default, f.name)
        }


@dataclass(frozen=True)
class DeliveryDecision:
    """What the rules decided for one accepted send."""

    fail_code: int | None = None
    username: bool = False
    held: bool = False
    never_read: bool = False
    category: str = "marketing"


class DeliveryRuleBook:
    """Rules with their firing counts; not thread-safe (the emulator holds its lock)."""

    def __init__(self, rules: Sequence[DeliveryRule]) -> None:
        self.rules = tuple(rules)
        for rule in self.rules:
            if not isinstance(rule, DeliveryRule):
                raise ValueError(f"not a DeliveryRule: {rule!r}")
        self._fired = [0] * len(self.rules)

    def decide(self, digits: str, template_name: str, rng: random.Random) -> DeliveryDecision:
        outcome: dict[str, Any] = {}
        for index, rule in enumerate(self.rules):
            if not rule.matches(digits, template_name):
                continue
            if rule.times is not None and self._fired[index] >= rule.times:
                continue
            if rule.probability < 1.0 and rng.random() >= rule.probability:
                continue
            self._fired[index] += 1
            for name in ("fail_code", "category"):
                if getattr(rule, name) is not None:
                    outcome.setdefault(name, getattr(rule, name))
            for name in ("username", "held", "never_read"):
                if getattr(rule, name):
                    outcome.setdefault(name, True)
        return DeliveryDecision(**outcome)
