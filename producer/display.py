"""Human-readable output: progress bars and key/value blocks."""

from __future__ import annotations

from typing import Any

from campaigns.domain.models import Campaign

BAR_WIDTH = 30


def progress_bar(campaign: Campaign, width: int = BAR_WIDTH) -> str:
    total = campaign.total_recipients
    done = total - campaign.pending_count
    filled = int(width * done / total) if total else (width if done else 0)
    bar = "█" * filled + "░" * (width - filled)
    return (
        f"[{bar}] {campaign.progress_percent:5.1f}%  {done}/{total}  "
        f"sent {campaign.sent_count}  failed {campaign.failed_count}  "
        f"unknown {campaign.unknown_count}  {campaign.status.value}"
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
        else:
            lines.append(f"{key}: {'-' if value is None else value}")
    return "\n".join(lines)


def _inline(value: Any) -> str:
    if isinstance(value, dict):
        return "  ".join(f"{k}={_inline(v)}" for k, v in value.items())
    return str(value)
