"""The CLI's rich views: the live status, the campaign and recipient tables, the dead letters,
and ``reconcile`` in words. Every view fits the console's width (cells fold, nothing runs
past the edge); on a console that is not a terminal the tables are plain aligned text."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich import box
from rich.console import Console, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from campaigns.domain.models import Campaign, CampaignStatus
from producer.display import delivery_words, failure_words

STATUS_STYLES = {
    CampaignStatus.DRAFT.value: "dim",
    CampaignStatus.RUNNING.value: "bold green",
    CampaignStatus.PAUSED.value: "bold yellow",
    CampaignStatus.COMPLETED.value: "bold blue",
    CampaignStatus.CANCELLED.value: "bold red",
}


WHOLE_COLUMNS = frozenset({"campaign", "status", "phone"})


def status_view(campaign: Campaign) -> RenderableType:
    """The live view of ``status --watch``: a bar as wide as the console and the counters
    as text that wraps, so a redraw in a narrow terminal never leaves a stale row."""
    total = campaign.total_recipients
    done = total - campaign.pending_count
    title = Text.assemble(
        (campaign.status.value, STATUS_STYLES.get(campaign.status.value, "")),
        "  ",
        campaign.name,
        "  ",
        (campaign.campaign_id, "dim"),
        overflow="fold",
    )
    bar = ProgressBar(total=float(max(total, 1)), completed=float(done if total else 0))
    counters = Text(
        f"{campaign.progress_percent:5.1f}%  {done}/{total}  sent {campaign.sent_count}  "
        f"failed {campaign.failed_count}  unknown {campaign.unknown_count}  "
        f"pending {campaign.pending_count}",
        overflow="fold",
    )
    delivery = Text(delivery_words(campaign), overflow="fold")
    view = Table.grid(expand=True)  # one row each: a bar ends no line of its own
    view.add_column(overflow="fold")
    for part in (title, bar, counters, delivery):
        view.add_row(part)
    if campaign.delivery_failures:
        words = failure_words(campaign.delivery_failures)
        view.add_row(Text(f"delivery failures: {words}", style="red", overflow="fold"))
    if campaign.pause_reason:
        view.add_row(Text(f"paused: {campaign.pause_reason}", style="yellow", overflow="fold"))
    return view


def _table(console: Console, *columns: str) -> Table:
    terminal = console.is_terminal
    table = Table(
        box=box.SIMPLE_HEAD if terminal else None,
        show_edge=False,
        pad_edge=False,
        header_style="bold" if terminal else "",
    )
    for name in columns:
        whole = name in WHOLE_COLUMNS  # an id to copy: never folded (cut only if it must be)
        table.add_column(name, overflow="ellipsis" if whole else "fold", no_wrap=whole)
    return table


def _text(value: Any) -> str:
    return "-" if value is None or value == "" else str(value)


def _when(iso: str | None) -> str:
    """``2023-11-14T22:13:20.500Z`` as two short lines (date, time): narrow enough for 80."""
    if not iso:
        return "-"
    day, _, clock = iso.partition("T")
    return f"{day}\n{clock[:8]}Z" if clock else day


def campaigns_table(console: Console, campaigns: Sequence[dict[str, Any]]) -> Table:
    """One row per campaign: the id (whole, to copy), its name and creation time under it."""
    table = _table(console, "campaign", "status", "progress", "outcome")
    dim = "dim" if console.is_terminal else ""
    for c in campaigns:
        done = c["totalRecipients"] - c.get("pendingCount", 0)
        created = (c.get("createdAt") or "-").replace("T", " ")[:19]
        table.add_row(
            Text.assemble(c["campaignId"], "\n", c["name"], "\n", (created, dim)),
            Text(c["status"], style=STATUS_STYLES.get(c["status"], "")),
            f"{c['progress']:.1f}%\n{done}/{c['totalRecipients']}",
            f"sent {c['sentCount']}\nfailed {c['failedCount']}",
        )
    return table


def recipients_table(console: Console, rows: Sequence[dict[str, Any]]) -> Table:
    table = _table(console, "phone", "status", "tries", "error", "finished", "meaning")
    for r in rows:
        table.add_row(
            r["phone"],
            r["status"],
            str(r["attempts"]),
            _text(r["errorCode"] or r["unknownReason"]),
            _when(r["finishedAt"]),
            _text(r["errorMeaning"]),
        )
    return table


def dead_letters_table(console: Console, messages: Sequence[dict[str, Any]]) -> Table:
    table = _table(console, "message", "receives", "campaign", "recipients", "poison")
    for m in messages:
        poison = f"yes: {m.get('problem')}" if m.get("poison") else "no"
        table.add_row(
            m["messageId"],
            str(m["receiveCount"]),
            _text(m.get("campaignId") or m.get("body")),
            _text(m.get("recipients")),
            Text(poison, style="red" if m.get("poison") else ""),
        )
    return table


def redrive_words(result: dict[str, Any]) -> str:
    line = f"redriven {result['redriven']} message(s)"
    skipped = result.get("skippedPoison", 0)
    if skipped:
        line += (
            f"; skipped {skipped} poison message(s), left in the DLQ "
            "(see `dlq list`; --include-poison redrives them)"
        )
    return line


def reconcile_words(report: dict[str, Any]) -> str:
    """One line per campaign: ``cmp_…: repaired sentCount 3 → 4; expired 2 leases; completed``."""
    lines = []
    for one in report["campaigns"]:
        parts = []
        repaired = one["repairedCounters"]
        if repaired:
            changes = ", ".join(f"{name} {v['from']} → {v['to']}" for name, v in repaired.items())
            parts.append(f"repaired {changes}")
        if one["expiredLeases"]:
            parts.append(f"expired {one['expiredLeases']} lease(s)")
        if one["reenqueuedRecipients"]:
            parts.append(f"re-enqueued {one['reenqueuedRecipients']} recipient(s)")
        if one["completed"]:
            parts.append("completed")
        words = "; ".join(parts) if parts else "nothing to repair"
        lines.append(f"{one['campaignId']}: {words} (status {one['status']})")
    return "\n".join(lines) if lines else "no RUNNING or PAUSED campaign to reconcile"
