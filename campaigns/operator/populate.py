"""``populate``: recipients from a CSV file, streamed, deduplicated and checked against the
campaign and the suppression list in batches, under the campaign's import lock."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import phonenumbers

from campaigns.domain.errors import InvalidInput
from campaigns.domain.models import POPULATE_STATUSES, TemplateParam
from campaigns.domain.phones import InvalidPhone, normalise
from campaigns.operator.csvfile import iter_rows, validate

if TYPE_CHECKING:
    from campaigns.operator.commands import Producer

TOTAL_EVERY = 1000  # add to totalRecipients once per this many written (one write, not 40)
KEY_BATCH = 50  # phones per existence check: 50 recipient + 50 suppression keys = one BatchGet
MAX_INVALID_LISTED = 1000  # the report lists this many invalid rows; the count covers all
LOCK_RENEW_S = 60.0


def populate(op: Producer, campaign_id: str, path: Path, default_region: str) -> dict[str, Any]:
    if default_region.upper() not in phonenumbers.SUPPORTED_REGIONS:
        raise InvalidInput(f"Unknown --default-region {default_region!r} (use e.g. IN, US)")
    default_region = default_region.upper()
    campaign = op.get(campaign_id)
    if campaign.status not in POPULATE_STATUSES:
        raise InvalidInput(
            f"Campaign status is {campaign.status.value}: cannot populate "
            "(only DRAFT or PAUSED campaigns take recipients)"
        )
    validate(path)  # a whole pass first: a malformed file writes nothing
    token = uuid.uuid4().hex
    op.store.lock_import(campaign_id, token, op.clock.now())
    report = _PopulateReport()
    try:
        _import(op, campaign_id, path, default_region, token=token, report=report)
    finally:
        try:
            _count_total(op, campaign_id, report)  # what was written, even on failure
        finally:
            op.store.unlock_import(campaign_id, token)
    return {"success": True, **report.public()}


def _import(
    op: Producer, campaign_id: str, path: Path, region: str, *, token: str, report: _PopulateReport
) -> None:
    seen: set[int] = set()  # ~60-70 bytes per number: the only state that grows
    batch: list[tuple[str, tuple[TemplateParam, ...]]] = []
    renewed = time.monotonic()
    for row in iter_rows(path):
        try:
            phone = normalise(row.phone, region)
        except InvalidPhone as exc:
            report.invalid(row.line, row.phone, exc.reason)
            continue
        if int(phone) in seen:
            report.duplicates += 1
            continue
        seen.add(int(phone))
        batch.append((phone, row.params))
        if len(batch) >= KEY_BATCH:
            _flush(op, campaign_id, batch, report)
            batch = []
            if report.uncounted >= TOTAL_EVERY:
                _count_total(op, campaign_id, report)
            if time.monotonic() - renewed > LOCK_RENEW_S:
                op.store.lock_import(campaign_id, token, op.clock.now())
                renewed = time.monotonic()
    _flush(op, campaign_id, batch, report)


def _flush(
    op: Producer,
    campaign_id: str,
    batch: list[tuple[str, tuple[TemplateParam, ...]]],
    report: _PopulateReport,
) -> None:
    if not batch:
        return
    existing, suppressed = op.bulk.known(campaign_id, [phone for phone, _ in batch])
    fresh = [(p, params) for p, params in batch if p not in existing and p not in suppressed]
    report.duplicates += sum(1 for p, _ in batch if p in existing)
    report.suppressed += sum(1 for p, _ in batch if p in suppressed and p not in existing)
    written = op.bulk.write_pending(campaign_id, fresh)
    report.inserted += written
    report.uncounted += written


def _count_total(op: Producer, campaign_id: str, report: _PopulateReport) -> None:
    if report.uncounted:
        op.store.add_total(campaign_id, report.uncounted)
        report.uncounted = 0


@dataclass
class _PopulateReport:
    inserted: int = 0
    duplicates: int = 0
    suppressed: int = 0
    invalid_count: int = 0
    invalid_rows: list[dict[str, Any]] = field(default_factory=list)
    uncounted: int = 0  # written but not yet added to totalRecipients

    def invalid(self, line: int, value: str, reason: str) -> None:
        self.invalid_count += 1
        if len(self.invalid_rows) < MAX_INVALID_LISTED:
            self.invalid_rows.append({"line": line, "value": value, "reason": reason})

    def public(self) -> dict[str, Any]:
        return {
            "inserted": self.inserted,
            "duplicates": self.duplicates,
            "suppressed": self.suppressed,
            "invalidCount": self.invalid_count,
            "invalid": self.invalid_rows,
        }
