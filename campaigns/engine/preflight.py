"""What must still hold right before each request to the Cloud API, first or retry.

1. The campaign is still RUNNING, as the shared ``CampaignCache`` has it (at most one read a
   second per campaign). The retry loop makes its back-off last at least the cache's TTL after
   the previous request began (``min_backoff_s``), so the status a retry is checked against was
   read after that request went out: a pause or cancel stops every retry after the request in
   flight when it landed.
2. The claim has at least one send's worth of lease left (``send_budget_s``: connect + read
   timeout + a margin for the commit). A reservation, a breaker hold or the rate limiter (up to
   60 s on a Retry-After) may have eaten into it: the lease is renewed by a conditional write on
   the claim's own owner (``Store.renew``). If that is refused the claim is gone (expired to
   UNKNOWN by reconcile, perhaps requeued and claimed again): no request is made.
"""

from __future__ import annotations

from dataclasses import dataclass

from campaigns.domain.models import CampaignStatus, Claim
from campaigns.engine.cache import CampaignCache
from campaigns.ports import Clock, RecipientStore

# A request takes at most connect + read timeout; after its answer the commit must still land
# under the lease (one conditional write, retried a few times) and clocks drift a little.
SEND_MARGIN_S = 5.0
# settings.Settings' defaults: META_CONNECT_TIMEOUT_S + META_READ_TIMEOUT_S + the margin.
DEFAULT_SEND_BUDGET_S = 5.0 + 30.0 + SEND_MARGIN_S


def send_budget_s(connect_timeout_s: float, read_timeout_s: float) -> float:
    """The lease a request needs left when it starts."""
    return connect_timeout_s + read_timeout_s + SEND_MARGIN_S


@dataclass(frozen=True)
class Cleared:
    """The check's answer: send with ``claim`` (renewed if it had to be); or not at all —
    ``stopped`` when the campaign is no longer RUNNING, else the claim was lost."""

    claim: Claim | None
    stopped: bool = False
    renewed: bool = False


class Preflight:
    """One per executor (thread); the cache is the process's shared one."""

    def __init__(
        self,
        *,
        store: RecipientStore,
        cache: CampaignCache,
        clock: Clock,
        lease_s: float,
        send_budget_s: float,
    ) -> None:
        self._store = store
        self._cache = cache
        self._clock = clock
        self._lease_s = lease_s
        # A renewal gives a whole lease: a budget above it could never be met.
        self._budget_s = min(send_budget_s, lease_s)

    def min_backoff_s(self, since_request_s: float) -> float:
        """The least a retry waits, ``since_request_s`` after the previous request began, so
        that the status it is checked against was read after that request went out."""
        return max(self._cache.ttl_s - since_request_s, 0.0)

    def check(self, claim: Claim) -> Cleared:
        """May raise ``StoreUnavailable`` (the renewal): nothing was sent."""
        campaign = self._cache.get(claim.recipient.campaign_id)
        if campaign is None or campaign.status is not CampaignStatus.RUNNING:
            return Cleared(claim=None, stopped=True)
        now_s = self._clock.now()
        if claim.lease_until - now_s >= self._budget_s:
            return Cleared(claim=claim)
        renewed = self._store.renew(claim, now_s + self._lease_s)
        return Cleared(claim=renewed, renewed=renewed is not None)
