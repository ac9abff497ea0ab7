"""How often and after how long a recipient is tried again after a retryable Cloud API answer."""

from __future__ import annotations

import random
from dataclasses import dataclass

from campaigns.domain.errors import PairRateLimited, RetryableSendError


@dataclass(frozen=True)
class RetryPolicy:
    max_send_attempts: int = 3
    backoff_base_s: float = 1.0
    backoff_max_s: float = 30.0
    pair_rate_base_s: float = 4.0  # Meta: retry a 131056 recipient after 4^n seconds

    def delay_s(self, error: RetryableSendError, attempt: int, rng: random.Random) -> float:
        if isinstance(error, PairRateLimited):
            computed = self.pair_rate_base_s**attempt
        else:
            exp = min(self.backoff_max_s, self.backoff_base_s * 2 ** (attempt - 1))
            computed = exp / 2 + rng.uniform(0, exp / 2)  # "equal jitter"
        if error.retry_after_s is not None:
            computed = max(computed, error.retry_after_s)
        return min(computed, max(self.backoff_max_s, self.pair_rate_base_s**2))
