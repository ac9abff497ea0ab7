"""Completing a campaign: COMPLETED exactly once, when nothing is left to send.

Used by the executor (once per batch), the operator core (start, resume, reconcile) and the
in-process ``execute-batch``. A recipient is made PENDING again only by start, resume and
requeue-unknown, which bump the campaign's ``pending_generation`` (``campaigns.ports``); a
give-back (SENDING → PENDING) needs no bump: it is open before and after, so a scan counts it
open whichever it sees.
"""

from __future__ import annotations

from campaigns.domain.errors import InvalidTransition
from campaigns.domain.models import Action, Campaign, CampaignStatus
from campaigns.engine.cache import CampaignCache
from campaigns.ports import CampaignStore


def complete_if_done(
    store: CampaignStore, campaign_id: str, generation: int | None = None
) -> Campaign | None:
    """COMPLETED exactly once: only when no PENDING or SENDING item is left, by a conditional
    write that only one racing caller can win, and only if nothing was made PENDING again
    since the scan began (the campaign's ``pending_generation``, read before the scan unless
    the caller passes what it read). Returns the campaign if this call completed it."""
    if generation is None:
        campaign = store.get_campaign(campaign_id)
        if campaign is None:
            return None
        generation = campaign.pending_generation
    if store.count_statuses(campaign_id).open:
        return None
    try:
        return store.transition(campaign_id, Action.COMPLETE, generation=generation)
    except InvalidTransition:
        return None


def complete_after_batch(
    store: CampaignStore, cache: CampaignCache, campaign_id: str
) -> Campaign | None:
    """Once per batch (one read), check whether the campaign is done: the counters (summed
    over their shards) say nothing is pending, and the items confirm it. Returns the campaign
    if this call completed it; the cache learns what was read. Raises ``StoreUnavailable``."""
    campaign = store.get_campaign(campaign_id)
    if campaign is None:
        return None
    cache.put(campaign_id, campaign)
    if campaign.status is not CampaignStatus.RUNNING or campaign.pending_count:
        return None
    completed = complete_if_done(store, campaign_id, campaign.pending_generation)
    if completed is not None:
        cache.put(campaign_id, completed)
    return completed
