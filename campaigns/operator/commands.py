"""The operator core: what each ``campaign-producer`` command does, over ports only.

``Producer`` holds the ports (built for real in ``campaigns.wiring.build_operator``, in memory
by the tests) and offers one method per command; the work lives in one module per job:
``campaigns`` (records, the newest-first list, transitions), ``recipients`` (pages and the
CSV export), ``populate`` (the CSV import), ``batches`` (enqueue and execute-batch), ``repair``
(reconcile and requeue-unknown), ``dlq``.

Each returns a JSON-able dict (``{"success": true, ...}``) or raises a ``CampaignError``
that the CLI turns into one line and a non-zero exit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

from campaigns.domain import meanings
from campaigns.domain.clock import SystemClock
from campaigns.domain.errors import ConfigError
from campaigns.domain.models import (
    Action,
    Campaign,
    CampaignStatus,
    RecipientStatus,
    validate_campaign_id,
)
from campaigns.domain.pricing import PriceTable
from campaigns.operator import batches, campaigns, dlq, populate, recipients, repair
from campaigns.operator.batches import BatchRunner
from campaigns.operator.prices import load_prices
from campaigns.ports import BatchQueue, Clock, OperatorStore, RecipientBulk, SendQueue
from campaigns.settings import Settings


class Provisioned(Protocol):
    """What ``init`` created or found (``campaigns.aws.provision.Provisioned``)."""

    @property
    def campaigns_table(self) -> str: ...
    @property
    def recipients_table(self) -> str: ...
    @property
    def queue_url(self) -> str: ...
    @property
    def dlq_url(self) -> str: ...
    @property
    def created(self) -> tuple[str, ...]: ...


def _not_wired(what: str) -> Callable[[], Any]:
    def refuse() -> Any:
        raise ConfigError(f"this operator core was built without {what}")

    return refuse


@dataclass
class Producer:
    settings: Settings
    store: OperatorStore
    bulk: RecipientBulk
    queue_factory: Callable[[], SendQueue]
    clock: Clock = field(default_factory=SystemClock)
    dead_letter_factory: Callable[[], BatchQueue] = field(
        default_factory=lambda: _not_wired("a dead-letter queue")
    )
    executor_factory: Callable[[], BatchRunner] = field(
        default_factory=lambda: _not_wired("a batch executor")
    )
    provisioner: Callable[[], Provisioned] = field(
        default_factory=lambda: _not_wired("a provisioner")
    )
    _queue: SendQueue | None = None

    @property
    def queue(self) -> SendQueue:
        """The batch queue, resolved on first use (most commands never need it)."""
        if self._queue is None:
            self._queue = self.queue_factory()
        return self._queue

    def get(self, campaign_id: str) -> Campaign:
        return self.store.require_campaign(validate_campaign_id(campaign_id))

    # -- one method per command --------------------------------------------------------------

    def init(self) -> dict[str, Any]:
        done = self.provisioner()
        return {
            "success": True,
            "campaignsTable": done.campaigns_table,
            "recipientsTable": done.recipients_table,
            "queueUrl": done.queue_url,
            "dlqUrl": done.dlq_url,
            "created": list(done.created),
        }

    def create(
        self, name: str, template: str, language: str, parameter_format: str
    ) -> dict[str, Any]:
        return campaigns.create(self, name, template, language, parameter_format)

    def status(self, campaign_id: str) -> dict[str, Any]:
        """The counters; ``cost`` is the estimate from PRICES_FILE (None without one)."""
        campaign = self.get(campaign_id)
        table = self.prices
        cost = None if table is None else table.estimate(campaign.billed).to_public()
        return {"success": True, **campaign.to_public(), "cost": cost}

    @cached_property
    def prices(self) -> PriceTable | None:
        """PRICES_FILE, read once per process (``ConfigError`` if it is not a table)."""
        path = self.settings.prices_file
        return None if path is None else load_prices(path)

    def list_campaigns(
        self, status: CampaignStatus | None = None, limit: int = 20, cursor: str | None = None
    ) -> dict[str, Any]:
        """Newest first, ``limit`` (1..200) a page; ``nextCursor`` resumes after the page."""
        return campaigns.list_campaigns(self, status, limit, cursor)

    def recipients(
        self,
        campaign_id: str,
        status: RecipientStatus | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        """One page (``limit`` 1..500) of the campaign's recipients in key order."""
        return recipients.page(self, campaign_id, status, limit, cursor)

    def export_recipients(
        self, campaign_id: str, status: RecipientStatus | None = None
    ) -> Iterator[str]:
        """CSV text chunks (a header, then the rows page by page); the campaign is checked
        before this returns."""
        return recipients.export(self, campaign_id, status)

    @staticmethod
    def error_meaning(code: str | None) -> str | None:
        return meanings.error_meaning(code)

    def populate(self, campaign_id: str, path: Path, default_region: str) -> dict[str, Any]:
        return populate.populate(self, campaign_id, path, default_region)

    def transition(self, campaign_id: str, action: Action) -> dict[str, Any]:
        return campaigns.transition(self, campaign_id, action)

    def enqueue(self, campaign_id: str) -> dict[str, Any]:
        return batches.enqueue(self, campaign_id)

    def execute_batch(self, campaign_id: str) -> dict[str, Any]:
        return batches.execute_batch(self, campaign_id)

    def complete_if_done(self, campaign_id: str) -> bool:
        return batches.complete_if_done(self, campaign_id)

    def reconcile(self, campaign_id: str | None) -> dict[str, Any]:
        return repair.reconcile(self, campaign_id)

    def requeue_unknown(self, campaign_id: str, *, confirmed: bool = True) -> dict[str, Any]:
        return repair.requeue_unknown(self, campaign_id, confirmed=confirmed)

    def dlq_list(self, limit: int) -> dict[str, Any]:
        """Peek at dead letters: phones masked, each marked ``poison`` or not."""
        messages = dlq.list_dead(self.dead_letter_factory(), self.store, limit)
        return {"success": True, "messages": messages}

    def dlq_redrive(self, limit: int, include_poison: bool = False) -> dict[str, Any]:
        """Back to the main queue; poison stays in the DLQ unless ``include_poison``."""
        dead = self.dead_letter_factory()
        moved = dlq.redrive(dead, self.queue, self.store, limit, include_poison=include_poison)
        return {"success": True, **moved}
