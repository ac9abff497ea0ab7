"""The adapters' declared retry policies: how often they try, how long they wait (through the
Clock port, so a ManualClock never really sleeps) and what they give back when they give up."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from campaigns.aws.bulk import BulkRecipients
from campaigns.aws.dynamo import Refused
from campaigns.aws.queue import SqsQueue
from campaigns.aws.retrying import (
    DELIVERY_RACE_MAX_WAIT_S,
    DELIVERY_RACE_TRIES,
    SQS_SEND_ATTEMPTS,
    STORE_WRITE_ATTEMPTS,
    UNPROCESSED_TRIES,
    delivery_races,
    sqs_sends,
    store_writes,
    unprocessed_batches,
)
from campaigns.domain.errors import QueueUnavailable, StoreUnavailable
from campaigns.memory import ManualClock

STORE_WAITS_S = [0.2, 0.4, 0.8]
UNPROCESSED_WAITS_S = [0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 2.0]
SQS_WAITS_S = [0.2, 0.4, 0.8, 1.6]


class Calls:
    """A callable that answers each call with the next scripted answer (or raises it)."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.count = 0

    def __call__(self) -> Any:
        self.count += 1
        answer = self.answers[min(self.count, len(self.answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_store_writes_give_up_after_four_attempts_waiting_through_the_clock() -> None:
    clock = ManualClock()
    calls = Calls(StoreUnavailable("DynamoDB UpdateItem failed: InternalServerError"))

    with pytest.raises(StoreUnavailable, match="InternalServerError"):
        store_writes(clock)(calls)

    assert calls.count == STORE_WRITE_ATTEMPTS == 4
    assert clock.slept == pytest.approx(STORE_WAITS_S)


def test_store_writes_return_the_first_answer_that_comes() -> None:
    clock = ManualClock()
    calls = Calls(StoreUnavailable("x"), StoreUnavailable("x"), "done")

    assert store_writes(clock)(calls) == "done"
    assert clock.slept == pytest.approx(STORE_WAITS_S[:2])


def test_store_writes_take_a_refusal_as_an_answer_not_a_fault() -> None:
    clock = ManualClock()
    calls = Calls(Refused(None))

    with pytest.raises(Refused):
        store_writes(clock)(calls)

    assert calls.count == 1
    assert clock.slept == []


def test_store_writes_honour_the_stores_commit_attempts() -> None:
    clock = ManualClock()
    calls = Calls(StoreUnavailable("x"))

    with pytest.raises(StoreUnavailable):
        store_writes(clock, attempts=2)(calls)

    assert calls.count == 2
    assert clock.slept == pytest.approx([0.2])


class LostRace(Exception):
    pass


def test_delivery_races_retry_a_lost_race_after_random_bounded_waits_then_reraise() -> None:
    clock = ManualClock()
    calls = Calls(LostRace("moved"))

    with pytest.raises(LostRace):
        delivery_races(clock, LostRace)(calls)

    assert calls.count == DELIVERY_RACE_TRIES == 8
    assert len(clock.slept) == DELIVERY_RACE_TRIES - 1
    # Full jitter: each wait is random within a doubling bound, capped at 100 ms.
    bounds = [min(0.005 * 2**attempt, DELIVERY_RACE_MAX_WAIT_S) for attempt in range(7)]
    assert all(0 <= wait <= bound for wait, bound in zip(clock.slept, bounds, strict=True))
    again = ManualClock()
    with pytest.raises(LostRace):
        delivery_races(again, LostRace)(Calls(LostRace("moved")))
    assert again.slept != clock.slept  # two racers do not come back in step


def test_delivery_races_do_not_retry_other_errors_and_return_the_first_answer() -> None:
    clock = ManualClock()

    assert delivery_races(clock, LostRace)(Calls(LostRace("a"), "applied")) == "applied"
    with pytest.raises(StoreUnavailable):
        delivery_races(clock, LostRace)(Calls(StoreUnavailable("down"), "never"))


def test_unprocessed_batches_give_back_what_is_left_after_eight_tries() -> None:
    clock = ManualClock()
    left: dict[str, list[Any]] = {"recipients": [{"PutRequest": {}}]}
    calls = Calls(left)

    assert unprocessed_batches(clock)(calls) == left
    assert calls.count == UNPROCESSED_TRIES == 8
    assert clock.slept == pytest.approx(UNPROCESSED_WAITS_S)


def test_unprocessed_batches_stop_once_nothing_is_left() -> None:
    clock = ManualClock()
    calls = Calls({"t": ["k"]}, {})

    assert unprocessed_batches(clock)(calls) == {}
    assert calls.count == 2
    assert clock.slept == pytest.approx([0.05])


def test_unprocessed_batches_do_not_retry_an_error() -> None:
    calls = Calls(StoreUnavailable("DynamoDB BatchWriteItem failed: AccessDenied"))

    with pytest.raises(StoreUnavailable, match="AccessDenied"):
        unprocessed_batches(ManualClock())(calls)

    assert calls.count == 1


def test_sqs_sends_raise_the_last_error_after_five_attempts() -> None:
    clock = ManualClock()
    calls = Calls(QueueUnavailable("SQS SendMessageBatch failed: Throttling", "Throttling"))

    with pytest.raises(QueueUnavailable, match="Throttling"):
        sqs_sends(clock)(calls)

    assert calls.count == SQS_SEND_ATTEMPTS == 5
    assert clock.slept == pytest.approx(SQS_WAITS_S)


def test_sqs_sends_retry_failed_entries_then_give_back_what_is_left() -> None:
    clock = ManualClock()
    calls = Calls({"3": "body"})

    assert sqs_sends(clock)(calls) == {"3": "body"}
    assert calls.count == 5
    assert clock.slept == pytest.approx(SQS_WAITS_S)


class StingyDynamo:
    """BatchWriteItem that never processes anything."""

    def __init__(self) -> None:
        self.calls = 0

    def batch_write_item(self, RequestItems: Any) -> dict[str, Any]:  # noqa: N803 (boto3's)
        self.calls += 1
        return {"UnprocessedItems": RequestItems}


def test_bulk_writes_wait_through_their_clock_and_then_give_up() -> None:
    clock = ManualClock()
    db = StingyDynamo()
    bulk = BulkRecipients(db, "campaigns", "recipients", clock=clock)  # type: ignore[arg-type]

    with pytest.raises(StoreUnavailable, match="left items unprocessed"):
        bulk.write_pending("cmp_1", [("919000000001", ())])

    assert db.calls == UNPROCESSED_TRIES
    assert clock.slept == pytest.approx(UNPROCESSED_WAITS_S)


class FlakySqs:
    """SendMessageBatch that fails as a call once, then sends one entry per call."""

    def __init__(self) -> None:
        self.calls = 0

    def send_message_batch(self, QueueUrl: str, Entries: list[Any]) -> dict[str, Any]:  # noqa: N803 (boto3's)
        self.calls += 1
        if self.calls == 1:
            raise ClientError({"Error": {"Code": "InternalError", "Message": "x"}}, "Send")
        return {"Successful": [{"Id": Entries[0]["Id"]}], "Failed": Entries[1:]}


def test_sqs_sends_wait_through_their_clock_until_every_entry_is_sent() -> None:
    clock = ManualClock()
    sqs = FlakySqs()
    queue = SqsQueue(sqs, "http://127.0.0.1/queue", clock=clock)  # type: ignore[arg-type]

    assert queue.send(["a", "b", "c"]) == 3
    assert sqs.calls == 4
    assert clock.slept == pytest.approx([0.2, 0.4, 0.8])
