"""Scripted fault rules for the Cloud API emulator: which sends misbehave, and how.

A rule matches recipients by regex, fires with a probability drawn from a seeded RNG (so a run
is reproducible), at most ``times`` times, and then either only adds latency (non-terminal) or
decides the answer (terminal: an error code, an HTML or empty body, a hang or a reset).
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

DEFAULT_HTML_STATUS = 502  # what Meta's edge answers when the backend is gone
DEFAULT_EMPTY_STATUS = 400  # Meta's edge occasionally answers 400 with no body at all


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_optional_int(name: str, value: object, low: int, high: int | None = None) -> None:
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        raise ValueError(f"{name} out of range: {value}")


@dataclass(frozen=True)
class FaultRule:
    """One scripted misbehaviour of the Cloud API; every field is optional.

    ``match`` is a ``re.fullmatch`` pattern over the recipient's digits (no ``+``).
    Terminal kinds (at most one per rule): ``code``, ``html``, ``empty``, ``hang_s``, ``reset``.
    ``latency_ms`` (a number or a ``(min, max)`` pair) delays the answer; on its own it is
    non-terminal. ``after_accept`` (with ``hang_s``, ``reset`` or ``html``) records the message
    first: a gateway that lost Meta's answer to a request Meta accepted.
    """

    match: str = ".*"
    probability: float = 1.0
    times: int | None = None
    code: int | None = None
    http_status: int | None = None
    html: bool = False
    empty: bool = False
    latency_ms: float | tuple[float, float] | None = None
    hang_s: float | None = None
    reset: bool = False
    after_accept: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.match, str):
            raise ValueError(f"match must be a regex string, got {self.match!r}")
        try:
            re.compile(self.match)
        except re.error as exc:
            raise ValueError(f"match is not a valid regex: {exc}") from exc
        if not _is_number(self.probability) or not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"probability must be a number in [0, 1], got {self.probability!r}")
        _check_optional_int("times", self.times, 0)
        _check_optional_int("code", self.code, 0)
        _check_optional_int("http_status", self.http_status, 100, 599)
        for flag in ("html", "empty", "reset", "after_accept"):
            if not isinstance(getattr(self, flag), bool):
                raise ValueError(f"{flag} must be true or false")
        self._check_latency()
        if self.hang_s is not None and (not _is_number(self.hang_s) or self.hang_s < 0):
            raise ValueError(f"hang_s must be a non-negative number, got {self.hang_s!r}")
        kinds = [k for k in ("code", "html", "empty", "hang_s", "reset") if self._has(k)]
        if len(kinds) > 1:
            raise ValueError(f"a rule has at most one answer kind, got {', '.join(kinds)}")
        if self.after_accept and self.hang_s is None and not (self.reset or self.html):
            raise ValueError("after_accept needs hang_s, reset or html")
        if self.http_status is not None and not (self.code is not None or self.html or self.empty):
            raise ValueError("http_status needs code, html or empty")

    def _has(self, name: str) -> bool:
        value = getattr(self, name)
        return value is not None and value is not False

    def _check_latency(self) -> None:
        latency = self.latency_ms
        if latency is None:
            return
        if isinstance(latency, tuple):
            valid = (
                len(latency) == 2
                and all(_is_number(v) for v in latency)
                and 0 <= latency[0] <= latency[1]
            )
        else:
            valid = _is_number(latency) and latency >= 0
        if not valid:
            raise ValueError(f"latency_ms must be a number or a [min, max] pair, got {latency!r}")

    @property
    def terminal(self) -> bool:
        """True when firing this rule decides the answer (anything but pure latency)."""
        return any(self._has(k) for k in ("code", "html", "empty", "hang_s", "reset"))

    def matches(self, to_digits: str) -> bool:
        return re.fullmatch(self.match, to_digits) is not None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FaultRule:
        """Build a rule from its JSON form; raises ``ValueError`` on unknown keys or bad values."""
        if not isinstance(d, Mapping):
            raise ValueError(f"a rule must be a JSON object, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown rule key(s): {', '.join(map(str, unknown))}")
        values = dict(d)
        latency = values.get("latency_ms")
        if isinstance(latency, list):
            values["latency_ms"] = tuple(latency)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, without fields left at their defaults."""
        default = FaultRule()
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value != getattr(default, f.name):
                out[f.name] = list(value) if isinstance(value, tuple) else value
        return out


@dataclass(frozen=True)
class FaultDecision:
    """What the rules say about one send: a delay, and the terminal rule that fired, if any."""

    delay_s: float = 0.0
    rule: FaultRule | None = None


class RuleBook:
    """Rules with their firing counts and the seeded RNG.

    Not thread-safe on its own: the emulator calls it with its lock held.
    """

    def __init__(self, rules: Sequence[FaultRule], seed: int) -> None:
        self.rules = tuple(rules)
        for rule in self.rules:
            if not isinstance(rule, FaultRule):
                raise ValueError(f"not a FaultRule: {rule!r}")
        self._fired = [0] * len(self.rules)
        self._rng = random.Random(seed)

    def decide(self, to_digits: str) -> FaultDecision:
        """Every firing latency rule adds its delay; the first firing terminal rule answers."""
        delay_s = 0.0
        chosen: FaultRule | None = None
        for index, rule in enumerate(self.rules):
            if chosen is not None and rule.terminal:
                continue
            if not self._fires(index, rule, to_digits):
                continue
            delay_s += self._latency_s(rule)
            if rule.terminal:
                chosen = rule
        return FaultDecision(delay_s=delay_s, rule=chosen)

    def _fires(self, index: int, rule: FaultRule, to_digits: str) -> bool:
        if not rule.matches(to_digits):
            return False
        if rule.times is not None and self._fired[index] >= rule.times:
            return False
        if rule.probability < 1.0 and self._rng.random() >= rule.probability:
            return False
        self._fired[index] += 1
        return True

    def _latency_s(self, rule: FaultRule) -> float:
        latency = rule.latency_ms
        if latency is None:
            return 0.0
        if isinstance(latency, tuple):
            low, high = latency
            return (low if low == high else self._rng.uniform(low, high)) / 1000.0
        return float(latency) / 1000.0
