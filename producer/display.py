"""Human-readable output: progress bars and key/value blocks."""

from __future__ import annotations

from typing import Any

from campaigns.domain.models import Campaign

BAR_WIDTH = 30
# Keys of a result whose values are ratios (0..1): printed as percentages.
RATE_KEYS = frozenset({"deliveryRate", "readRate"})


def percent(rate: float | None) -> str:
    """``0.6667`` → ``66.7%``; None (nothing to divide by yet) → ``-``."""
    return "-" if rate is None else f"{100.0 * rate:.1f}%"


def delivery_words(campaign: Campaign) -> str:
    """What the status webhooks said: ``delivered 5  read 3  delivery-failed 1  delivery
    83.3%  read 60.0%``."""
    return (
        f"delivered {campaign.delivered_count}  read {campaign.read_count}  "
        f"delivery-failed {campaign.delivery_failed_count}  "
        f"delivery {percent(campaign.delivery_rate)}  read rate {percent(campaign.read_rate)}"
    )


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
        if isinstance(value, list):
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


def _inline(value: Any) -> str:
    if isinstance(value, dict):
        return "  ".join(f"{k}={_inline(v)}" for k, v in value.items())
    return str(value)
