"""structlog configuration: JSON in production, console on a TTY; phones masked, no secrets.

Masking is by name (a ``phone``/``to``/``recipient`` field is masked whole, a secret's value
never printed) and then by value (``campaigns.domain.redaction``: a wamid, a BSUID or a phone number
anywhere in any field, nested values and the rendered traceback included)."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from campaigns.domain.phones import mask
from campaigns.domain.redaction import mask_value

_PHONE_KEYS = frozenset({"phone", "to", "recipient"})
_SECRET_KEYS = frozenset({"token", "access_token", "meta_access_token", "authorization"})
# Identifiers this system makes itself, never personal: not masked by value (a consumer id
# ``host:1234567:5f0c1d2e`` holds a pid, a batch id may be digits that look like a number).
_OWN_IDS = frozenset({"consumer", "owner", "campaign_id", "batch_id", "timestamp", "level"})


def _redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event):
        lowered = key.lower()
        if lowered in _PHONE_KEYS and isinstance(event[key], str | int):
            event[key] = mask(str(event[key]))
        elif lowered in _SECRET_KEYS:
            event[key] = "***"
    return event


def _mask_values(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Every field's value (the event name and the rendered traceback included) masked by
    value: runs after ``format_exc_info``, so a traceback's text is masked too."""
    for key in list(event):
        if key not in _OWN_IDS:
            event[key] = mask_value(event[key])
    return event


def configure(
    log_format: str = "json", level: str = "info", static: dict[str, Any] | None = None
) -> None:
    """Set up structlog once per process; ``static`` fields go on every event (the consumer
    id, so logs of many replicas can be told apart)."""
    fixed = dict(static or {})

    def _static(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        for key, value in fixed.items():
            event.setdefault(key, value)
        return event

    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
        if log_format == "console"
        else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            _static,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact,
            structlog.processors.format_exc_info,
            _mask_values,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def get_logger(**bindings: Any) -> Any:
    return structlog.get_logger().bind(**bindings)
