"""The SQS adapter (its in-memory twin is ``campaigns.memory.MemoryQueue``).

Every call that can be batched is: receive up to 10, delete and change visibility in batches
of 10, send in batches of 10 (SQS's per-call maximum).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from campaigns.aws.retrying import sqs_sends
from campaigns.domain.clock import SystemClock
from campaigns.domain.errors import QueueUnavailable
from campaigns.ports import Clock, ReceivedMessage
from campaigns.settings import MAX_SQS_BATCH

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

MAX_WAIT_TIME_S = 20  # SQS's longest long poll
MAX_DELAY_S = 900  # SQS's longest DelaySeconds


def chunks(items: Sequence[Any], size: int = MAX_SQS_BATCH) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _queue_error(exc: ClientError | BotoCoreError, what: str) -> QueueUnavailable:
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "Unknown")
    else:
        code = type(exc).__name__
    return QueueUnavailable(f"SQS {what} failed: {code}", code)


def resolve_queue_url(client: SQSClient, name: str, url: str | None = None) -> str:
    if url:
        return url
    try:
        return client.get_queue_url(QueueName=name)["QueueUrl"]
    except (ClientError, BotoCoreError) as exc:
        raise _queue_error(exc, f"GetQueueUrl({name})") from None


class SqsQueue:
    def __init__(self, client: SQSClient, queue_url: str, clock: Clock | None = None) -> None:
        self._sqs = client
        self.url = queue_url
        self._retry = sqs_sends(clock or SystemClock())

    def receive(
        self, max_messages: int, wait_s: int, visibility_timeout_s: int | None = None
    ) -> list[ReceivedMessage]:
        kwargs: dict[str, Any] = {
            "QueueUrl": self.url,
            "MaxNumberOfMessages": max(1, min(max_messages, MAX_SQS_BATCH)),
            "WaitTimeSeconds": max(0, min(wait_s, MAX_WAIT_TIME_S)),
            "MessageSystemAttributeNames": ["ApproximateReceiveCount"],
        }
        if visibility_timeout_s is not None:
            kwargs["VisibilityTimeout"] = visibility_timeout_s
        try:
            response = self._sqs.receive_message(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise _queue_error(exc, "ReceiveMessage") from None
        return [
            ReceivedMessage(
                message_id=m["MessageId"],
                receipt_handle=m["ReceiptHandle"],
                body=m.get("Body", ""),
                receive_count=int(m.get("Attributes", {}).get("ApproximateReceiveCount", "1")),
            )
            for m in response.get("Messages", [])
        ]

    def delete(self, receipt_handles: Sequence[str]) -> list[str]:
        """Delete in batches of 10; returns the receipt handles that could not be deleted."""
        failed: list[str] = []
        for chunk in chunks(list(receipt_handles)):
            entries: list[Any] = [{"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(chunk)]
            try:
                response = self._sqs.delete_message_batch(QueueUrl=self.url, Entries=entries)
            except (ClientError, BotoCoreError) as exc:
                raise _queue_error(exc, "DeleteMessageBatch") from None
            failed.extend(chunk[int(f["Id"])] for f in response.get("Failed", []))
        return failed

    def change_visibility(self, receipt_handles: Sequence[str], timeout_s: int) -> list[str]:
        failed: list[str] = []
        for chunk in chunks(list(receipt_handles)):
            entries: list[Any] = [
                {"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": timeout_s}
                for i, h in enumerate(chunk)
            ]
            try:
                response = self._sqs.change_message_visibility_batch(
                    QueueUrl=self.url, Entries=entries
                )
            except (ClientError, BotoCoreError) as exc:
                raise _queue_error(exc, "ChangeMessageVisibilityBatch") from None
            failed.extend(chunk[int(f["Id"])] for f in response.get("Failed", []))
        return failed

    def send(self, bodies: Sequence[str], delay_s: int = 0) -> int:
        """Send in batches of 10, retrying failed entries; returns how many were sent."""
        return sum(self._send_batch(chunk, delay_s) for chunk in chunks(list(bodies)))

    def _send_batch(self, bodies: Sequence[str], delay_s: int) -> int:
        """One SendMessageBatch, then its failed entries again (``retrying.sqs_sends``)."""
        pending = {str(i): body for i, body in enumerate(bodies)}
        sent = 0

        def send_pending() -> dict[str, str]:
            nonlocal sent
            entries: list[Any] = [
                {"Id": i, "MessageBody": b, "DelaySeconds": min(delay_s, MAX_DELAY_S)}
                for i, b in pending.items()
            ]
            try:
                response = self._sqs.send_message_batch(QueueUrl=self.url, Entries=entries)
            except (ClientError, BotoCoreError) as exc:
                raise _queue_error(exc, "SendMessageBatch") from None
            for ok in response.get("Successful", []):
                pending.pop(ok["Id"], None)
                sent += 1
            return pending

        left: dict[str, str] = self._retry(send_pending)
        if left:
            raise QueueUnavailable(f"SQS SendMessageBatch left {len(left)} unsent")
        return sent

    def depth(self) -> tuple[int, int]:
        """(visible, in flight) approximate message counts."""
        try:
            attrs = self._sqs.get_queue_attributes(
                QueueUrl=self.url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                ],
            )["Attributes"]
        except (ClientError, BotoCoreError) as exc:
            raise _queue_error(exc, "GetQueueAttributes") from None
        return (
            int(attrs.get("ApproximateNumberOfMessages", 0)),
            int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)),
        )
