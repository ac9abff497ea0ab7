"""Builds the real adapters from settings: the one place where the ports meet AWS and Meta."""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass

from campaigns.aws.bulk import BulkRecipients
from campaigns.aws.clients import dynamodb_client, sqs_client
from campaigns.aws.guard import DynamoCapGuard, ShardedCapGuard
from campaigns.aws.provision import provision
from campaigns.aws.queue import SqsQueue, resolve_queue_url
from campaigns.aws.store import DynamoStore
from campaigns.domain.clock import SystemClock
from campaigns.engine.breaker import SendBreaker
from campaigns.engine.cache import CampaignCache
from campaigns.engine.executor import BatchExecutor
from campaigns.engine.metrics import EngineMetrics
from campaigns.engine.preflight import send_budget_s
from campaigns.engine.ratelimit import TokenBucket
from campaigns.engine.receipts import ReceiptApplier
from campaigns.engine.retry import RetryPolicy
from campaigns.meta.cloudapi import CloudApiSender
from campaigns.operator.commands import Producer
from campaigns.ports import CapGuard, RateLimiter
from campaigns.settings import MAX_SQS_BATCH, Settings


def consumer_id() -> str:
    """Unique per process: host, pid and a random suffix (pids repeat across containers)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class Engine:
    settings: Settings
    store: DynamoStore
    guard: CapGuard
    metrics: EngineMetrics
    clock: SystemClock
    cache: CampaignCache

    def executor(
        self, limiter: RateLimiter, owner: str, breaker: SendBreaker | None = None
    ) -> BatchExecutor:
        """One executor per thread: each has its own HTTP session to the Cloud API."""
        return BatchExecutor(
            store=self.store,
            guard=self.guard,
            sender=CloudApiSender(self.settings),
            limiter=limiter,
            clock=self.clock,
            metrics=self.metrics,
            owner=owner,
            lease_s=self.settings.lease_s,
            send_budget_s=send_budget_s(
                self.settings.meta_connect_timeout_s, self.settings.meta_read_timeout_s
            ),
            policy=RetryPolicy(max_send_attempts=self.settings.max_send_attempts),
            cache=self.cache,
            breaker=breaker,
        )

    def receipt_applier(self) -> ReceiptApplier:
        """The status webhooks' applier, on the same store, metrics and campaign cache (so a
        pause it makes stops this process's batches at once)."""
        return ReceiptApplier(
            deliveries=self.store,
            campaigns=self.store,
            metrics=self.metrics,
            opt_out_keywords=self.settings.opt_out_keywords,
            cache=self.cache,
        )


def build_engine(settings: Settings, metrics: EngineMetrics | None = None) -> Engine:
    # One connection per thread that may call DynamoDB at once: the batch threads (and their
    # refunds), the heartbeat, and the receipts loop's appliers (at most one receive's worth).
    receipts_threads = min(settings.receipts_concurrency, MAX_SQS_BATCH)
    pool = max(10, settings.consumer_concurrency * 2 + 2 + receipts_threads)
    db = dynamodb_client(settings, max_pool_connections=pool)
    clock = SystemClock()
    store = DynamoStore(db, settings, clock)
    refunds = dynamodb_client(settings, max_pool_connections=pool, max_attempts=1)
    guard: CapGuard
    if settings.counter_shards > 1:
        guard = ShardedCapGuard.build(
            db,
            settings.campaigns_table,
            settings.daily_cap,
            settings.counter_shards,
            portfolio=settings.business_portfolio_id,
            refund_client=refunds,
        )
    else:
        guard = DynamoCapGuard(
            db,
            settings.campaigns_table,
            settings.daily_cap,
            settings.business_portfolio_id,
            refund_client=refunds,
        )
    metrics = metrics or EngineMetrics()
    metrics.cap_limit.set(settings.daily_cap)
    return Engine(
        settings=settings,
        store=store,
        guard=guard,
        metrics=metrics,
        clock=clock,
        cache=CampaignCache(store, clock),
    )


def build_queue(settings: Settings, dead_letter: bool = False) -> SqsQueue:
    client = sqs_client(settings)
    name = settings.dlq_name if dead_letter else settings.campaign_queue_name
    url = None if dead_letter else settings.campaign_queue_url
    return SqsQueue(client, resolve_queue_url(client, name, url))


def build_receipts_queue(settings: Settings) -> SqsQueue:
    """The webhook receiver's side of the receipts queue (a ``SendQueue``): it enqueues each
    verified body; the consumer's receipts loop takes them off. Raises ``QueueUnavailable``
    when the queue cannot be found (the receiver retries on its next request)."""
    client = sqs_client(settings)
    return SqsQueue(client, resolve_queue_url(client, settings.campaign_receipts_queue_name))


def build_operator(settings: Settings) -> Producer:
    """The operator core on DynamoDB, SQS and (for ``execute-batch``) the Cloud API; queues,
    the engine and the provisioner are built only when a command needs them."""
    db = dynamodb_client(settings)
    return Producer(
        settings=settings,
        store=DynamoStore(db, settings),
        bulk=BulkRecipients(db, settings.campaigns_table, settings.recipients_table),
        queue_factory=lambda: build_queue(settings),
        dead_letter_factory=lambda: build_queue(settings, dead_letter=True),
        executor_factory=lambda: build_engine(settings).executor(
            TokenBucket(settings.send_rate_per_second), consumer_id()
        ),
        provisioner=lambda: provision(db, sqs_client(settings), settings),
    )
