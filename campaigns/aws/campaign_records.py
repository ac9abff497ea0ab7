"""Campaign items: create, read, list, the state machine's transitions, and the import lock
(one populate at a time, and no start or resume while it runs). The suppression list is
``campaigns.aws.suppressions``.

COMPLETED only when nothing was made PENDING since the completion's scan began: START and
RESUME ``ADD pendingGeneration 1`` (populate only writes while DRAFT or PAUSED, so one of them
comes between it and any completion); a requeue-unknown holds completion off with
``requeueUntil`` while it flips recipients, then bumps the generation and lifts the hold. The
COMPLETE write requires the generation its caller read before the scan (an item without the
attribute reads as 0) and no live hold."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from campaigns.aws.counters import Partition, read_partition
from campaigns.aws.dynamo import (
    WRITE_TOKEN,
    Item,
    Refused,
    Table,
    WriteToken,
    number,
    text,
)
from campaigns.aws.items import (
    CAMPAIGN_PREFIX,
    METADATA,
    SHARD_PREFIX,
    campaign_attribute,
    campaign_from_item,
    campaign_key,
    item_key,
    new_campaign_item,
)
from campaigns.domain.clock import iso_utc
from campaigns.domain.errors import (
    CampaignNotFound,
    ImportLocked,
    InvalidInput,
    InvalidTransition,
)
from campaigns.domain.models import (
    IMPORT_LOCK_S,
    OPERATOR_PAUSE_REASON,
    POPULATE_STATUSES,
    TRANSITIONS,
    Action,
    Campaign,
    CampaignStatus,
)
from campaigns.ports import Clock

if TYPE_CHECKING:
    from tenacity import Retrying

_STATUS = {"#s": campaign_attribute("status")}
# Attribute each transition stamps with its time (the seed's names, plus cancelledAt/resumedAt).
_STAMP = {
    Action.START: campaign_attribute("started_at"),
    Action.PAUSE: campaign_attribute("paused_at"),
    Action.RESUME: "resumedAt",  # for the record: never read back
    Action.CANCEL: campaign_attribute("cancelled_at"),
    Action.COMPLETE: campaign_attribute("completed_at"),
}
_PAUSE_REASON = campaign_attribute("pause_reason")
_GENERATION = campaign_attribute("pending_generation")
_REQUEUE_HOLD = "requeueUntil"  # epoch s: a requeue-unknown under way holds off COMPLETE
_TERMINAL = {
    ":done": text(CampaignStatus.COMPLETED.value),
    ":gone": text(CampaignStatus.CANCELLED.value),
}


class CampaignRecords:
    """The campaign part of ``campaigns.ports.Store`` on the campaigns table."""

    def __init__(self, table: Table, clock: Clock, retry: Retrying) -> None:
        self._table = table
        self._clock = clock
        self._retry = retry

    def create_campaign(self, campaign: Campaign) -> Campaign:
        def ours(found: dict[str, Any]) -> bool:
            return (
                found.get(campaign_attribute("created_at")) == campaign.created_at
                and found.get(campaign_attribute("name")) == campaign.name
            )

        try:
            self._table.put(
                new_campaign_item(campaign), condition="attribute_not_exists(PK)", landed=ours
            )
        except Refused:
            raise InvalidInput(f"Campaign already exists: {campaign.campaign_id}") from None
        return campaign

    def get_campaign(self, campaign_id: str) -> Campaign | None:
        """The campaign with its counters summed over its counter shards (one Query)."""
        return read_partition(self._table, campaign_id).campaign()

    def require_campaign(self, campaign_id: str) -> Campaign:
        campaign = self.get_campaign(campaign_id)
        if campaign is None:
            raise CampaignNotFound(campaign_id)
        return campaign

    def list_campaigns(self) -> list[Campaign]:
        metas: dict[str, Item] = {}
        shards: dict[str, list[Item]] = {}
        items = self._table.scan_items(
            FilterExpression="begins_with(PK, :p) AND (SK = :m OR begins_with(SK, :c))",
            ExpressionAttributeValues={
                ":p": text(CAMPAIGN_PREFIX),
                ":m": text(METADATA),
                ":c": text(SHARD_PREFIX),
            },
        )
        for item in items:
            pk, sk = item_key(item)
            if sk == METADATA:
                metas[pk] = dict(item)
            else:
                shards.setdefault(pk, []).append(dict(item))
        campaigns = [Partition(meta, shards.get(pk, [])).campaign() for pk, meta in metas.items()]
        return sorted((c for c in campaigns if c), key=lambda c: c.created_at or "")

    def transition(
        self,
        campaign_id: str,
        action: Action,
        *,
        pause_reason: str | None = None,
        generation: int | None = None,
    ) -> Campaign:
        """Move the campaign by ``action`` with one conditional write; two racing callers
        cannot both win (the loser gets ``InvalidTransition``). See the module's docstring for
        ``generation``."""
        sources, target = TRANSITIONS[action]
        token = WriteToken()
        values: dict[str, Any] = {
            ":to": text(target.value),
            ":now": text(iso_utc(self._clock.now())),
            ":tok": text(token.value),
        }
        sets = ["#s = :to", "#t = :now", f"{WRITE_TOKEN} = :tok"]
        removes: list[str] = []
        if action is Action.PAUSE:
            sets.append(f"{_PAUSE_REASON} = :r")
            values[":r"] = text(pause_reason or OPERATOR_PAUSE_REASON)
        elif action in (Action.START, Action.RESUME):
            removes.append(_PAUSE_REASON)
        placeholders = []
        for index, status in enumerate(sorted(sources)):
            values[f":f{index}"] = text(status.value)
            placeholders.append(f":f{index}")
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        condition = f"attribute_exists(PK) AND #s IN ({', '.join(placeholders)})"
        if action in (Action.START, Action.RESUME):
            # Not while a populate is writing: its late recipients would never be enqueued.
            condition += " AND (attribute_not_exists(importLock) OR importLockUntil < :nowN)"
            values[":nowN"] = number(int(self._clock.now()))
            expression += f" ADD {_GENERATION} :one"
            values[":one"] = number(1)
        elif action is Action.COMPLETE and generation is not None:
            condition += " AND " + self._unchanged(generation, values)
        try:
            written = self._table.update(
                campaign_key(campaign_id),
                expression,
                condition=condition,
                names=_STATUS | {"#t": _STAMP[action]},
                values=values,
                returns="ALL_NEW",
                landed=token.landed,  # botocore's retry of a write whose answer was lost
            )
        except Refused as refused:
            if not refused.item:
                raise CampaignNotFound(campaign_id) from None
            current = refused.found.get("status", "UNKNOWN")
            if action is Action.COMPLETE:  # RUNNING, but made PENDING again since the scan
                raise InvalidTransition(str(current), action.value) from None
            if current in {status.value for status in sources}:
                raise ImportLocked(
                    f"Campaign is being populated: cannot {action.value} until the import ends"
                ) from None
            raise InvalidTransition(str(current), action.value) from None
        return campaign_from_item(written.item)

    def _unchanged(self, generation: int, values: dict[str, Any]) -> str:
        """COMPLETE's extra condition: the generation read before the scan, and no live hold."""
        values[":gen"] = number(generation)
        values[":nowN"] = number(int(self._clock.now()))
        same = f"{_GENERATION} = :gen"
        if generation == 0:  # an item written before the attribute existed
            same = f"(attribute_not_exists({_GENERATION}) OR {same})"
        return f"{same} AND (attribute_not_exists({_REQUEUE_HOLD}) OR {_REQUEUE_HOLD} < :nowN)"

    # -- requeue-unknown's hold on completion --------------------------------------------------

    def begin_requeue(self, campaign_id: str, until_s: float) -> None:
        try:
            self._table.update(
                campaign_key(campaign_id),
                f"SET {_REQUEUE_HOLD} = :until",
                condition="attribute_exists(PK) AND NOT (#s IN (:done, :gone))",
                names=_STATUS,
                values={":until": number(int(until_s)), **_TERMINAL},
                refused_item=True,
                retry=self._retry,  # idempotent: a repeat sets the same value
            )
        except Refused as refused:
            if not refused.item:
                raise CampaignNotFound(campaign_id) from None
            current = refused.found.get("status", "UNKNOWN")
            raise InvalidTransition(str(current), "requeue-unknown") from None

    def end_requeue(self, campaign_id: str) -> None:
        token = WriteToken()
        self._table.update(
            campaign_key(campaign_id),
            f"ADD {_GENERATION} :one SET {WRITE_TOKEN} = :tok REMOVE {_REQUEUE_HOLD}",
            condition=f"attribute_exists(PK) AND NOT ({WRITE_TOKEN} = :tok)",
            values={":one": number(1), ":tok": text(token.value)},
            landed=token.landed,  # a repeat must not bump twice (harmless, but exact)
            retry=self._retry,
        )

    # -- the import lock ----------------------------------------------------------------------

    def lock_import(self, campaign_id: str, token: str, now_s: float) -> None:
        values: dict[str, Any] = {
            ":t": text(token),
            ":until": number(int(now_s + IMPORT_LOCK_S)),
            ":now": number(int(now_s)),
        }
        statuses = []
        for index, status in enumerate(sorted(POPULATE_STATUSES)):
            values[f":s{index}"] = text(status.value)
            statuses.append(f":s{index}")
        try:
            self._table.update(
                campaign_key(campaign_id),
                "SET importLock = :t, importLockUntil = :until",
                condition=(
                    f"attribute_exists(PK) AND #s IN ({', '.join(statuses)}) AND "
                    "(attribute_not_exists(importLock) OR importLock = :t "
                    "OR importLockUntil < :now)"
                ),
                names=_STATUS,
                values=values,
                refused_item=True,
            )
        except Refused as refused:
            if not refused.item:
                raise CampaignNotFound(campaign_id) from None
            current = refused.found.get("status")
            if current not in {s.value for s in POPULATE_STATUSES}:
                raise InvalidInput(
                    f"Campaign status is {current}: cannot populate "
                    "(only DRAFT or PAUSED campaigns take recipients)"
                ) from None
            raise ImportLocked(
                "Another import is running for this campaign; try again when it ends"
            ) from None

    def unlock_import(self, campaign_id: str, token: str) -> None:
        try:
            self._table.update(
                campaign_key(campaign_id),
                "REMOVE importLock, importLockUntil",
                condition="importLock = :t",
                values={":t": text(token)},
            )
        except Refused:
            return  # not ours (anymore): another import took the lapsed lock
