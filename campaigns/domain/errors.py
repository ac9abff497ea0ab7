"""One exception root; each subclass is named for what the caller does with it.

HTTP and botocore exceptions are translated into these at the adapter edge and nowhere else.
"""

from __future__ import annotations


class CampaignError(Exception):
    """Root of every error this package raises on purpose."""


class ConfigError(CampaignError):
    """Invalid configuration: the process exits with ``EXIT_CONFIG`` and one line."""


class InvalidInput(CampaignError):
    """Bad operator input (file, id, argument): one clear line, non-zero exit, nothing written."""


class CampaignNotFound(InvalidInput):
    def __init__(self, campaign_id: str) -> None:
        super().__init__(f"Campaign not found: {campaign_id}")
        self.campaign_id = campaign_id


class ImportLocked(InvalidInput):
    """Another populate holds the campaign (and start/resume wait for it to end)."""


class InvalidTransition(CampaignError):
    """A status change the state machine refuses (``Campaign status is COMPLETED``)."""

    def __init__(self, current: str, action: str) -> None:
        super().__init__(f"Campaign status is {current}: cannot {action}")
        self.current = current
        self.action = action


class SendError(CampaignError):
    """Root of the Cloud API outcomes other than acceptance."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail


class RetryableSendError(SendError):
    """Transient trouble: try the same recipient again after ``retry_after_s``."""

    def __init__(self, code: str, detail: str = "", retry_after_s: float | None = None) -> None:
        super().__init__(code, detail)
        self.retry_after_s = retry_after_s


class ThrottledSendError(RetryableSendError):
    """Meta's throughput limits (130429, 4, 80007): retry later and slow down."""


class PairRateLimited(RetryableSendError):
    """131056: this user was messaged too often; retry after 4^n seconds."""


class RecipientRejected(SendError):
    """Meta refused this recipient (bad number, opted out, ...): fail it, refund its cap unit."""

    def __init__(
        self, code: str, detail: str = "", *, suppress: bool = False, classified: bool = True
    ) -> None:
        super().__init__(code, detail)
        self.suppress = suppress
        self.classified = classified


class CampaignHalted(SendError):
    """Account, token or template trouble: pause the campaign, keep the recipient pending."""

    def __init__(self, code: str, reason: str, detail: str = "") -> None:
        super().__init__(code, detail)
        self.reason = reason


class AmbiguousSend(SendError):
    """The request may have reached Meta (read timeout, reset after write): never resend."""


class StoreUnavailable(CampaignError):
    """DynamoDB kept failing after retries; the caller stops and lets SQS redeliver."""


class QueueUnavailable(CampaignError):
    """SQS kept failing after retries; ``code`` is AWS's error code (or the exception name)."""

    def __init__(self, message: str, code: str = "Unknown") -> None:
        super().__init__(message)
        self.code = code
