"""What each producer command does, as plain functions over the store and the queue.

Each returns a JSON-able dict (``{"success": true, ...}``) or raises a ``CampaignError``
that the CLI turns into one line and a non-zero exit.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import phonenumbers

from campaigns.domain.clock import SystemClock, iso_utc
from campaigns.domain.errors import InvalidInput, InvalidTransition, QueueUnavailable
from campaigns.domain.message import encode, new_batch
from campaigns.domain.models import (
    POPULATE_STATUSES,
    Action,
    Campaign,
    CampaignStatus,
    RecipientStatus,
    TemplateParam,
    new_campaign_id,
    validate_campaign_id,
)
from campaigns.domain.phones import InvalidPhone, normalise
from campaigns.engine.executor import complete_if_done
from campaigns.operator.csvfile import iter_rows, validate
from campaigns.ports import Clock, OperatorStore, RecipientBulk, SendQueue
from campaigns.settings import MAX_SQS_BATCH, Settings

TOTAL_EVERY = 1000  # add to totalRecipients once per this many written (one write, not 40)
KEY_BATCH = 50  # phones per existence check: 50 recipient + 50 suppression keys = one BatchGet
MAX_INVALID_LISTED = 1000  # the report lists this many invalid rows; the count covers all
LOCK_RENEW_S = 60.0
RECONCILE_SETTLE_S = 1.0  # a counter ADD still in flight lands within this long
COUNT_TOKEN_IDLE_S = 3600.0  # a batch thread's counter token idle this long is pruned


@dataclass
class Producer:
    settings: Settings
    store: OperatorStore
    bulk: RecipientBulk
    queue_factory: Callable[[], SendQueue]
    clock: Clock = field(default_factory=SystemClock)
    _queue: SendQueue | None = None

    @property
    def queue(self) -> SendQueue:
        if self._queue is None:
            self._queue = self.queue_factory()
        return self._queue

    # -- campaigns -----------------------------------------------------------------------

    def create(
        self, name: str, template: str, language: str, parameter_format: str
    ) -> dict[str, Any]:
        if not name.strip():
            raise InvalidInput("--name must not be empty")
        if not template.strip():
            raise InvalidInput("--template must not be empty")
        if not language.strip():
            raise InvalidInput("--language must not be empty")
        campaign = Campaign(
            campaign_id=new_campaign_id(),
            name=name.strip(),
            template_name=template.strip(),
            template_language=language.strip(),
            status=CampaignStatus.DRAFT,
            parameter_format=parameter_format,
            created_at=iso_utc(self.clock.now()),
        )
        self.store.create_campaign(campaign)
        return {"success": True, "campaignId": campaign.campaign_id}

    def get(self, campaign_id: str) -> Campaign:
        return self.store.require_campaign(validate_campaign_id(campaign_id))

    def status(self, campaign_id: str) -> dict[str, Any]:
        return {"success": True, **self.get(campaign_id).to_public()}

    def list_campaigns(self) -> dict[str, Any]:
        campaigns = [
            {
                "campaignId": c.campaign_id,
                "name": c.name,
                "status": c.status.value,
                "totalRecipients": c.total_recipients,
                "progress": c.progress_percent,
                "createdAt": c.created_at,
            }
            for c in self.store.list_campaigns()
        ]
        return {"success": True, "campaigns": campaigns}

    # -- populate ------------------------------------------------------------------------

    def populate(self, campaign_id: str, path: Path, default_region: str) -> dict[str, Any]:
        if default_region.upper() not in phonenumbers.SUPPORTED_REGIONS:
            raise InvalidInput(f"Unknown --default-region {default_region!r} (use e.g. IN, US)")
        default_region = default_region.upper()
        campaign = self.get(campaign_id)
        if campaign.status not in POPULATE_STATUSES:
            raise InvalidInput(
                f"Campaign status is {campaign.status.value}: cannot populate "
                "(only DRAFT or PAUSED campaigns take recipients)"
            )
        validate(path)  # a whole pass first: a malformed file writes nothing
        token = uuid.uuid4().hex
        self.store.lock_import(campaign_id, token, self.clock.now())
        report = _PopulateReport()
        try:
            self._import(campaign_id, path, default_region, token, report)
        finally:
            try:
                self._count_total(campaign_id, report)  # what was written, even on failure
            finally:
                self.store.unlock_import(campaign_id, token)
        return {"success": True, **report.public()}

    def _import(
        self, campaign_id: str, path: Path, region: str, token: str, report: _PopulateReport
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
                self._flush(campaign_id, batch, report)
                batch = []
                if report.uncounted >= TOTAL_EVERY:
                    self._count_total(campaign_id, report)
                if time.monotonic() - renewed > LOCK_RENEW_S:
                    self.store.lock_import(campaign_id, token, self.clock.now())
                    renewed = time.monotonic()
        self._flush(campaign_id, batch, report)

    def _flush(
        self,
        campaign_id: str,
        batch: list[tuple[str, tuple[TemplateParam, ...]]],
        report: _PopulateReport,
    ) -> None:
        if not batch:
            return
        existing, suppressed = self.bulk.known(campaign_id, [phone for phone, _ in batch])
        fresh = [(p, params) for p, params in batch if p not in existing and p not in suppressed]
        report.duplicates += sum(1 for p, _ in batch if p in existing)
        report.suppressed += sum(1 for p, _ in batch if p in suppressed and p not in existing)
        written = self.bulk.write_pending(campaign_id, fresh)
        report.inserted += written
        report.uncounted += written

    def _count_total(self, campaign_id: str, report: _PopulateReport) -> None:
        if report.uncounted:
            self.store.add_total(campaign_id, report.uncounted)
            report.uncounted = 0

    # -- transitions and the queue -------------------------------------------------------

    def transition(self, campaign_id: str, action: Action) -> dict[str, Any]:
        validate_campaign_id(campaign_id)
        reason = "Paused by operator" if action is Action.PAUSE else None
        campaign = self.store.transition(campaign_id, action, pause_reason=reason)
        result: dict[str, Any] = {"success": True, "newStatus": campaign.status.value}
        if action in (Action.START, Action.RESUME):
            try:
                batches, recipients = self._enqueue(campaign_id)
            except QueueUnavailable as exc:
                raise QueueUnavailable(
                    f"{exc}; the campaign is RUNNING but not every batch was enqueued: "
                    f"run `campaign-producer enqueue {campaign_id}`"
                ) from None
            result |= {"enqueuedBatches": batches, "enqueuedRecipients": recipients}
            if recipients == 0 and self.complete_if_done(campaign_id):
                result["newStatus"] = CampaignStatus.COMPLETED.value
        return result

    def enqueue(self, campaign_id: str) -> dict[str, Any]:
        campaign = self.get(campaign_id)
        if campaign.status is not CampaignStatus.RUNNING:
            raise InvalidTransition(campaign.status.value, "enqueue")
        batches, recipients = self._enqueue(campaign_id)
        completed = recipients == 0 and self.complete_if_done(campaign_id)
        return {
            "success": True,
            "enqueuedBatches": batches,
            "enqueuedRecipients": recipients,
            "completed": completed,
        }

    def _pending_batches(self, campaign_id: str) -> Iterator[list[str]]:
        phones: list[str] = []
        for recipient in self.store.iter_recipients(campaign_id, RecipientStatus.PENDING):
            phones.append(recipient.phone)
            if len(phones) == self.settings.batch_size:
                yield phones
                phones = []
        if phones:
            yield phones

    def _enqueue(self, campaign_id: str) -> tuple[int, int]:
        """One message per batch of up to BATCH_SIZE PENDING recipients, 10 per SendMessageBatch.
        Holds O(batch) memory; duplicates are harmless (the claim step refuses them)."""
        bodies: list[str] = []
        batches = recipients = 0
        for phones in self._pending_batches(campaign_id):
            bodies.append(encode(new_batch(campaign_id, phones)))
            batches += 1
            recipients += len(phones)
            if len(bodies) == MAX_SQS_BATCH:
                self.queue.send(bodies)
                bodies = []
        if bodies:
            self.queue.send(bodies)
        return batches, recipients

    def complete_if_done(self, campaign_id: str) -> bool:
        return complete_if_done(self.store, campaign_id) is not None

    # -- repair --------------------------------------------------------------------------

    def reconcile(self, campaign_id: str | None) -> dict[str, Any]:
        if campaign_id is not None:
            self.get(campaign_id)
            ids = [campaign_id]
        else:
            ids = [
                c.campaign_id
                for c in self.store.list_campaigns()
                if c.status in (CampaignStatus.RUNNING, CampaignStatus.PAUSED)
            ]
        return {"success": True, "campaigns": [self._reconcile_one(cid) for cid in ids]}

    def _reconcile_one(self, campaign_id: str) -> dict[str, Any]:
        now = self.clock.now()
        expired = 0
        for recipient in self.store.iter_recipients(campaign_id, RecipientStatus.SENDING):
            if recipient.lease_expired(now) and self.store.expire_lease(recipient, now):
                self.store.add_counts(campaign_id, unknown=1)
                expired += 1
        repaired: dict[str, dict[str, int]] = {}
        for _ in range(10):
            counts = self.store.count_statuses(campaign_id)
            campaign = self.get(campaign_id)
            wanted = {
                "sentCount": (campaign.sent_count, counts[RecipientStatus.SENT]),
                "failedCount": (campaign.failed_count, counts[RecipientStatus.FAILED]),
                "unknownCount": (campaign.unknown_count, counts[RecipientStatus.UNKNOWN]),
                "totalRecipients": (campaign.total_recipients, counts.total),
            }
            wrong = {name: pair for name, pair in wanted.items() if pair[0] != pair[1]}
            if not wrong:
                break
            # A consumer may be between its recipient commit and its counter ADD: only repair
            # what stays wrong after that ADD had time to land.
            self.clock.sleep(RECONCILE_SETTLE_S)
            if (
                self.store.count_statuses(campaign_id) != counts
                or self.get(campaign_id) != campaign
            ):
                continue
            moved = False
            for name, (old, new) in wrong.items():
                if self.store.set_counter(campaign_id, name, old, new):
                    repaired[name] = {"from": old, "to": new}
                else:
                    moved = True
            if not moved:
                break
        self.store.prune_count_tokens(campaign_id, COUNT_TOKEN_IDLE_S)
        completed = False
        reenqueued = 0
        campaign = self.get(campaign_id)
        if campaign.status is CampaignStatus.RUNNING:
            completed = self.complete_if_done(campaign_id)
            if not completed and self.queue.depth() == (0, 0):
                # RUNNING with PENDING recipients and not one message anywhere in the queue:
                # their messages were lost (or dead-lettered). Duplicates would be harmless.
                _, reenqueued = self._enqueue(campaign_id)
        return {
            "campaignId": campaign_id,
            "expiredLeases": expired,
            "repairedCounters": repaired,
            "reenqueuedRecipients": reenqueued,
            "completed": completed,
            "status": self.get(campaign_id).status.value,
        }

    def requeue_unknown(self, campaign_id: str) -> dict[str, Any]:
        campaign = self.get(campaign_id)
        if campaign.status in (CampaignStatus.COMPLETED, CampaignStatus.CANCELLED):
            raise InvalidTransition(campaign.status.value, "requeue-unknown")
        requeued = 0
        for recipient in self.store.iter_recipients(campaign_id, RecipientStatus.UNKNOWN):
            if self.store.requeue_unknown(recipient):
                self.store.add_counts(campaign_id, unknown=-1)
                requeued += 1
        result: dict[str, Any] = {"success": True, "requeued": requeued}
        if requeued and campaign.status is CampaignStatus.RUNNING:
            batches, _ = self._enqueue(campaign_id)
            result["enqueuedBatches"] = batches
        return result


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
