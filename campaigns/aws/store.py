"""``DynamoStore``: ``campaigns.ports.Store`` over the two existing tables, as one object.

A thin facade over the store's roles, each in its own module:

- ``campaign_records``: campaign items (create, read, list, transition), the import lock;
- ``suppressions``: the suppression list, a set of reasons per number (suppress, unsuppress,
  and the send path's batched check);
- ``counters``: the sharded, idempotent sent/failed/unknown counts and ``totalRecipients``;
- ``leases``: the recipient lease state machine (claim, record_attempt, release, commits,
  expire_lease, requeue_unknown);
- ``recipients``: reading a campaign's recipients;
- ``deliveries``: the status webhooks' writes (``campaigns.ports.DeliveryStore``): delivery
  reports merged into recipients and counters (one TransactWriteItems), the wamid lookup
  through the recipients table's GSI, the BSUID link.

All of them reach DynamoDB through ``campaigns.aws.dynamo`` (the edge), and the writes whose
loss would leave state wrong retry under ``campaigns.aws.retrying.store_writes``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from campaigns.aws.campaign_records import CampaignRecords
from campaigns.aws.counters import Counters
from campaigns.aws.deliveries import Deliveries
from campaigns.aws.dynamo import Table
from campaigns.aws.leases import Leases
from campaigns.aws.recipients import RecipientReads
from campaigns.aws.retrying import STORE_WRITE_ATTEMPTS, store_writes
from campaigns.aws.suppressions import Suppressions
from campaigns.domain.clock import SystemClock
from campaigns.domain.models import (
    Action,
    Campaign,
    CampaignStatus,
    Claim,
    DeliveryApplied,
    DeliveryReport,
    Recipient,
    RecipientStatus,
    StatusCounts,
)
from campaigns.ports import ClaimResult, Clock, CommitResult
from campaigns.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class DynamoStore:
    """Implements ``campaigns.ports.Store``, ``OperatorStore`` and ``DeliveryStore`` over the
    two existing tables.

    ``commit_attempts`` bounds our own retry loop on top of botocore's (``store_writes``);
    ``counter_shards`` overrides ``COUNTER_SHARDS``.
    """

    def __init__(
        self,
        client: DynamoDBClient,
        settings: Settings,
        clock: Clock | None = None,
        commit_attempts: int = STORE_WRITE_ATTEMPTS,
        counter_shards: int | None = None,
    ) -> None:
        self._db = client
        self._campaigns_table = settings.campaigns_table
        self._recipients_table = settings.recipients_table
        campaigns = Table(client, settings.campaigns_table)
        recipients = Table(client, settings.recipients_table)
        the_clock: Clock = clock or SystemClock()
        retry = store_writes(the_clock, commit_attempts)
        self._campaigns = CampaignRecords(campaigns, the_clock, retry)
        self._counters = Counters(
            campaigns, the_clock, retry, counter_shards or settings.counter_shards
        )
        self._leases = Leases(recipients, the_clock, retry)
        self._recipients = RecipientReads(recipients)
        self._suppressions = Suppressions(campaigns, the_clock, retry)
        self._deliveries = Deliveries(
            campaigns, recipients, the_clock, retry, counter_shards or settings.counter_shards
        )

    @property
    def client(self) -> DynamoDBClient:
        return self._db

    @property
    def campaigns_table(self) -> str:
        return self._campaigns_table

    @property
    def recipients_table(self) -> str:
        return self._recipients_table

    # -- campaigns ---------------------------------------------------------------------------

    def create_campaign(self, campaign: Campaign) -> Campaign:
        return self._campaigns.create_campaign(campaign)

    def get_campaign(self, campaign_id: str) -> Campaign | None:
        return self._campaigns.get_campaign(campaign_id)

    def require_campaign(self, campaign_id: str) -> Campaign:
        return self._campaigns.require_campaign(campaign_id)

    def list_campaigns(self) -> list[Campaign]:
        return self._campaigns.list_campaigns()

    def transition(
        self,
        campaign_id: str,
        action: Action,
        *,
        pause_reason: str | None = None,
        generation: int | None = None,
    ) -> Campaign:
        return self._campaigns.transition(
            campaign_id, action, pause_reason=pause_reason, generation=generation
        )

    def begin_requeue(self, campaign_id: str, until_s: float) -> None:
        self._campaigns.begin_requeue(campaign_id, until_s)

    def end_requeue(self, campaign_id: str) -> None:
        self._campaigns.end_requeue(campaign_id)

    def suppress(self, phone: str, reason: str) -> None:
        self._suppressions.suppress(phone, reason)

    def find_suppressed(self, phones: Sequence[str]) -> set[str]:
        return self._suppressions.find_suppressed(phones)

    def lock_import(self, campaign_id: str, token: str, now_s: float) -> None:
        self._campaigns.lock_import(campaign_id, token, now_s)

    def unlock_import(self, campaign_id: str, token: str) -> None:
        self._campaigns.unlock_import(campaign_id, token)

    # -- counters ----------------------------------------------------------------------------

    def add_counts(
        self,
        campaign_id: str,
        *,
        sent: int = 0,
        failed: int = 0,
        unknown: int = 0,
        held: int = 0,
        slot: str | None = None,
    ) -> Campaign | None:
        return self._counters.add_counts(
            campaign_id, sent=sent, failed=failed, unknown=unknown, held=held, slot=slot
        )

    def add_total(self, campaign_id: str, inserted: int) -> None:
        self._counters.add_total(campaign_id, inserted)

    def set_counter(self, campaign_id: str, name: str, expected: int | None, value: int) -> bool:
        return self._counters.set_counter(campaign_id, name, expected, value)

    def prune_count_tokens(self, campaign_id: str, older_than_s: float) -> int:
        return self._counters.prune_count_tokens(campaign_id, older_than_s)

    # -- recipients --------------------------------------------------------------------------

    def iter_recipients(
        self,
        campaign_id: str,
        status: RecipientStatus | None = None,
        page_size: int = 500,
        *,
        after: str | None = None,
    ) -> Iterator[Recipient]:
        return self._recipients.iter_recipients(campaign_id, status, page_size, after=after)

    def count_statuses(self, campaign_id: str) -> StatusCounts:
        return self._recipients.count_statuses(campaign_id)

    def claim(self, campaign_id: str, phone: str, owner: str, lease_until: float) -> ClaimResult:
        return self._leases.claim(campaign_id, phone, owner, lease_until)

    def record_attempt(self, claim: Claim, lease_until: float) -> Claim | None:
        return self._leases.record_attempt(claim, lease_until)

    def renew(self, claim: Claim, lease_until: float) -> Claim | None:
        return self._leases.renew(claim, lease_until)

    def release(self, claim: Claim, *, refund_attempt: bool, halted: bool = False) -> bool:
        return self._leases.release(claim, refund_attempt=refund_attempt, halted=halted)

    def commit_sent(
        self, claim: Claim, message_id: str, now_s: float, *, held: bool = False
    ) -> CommitResult:
        return self._leases.commit_sent(claim, message_id, now_s, held=held)

    def commit_failed(self, claim: Claim, error_code: str, now_s: float) -> CommitResult:
        return self._leases.commit_failed(claim, error_code, now_s)

    def commit_unknown(self, claim: Claim, reason: str, now_s: float) -> CommitResult:
        return self._leases.commit_unknown(claim, reason, now_s)

    def expire_lease(self, recipient: Recipient, now_s: float) -> bool:
        return self._leases.expire_lease(recipient, now_s)

    def requeue_unknown(self, recipient: Recipient) -> bool:
        return self._leases.requeue_unknown(recipient)

    # -- deliveries (the status webhooks) ---------------------------------------------------

    def apply_delivery(self, report: DeliveryReport) -> DeliveryApplied:
        return self._deliveries.apply_delivery(report)

    def find_by_message_id(self, message_id: str) -> tuple[str, str] | None:
        return self._deliveries.find_by_message_id(message_id)

    def link_user(self, user_id: str, phone: str) -> None:
        self._deliveries.link_user(user_id, phone)

    def phone_for_user(self, user_id: str) -> str | None:
        return self._deliveries.phone_for_user(user_id)

    def unsuppress(self, phone: str, reason: str) -> bool:
        return self._suppressions.unsuppress(phone, reason)

    def running_campaigns(self) -> list[Campaign]:
        """``list_campaigns``' scan, the RUNNING ones (oldest first)."""
        return [c for c in self.list_campaigns() if c.status is CampaignStatus.RUNNING]


__all__ = ["CampaignStatus", "DynamoStore"]
