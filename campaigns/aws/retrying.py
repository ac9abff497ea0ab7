"""The AWS adapters' own retry policies, declared in one place.

botocore already retries throttling and 5xx on every request (``clients.client_config``); these
bounded loops sit on top of it where giving up would leave state wrong or work undone. Each
policy waits through the ``Clock`` port, so a ``ManualClock`` makes tests wait for nothing.
The waits are deterministic (no jitter), as they were when these loops were hand-rolled:
tenacity's ``wait_exponential`` waits ``first_wait_s * 2 ** (attempt - 1)``. The one exception
is ``delivery_races``: writers that lost a race to each other must not come back in step, so
its waits are random (full jitter).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    retry_if_result,
    stop_after_attempt,
    wait_exponential,
    wait_random_exponential,
)

from campaigns.domain.errors import QueueUnavailable, StoreUnavailable
from campaigns.ports import Clock

# Store writes whose loss would leave state wrong (a commit after an accepted send, a counter
# ADD): 4 attempts, waiting 0.2 s, 0.4 s, 0.8 s between them.
STORE_WRITE_ATTEMPTS = 4
STORE_WRITE_FIRST_WAIT_S = 0.2

# BatchGetItem/BatchWriteItem entries DynamoDB left unprocessed (capacity, not an error):
# 8 tries, waiting 0.05 s doubling, at most 2 s.
UNPROCESSED_TRIES = 8
UNPROCESSED_FIRST_WAIT_S = 0.05
UNPROCESSED_MAX_WAIT_S = 2.0

# SQS SendMessageBatch, failed call or failed entries: 5 attempts, waiting 0.2 s doubling.
SQS_SEND_ATTEMPTS = 5
SQS_SEND_FIRST_WAIT_S = 0.2

# A refund of a unit of the cap (idempotent: it records the reservation it refunds): 5
# attempts, waiting 0.1 s doubling. After that the unit stays charged (safe for the cap).
REFUND_ATTEMPTS = 5
REFUND_FIRST_WAIT_S = 0.1

# A delivery report whose conditional write lost a race to another writer of the same
# recipient (or whose transaction was cancelled by one on the same counter shard) is decided
# again: 8 tries, each after a random wait of up to 5 ms doubling, at most 100 ms.
DELIVERY_RACE_TRIES = 8
DELIVERY_RACE_FIRST_WAIT_S = 0.005
DELIVERY_RACE_MAX_WAIT_S = 0.1


def _sleeping(clock: Clock) -> Callable[[float], None]:
    """tenacity's ``sleep`` hook, waiting through the port (a ManualClock only records it)."""

    def sleep(seconds: float) -> None:
        clock.sleep(float(seconds))  # tenacity passes its DoSleep, a float subclass

    return sleep


def _last_outcome(state: RetryCallState) -> Any:
    """When the attempts run out: the last result as it was (what is still left undone), or
    the last exception re-raised as it was (not wrapped in tenacity's ``RetryError``)."""
    assert state.outcome is not None  # tenacity calls this after an attempt
    return state.outcome.result()


def store_writes(
    clock: Clock,
    attempts: int = STORE_WRITE_ATTEMPTS,
    first_wait_s: float = STORE_WRITE_FIRST_WAIT_S,
) -> Retrying:
    """Retry a store request on ``StoreUnavailable``; a refused condition is an answer, not
    retried."""
    return Retrying(
        stop=stop_after_attempt(attempts),
        wait=wait_exponential(multiplier=first_wait_s),
        retry=retry_if_exception_type(StoreUnavailable),
        sleep=_sleeping(clock),
        reraise=True,
    )


def refunds(clock: Clock) -> Retrying:
    """Retry a refund on ``StoreUnavailable`` (its write recognises its own landed tries, so
    retrying never refunds twice); the last error is re-raised as it was."""
    return store_writes(clock, REFUND_ATTEMPTS, REFUND_FIRST_WAIT_S)


def unprocessed_batches(clock: Clock) -> Retrying:
    """Call again while the call returns entries still unprocessed (a truthy result); gives
    back what is left after the last try. Errors are not retried here (botocore did)."""
    return Retrying(
        stop=stop_after_attempt(UNPROCESSED_TRIES),
        wait=wait_exponential(multiplier=UNPROCESSED_FIRST_WAIT_S, max=UNPROCESSED_MAX_WAIT_S),
        retry=retry_if_result(bool),
        sleep=_sleeping(clock),
        retry_error_callback=_last_outcome,
    )


def sqs_sends(clock: Clock) -> Retrying:
    """Call again on ``QueueUnavailable`` or while entries are left unsent (a truthy result);
    after the last attempt, its error is raised or what is left unsent given back."""
    return Retrying(
        stop=stop_after_attempt(SQS_SEND_ATTEMPTS),
        wait=wait_exponential(multiplier=SQS_SEND_FIRST_WAIT_S),
        retry=retry_if_exception_type(QueueUnavailable) | retry_if_result(bool),
        sleep=_sleeping(clock),
        retry_error_callback=_last_outcome,
    )


def delivery_races(clock: Clock, lost: type[Exception]) -> Retrying:
    """Call again while the call raises ``lost`` (it decided from a value another writer has
    changed since); after the last try, ``lost`` is re-raised for the caller to report."""
    return Retrying(
        stop=stop_after_attempt(DELIVERY_RACE_TRIES),
        wait=wait_random_exponential(
            multiplier=DELIVERY_RACE_FIRST_WAIT_S, max=DELIVERY_RACE_MAX_WAIT_S
        ),
        retry=retry_if_exception_type(lost),
        sleep=_sleeping(clock),
        reraise=True,
    )
