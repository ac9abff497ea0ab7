"""Human-readable output: progress bars and key/value blocks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from campaigns.domain.models import Campaign

BAR_WIDTH = 30
# Keys of a result whose values are ratios (0..1): printed as percentages.
RATE_KEYS = frozenset({"deliveryRate", "readRate"})


def percent(rate: float | None) -> str:
    """``0.6667`` → ``66.7%``; None (nothing to divide by yet) → ``-``."""
    return "-" if rate is None else f"{100.0 * rate:.1f}%"


def delivery_words(campaign: Campaign) -> str:
    """What the status webhooks said: ``delivered 5  read 3  delivery-failed 1  held 0
    delivery 83.3%  read rate 60.0%``."""
    return (
        f"delivered {campaign.delivered_count}  read {campaign.read_count}  "
        f"delivery-failed {campaign.delivery_failed_count}  held {campaign.held_count}  "
        f"delivery {percent(campaign.delivery_rate)}  read rate {percent(campaign.read_rate)}"
    )


def failure_words(failures: dict[str, int]) -> str:
    """``META_131026 2, META_131049 1`` (by code, as counted); ``-`` with none."""
    return ", ".join(f"{code} {count}" for code, count in failures.items()) or "-"


def cost_lines(cost: dict[str, Any] | None) -> list[str]:
    """``cost`` of ``status`` in words: the estimate, then one line per category and
    country (``marketing +91: 5 x 0.0107 = 0.0535``); unpriced ones say so."""
    if cost is None:
        return ["cost: - (no PRICES_FILE)"]
    currency = f" {cost['currency']}" if cost.get("currency") else ""
    unpriced = f"  ({cost['unpriced']} billable without a price)" if cost["unpriced"] else ""
    lines = [f"cost: {cost['estimated']}{currency} estimated{unpriced}"]
    for line in cost["lines"]:
        where = f"{line['category']} +{line['callingCode']}: {line['count']}"
        if line["unitPrice"] is None:
            lines.append(f"  - {where} x no price")
        else:
            lines.append(f"  - {where} x {line['unitPrice']} = {line['cost']}")
    return lines


def progress_bar(campaign: Campaign, width: int = BAR_WIDTH) -> str:
    total = campaign.total_recipients
    done = total - campaign.pending_count
    filled = int(width * done / total) if total else (width if done else 0)
    bar = "█" * filled + "░" * (width - filled)
    return (
        f"[{bar}] {campaign.progress_percent:5.1f}%  {done}/{total}  "
        f"sent {campaign.sent_count}  failed {campaign.failed_count}  "
        f"unknown {campaign.unknown_count}  {delivery_words(campaign)}  "
        f"{campaign.status.value}"
    )


def render(result: dict[str, Any]) -> str:
    """A plain rendering of a command's result for people (``--json`` prints it as is)."""
    lines: list[str] = []
    for key, value in result.items():
        if key == "success":
            continue
        special = _SPECIAL.get(key)
        if special is not None:
            lines.extend(special(value))
        elif isinstance(value, list):
            lines.append(f"{key}: {len(value)}")
            for entry in value[:20]:
                lines.append("  - " + _inline(entry))
            if len(value) > 20:
                lines.append(f"  … {len(value) - 20} more")
        elif isinstance(value, dict):
            lines.append(f"{key}: {_inline(value) if value else '-'}")
        elif key in RATE_KEYS and (value is None or isinstance(value, float | int)):
            lines.append(f"{key}: {percent(value)}")
        else:
            lines.append(f"{key}: {'-' if value is None else value}")
    return "\n".join(lines)


def _billable_lines(billable: list[dict[str, Any]]) -> list[str]:
    counts = [f"{b['category']} +{b['callingCode']} {b['count']}" for b in billable]
    return [f"billable: {', '.join(counts) or '-'}"]


# Keys of ``status`` rendered in words of their own.
_SPECIAL: dict[str, Callable[[Any], list[str]]] = {
    "cost": cost_lines,
    "deliveryFailures": lambda failures: [f"deliveryFailures: {failure_words(failures)}"],
    "billable": _billable_lines,
}


def _inline(value: Any) -> str:
    if isinstance(value, dict):
        return "  ".join(f"{k}={_inline(v)}" for k, v in value.items())
    return str(value)
