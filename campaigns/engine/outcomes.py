"""What one batch came to: the batch's outcome (which decides the SQS message's fate), each
recipient's outcome, and the summary the worker logs and counts."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class BatchOutcome(StrEnum):
    COMPLETED = "completed"  # every recipient committed or handled elsewhere: delete
    PAUSED = "paused"  # this batch paused the campaign (cap, auth, ...): delete
    NOT_RUNNING = "not_running"  # the campaign is paused, cancelled or completed: delete
    RELEASED = "released"  # stopping: recipients left PENDING, release the message
    DEFERRED = "deferred"  # a send storm: recipients left PENDING, message back later
    POISON = "poison"  # unknown campaign: never act on it, let it reach the DLQ
    ERROR = "error"  # the store failed: leave the message for redelivery

    @property
    def deletes_message(self) -> bool:
        return self in (BatchOutcome.COMPLETED, BatchOutcome.PAUSED, BatchOutcome.NOT_RUNNING)


class RecipientOutcome(StrEnum):
    SENT = "sent"
    FAILED = "failed"
    UNKNOWN = "unknown"
    SKIPPED = "skipped"  # already handled (or being handled) elsewhere
    RELEASED = "released"  # back to PENDING, untouched by this batch


@dataclass
class BatchSummary:
    campaign_id: str
    batch_id: str
    outcome: BatchOutcome = BatchOutcome.COMPLETED
    sent: int = 0
    failed: int = 0
    unknown: int = 0
    skipped: int = 0
    released: int = 0
    pause_reason: str | None = None
    defer_s: float = 0.0  # with DEFERRED: how long to keep the message away
    completed_campaign: bool = False
    outcomes: dict[str, RecipientOutcome] = field(default_factory=dict)

    @property
    def processed(self) -> int:
        return self.sent + self.failed + self.unknown

    def record(self, phone: str, outcome: RecipientOutcome) -> None:
        self.outcomes[phone] = outcome
        match outcome:
            case RecipientOutcome.SENT:
                self.sent += 1
            case RecipientOutcome.FAILED:
                self.failed += 1
            case RecipientOutcome.UNKNOWN:
                self.unknown += 1
            case RecipientOutcome.SKIPPED:
                self.skipped += 1
            case RecipientOutcome.RELEASED:
                self.released += 1
