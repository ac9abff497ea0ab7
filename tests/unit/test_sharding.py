"""Hot items spread over shards: campaign counters summed on read, the cap split in shares
that add up to DAILY_CAP — exact either way."""

from __future__ import annotations

import threading
import time

import pytest

from campaigns.aws.clients import dynamodb_client
from campaigns.aws.guard import ShardedCapGuard
from campaigns.aws.store import DynamoStore
from campaigns.domain.clock import iso_utc
from campaigns.domain.models import Campaign, CampaignStatus, new_campaign_id
from campaigns.settings import Settings

NOW = 1_767_261_600.0  # 2026-01-01T10:00:00Z


def sharded_store(settings: Settings, shards: int) -> DynamoStore:
    return DynamoStore(dynamodb_client(settings), settings, counter_shards=shards)


def new_campaign(store: DynamoStore) -> str:
    campaign_id = new_campaign_id()
    store.create_campaign(
        Campaign(campaign_id, "c", "t", "en_US", CampaignStatus.RUNNING, created_at=iso_utc(0))
    )
    return campaign_id


def test_sharded_counters_are_summed_on_read(aws_settings: Settings) -> None:
    store = sharded_store(aws_settings, 4)
    campaign_id = new_campaign(store)
    slots = [f"thread-{i}" for i in range(8)]
    for index, slot in enumerate(slots):
        assert store.add_counts(campaign_id, sent=index + 1, failed=1, slot=slot) is None

    campaign = store.require_campaign(campaign_id)

    assert campaign.sent_count == sum(range(1, 9))
    assert campaign.failed_count == 8
    shard_items = store.client.query(
        TableName=aws_settings.campaigns_table,
        KeyConditionExpression="PK = :pk AND begins_with(SK, :c)",
        ExpressionAttributeValues={
            ":pk": {"S": f"CAMPAIGN#{campaign_id}"},
            ":c": {"S": "COUNTER#"},
        },
    )["Items"]
    assert 2 <= len(shard_items) <= 4  # the writes really were spread
    assert [c.sent_count for c in store.list_campaigns() if c.campaign_id == campaign_id] == [36]


def test_a_sharded_counter_is_corrected_through_the_metadata_item(aws_settings: Settings) -> None:
    store = sharded_store(aws_settings, 3)
    campaign_id = new_campaign(store)
    for slot in ("a", "b", "c"):
        store.add_counts(campaign_id, sent=2, slot=slot)

    assert not store.set_counter(campaign_id, "sentCount", 5, 4)  # it is 6, not 5
    assert store.set_counter(campaign_id, "sentCount", 6, 4)
    assert store.require_campaign(campaign_id).sent_count == 4


def test_a_sharded_cap_never_passes_the_cap_and_uses_all_of_it(aws_settings: Settings) -> None:
    cap, granted = 60, []
    lock = threading.Lock()
    portfolio = f"p{time.monotonic_ns()}"

    def worker() -> None:
        guard = ShardedCapGuard.build(
            dynamodb_client(aws_settings), aws_settings.campaigns_table, cap, 4,
            portfolio=portfolio,
        )  # fmt: skip
        for _ in range(25):
            reservation = guard.reserve(NOW)
            if reservation is not None:
                with lock:
                    granted.append(reservation.shard)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert len(granted) == cap  # all of it, not one more
    assert sorted({shard: granted.count(shard) for shard in set(granted)}.values()) == [15] * 4


def test_a_refund_goes_back_to_the_shard_that_held_it(aws_settings: Settings) -> None:
    guard = ShardedCapGuard.build(
        dynamodb_client(aws_settings), aws_settings.campaigns_table, 4, 2, portfolio="refunds"
    )
    held = [guard.reserve(NOW) for _ in range(4)]
    assert all(r is not None for r in held)
    assert guard.reserve(NOW) is None
    last = held[-1]
    assert last is not None
    guard.refund(last)

    again = guard.reserve(NOW)

    assert again is not None
    assert again.shard == last.shard
    assert guard.usage(NOW).used == 4


def test_a_cap_too_small_for_its_shards_is_refused(aws_settings: Settings) -> None:
    with pytest.raises(ValueError, match="too small"):
        ShardedCapGuard.build(dynamodb_client(aws_settings), aws_settings.campaigns_table, 3, 4)
