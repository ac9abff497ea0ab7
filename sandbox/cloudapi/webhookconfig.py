"""How the emulator delivers status webhooks: where, signed with what, how fast, how often
out of order or duplicated, and how it retries. ``time_scale`` multiplies every wait (status
delays and retry back-off), so tests run the realistic shape in milliseconds."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any
from urllib.parse import urlsplit

SANDBOX_APP_SECRET = "sandbox-app-secret"  # noqa: S105 - a local placeholder, not a secret
SANDBOX_WABA_ID = "102290129340398"
SANDBOX_DISPLAY_PHONE_NUMBER = "15550783881"
DELAY_FIELDS = ("sent_delay_s", "delivered_delay_s", "read_delay_s", "duplicate_delay_s")
PROBABILITY_FIELDS = (
    "read_share",
    "duplicate_probability",
    "out_of_order_probability",
    "read_without_delivered_probability",
    "batch_probability",
)
MAX_BATCH = 100  # statuses in one POST; Meta batches a handful


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class WebhookConfig:
    """Every knob of the webhook delivery; ``url=None`` delivers nothing (the default)."""

    url: str | None = None
    app_secret: str = SANDBOX_APP_SECRET
    waba_id: str = SANDBOX_WABA_ID
    display_phone_number: str = SANDBOX_DISPLAY_PHONE_NUMBER
    time_scale: float = 1.0
    sent_delay_s: tuple[float, float] = (0.5, 2.0)  # after the accept
    delivered_delay_s: tuple[float, float] = (1.0, 5.0)  # after sent
    read_delay_s: tuple[float, float] = (5.0, 60.0)  # after delivered
    duplicate_delay_s: tuple[float, float] = (0.0, 2.0)  # a copy after its original
    read_share: float = 0.7  # the share of users who ever read; the others never do
    duplicate_probability: float = 0.02  # per status
    out_of_order_probability: float = 0.05  # per message: its statuses arrive newest first
    read_without_delivered_probability: float = 0.05  # per read message: no delivered at all
    batch_probability: float = 0.3  # per POST: it takes every ready status (up to max_batch)
    max_batch: int = 10
    retry_attempts: int = 8  # POSTs of one body at most, the first included
    retry_base_s: float = 1.0  # back-off before the 2nd attempt; doubles after each
    retry_max_total_s: float = 600.0  # the back-offs of one POST add up to at most this
    request_timeout_s: float = 5.0  # one POST (never scaled)
    queue_cap: int = 10_000  # statuses and events waiting; more are dropped and counted

    def __post_init__(self) -> None:
        if self.url is not None:
            parts = urlsplit(self.url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"webhook url must be http(s)://host[:port]/path: {self.url!r}")
        for name in ("app_secret", "waba_id", "display_phone_number"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ValueError(f"{name} must be a non-empty string")
        for name in ("time_scale", "retry_base_s", "retry_max_total_s"):
            if not _number(getattr(self, name)) or getattr(self, name) < 0:
                raise ValueError(f"{name} must be a non-negative number")
        if not _number(self.request_timeout_s) or self.request_timeout_s <= 0:
            raise ValueError("request_timeout_s must be positive")
        self._check_delays_and_probabilities()
        for name, low, high in (
            ("max_batch", 1, MAX_BATCH),
            ("retry_attempts", 1, 1000),
            ("queue_cap", 1, 10_000_000),
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise ValueError(f"{name} must be an integer in [{low}, {high}]")

    def _check_delays_and_probabilities(self) -> None:
        for name in DELAY_FIELDS:
            low_high = getattr(self, name)
            if not (
                isinstance(low_high, tuple)
                and len(low_high) == 2
                and all(_number(v) for v in low_high)
                and 0 <= low_high[0] <= low_high[1]
            ):
                raise ValueError(f"{name} must be a [min, max] pair with 0 <= min <= max")
        for name in PROBABILITY_FIELDS:
            value = getattr(self, name)
            if not _number(value) or not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a number in [0, 1]")

    @property
    def enabled(self) -> bool:
        return self.url is not None

    def updated(self, changes: Mapping[str, Any]) -> WebhookConfig:
        """A copy with ``changes`` (JSON form: pairs as lists); ``ValueError`` on bad ones."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown webhook option(s): {', '.join(map(str, unknown))}")
        values: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in changes.items()
        }
        try:
            return replace(self, **values)
        except TypeError as exc:
            raise ValueError(str(exc)) from exc

    def to_public(self) -> dict[str, Any]:
        """The JSON form the control API shows: everything but the app secret."""
        shown = asdict(self)
        del shown["app_secret"]
        return {k: list(v) if isinstance(v, tuple) else v for k, v in shown.items()}
