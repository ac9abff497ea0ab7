"""The DynamoDB store: campaign metadata and the recipient state machine, one conditional
write per step (never TransactWriteItems on the hot path: see docs/architecture.md)."""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from campaigns.aws.dynamo import (
    METADATA,
    USER_PREFIX,
    campaign_from_item,
    campaign_key,
    deserialize,
    is_conditional_failure,
    recipient_from_item,
    recipient_key,
    serialize,
    suppression_key,
    unavailable,
)
from campaigns.domain.clock import SystemClock, iso_utc
from campaigns.domain.errors import (
    CampaignNotFound,
    ImportLocked,
    InvalidInput,
    InvalidTransition,
    StoreUnavailable,
)
from campaigns.domain.models import (
    POPULATE_STATUSES,
    TRANSITIONS,
    Action,
    Campaign,
    CampaignStatus,
    Claim,
    Recipient,
    RecipientStatus,
    StatusCounts,
)
from campaigns.ports import ClaimResult, Clock, CommitResult
from campaigns.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

T = TypeVar("T")

# Attribute written with each transition (the seed's names, plus cancelledAt/resumedAt).
_TIMESTAMP_FIELD = {
    Action.START: "startedAt",
    Action.PAUSE: "pausedAt",
    Action.RESUME: "resumedAt",
    Action.CANCEL: "cancelledAt",
    Action.COMPLETE: "completedAt",
}
_S = {"#s": "status"}
SHARD_PREFIX = "COUNTER#"  # counter shard items: PK = CAMPAIGN#<id>, SK = COUNTER#<k>
COUNT_TOKEN_PREFIX = "countToken_"  # noqa: S105 (an attribute name, not a secret)
LEASE_EXPIRED = "lease expired"
IMPORT_LOCK_S = 900  # an import holds the campaign this long between renewals
# A unique token written with each write that must recognise itself after a lost answer:
# a timestamp is not enough, two racers can write within the same millisecond.
WRITE_TOKEN = "writeToken"  # noqa: S105 (an attribute name, not a secret)


def _write_token() -> str:
    return uuid.uuid4().hex


def _holds_token(item: dict[str, Any] | None, token: str) -> bool:
    """The item a refused condition returned carries our own token: our write had landed."""
    return item is not None and deserialize(item).get(WRITE_TOKEN) == token


def _str(value: str) -> dict[str, str]:
    return {"S": value}


def _num(value: float) -> dict[str, str]:
    return {"N": repr(value) if isinstance(value, float) else str(value)}


class DynamoStore:
    """Implements ``campaigns.ports.Store`` over the two existing tables."""

    def __init__(
        self,
        client: DynamoDBClient,
        settings: Settings,
        clock: Clock | None = None,
        commit_attempts: int = 4,
        counter_shards: int | None = None,
    ) -> None:
        self._db = client
        self._campaigns = settings.campaigns_table
        self._recipients = settings.recipients_table
        self._clock: Clock = clock or SystemClock()
        self._commit_attempts = commit_attempts
        self._shards = counter_shards or settings.counter_shards

    @property
    def client(self) -> DynamoDBClient:
        return self._db

    @property
    def campaigns_table(self) -> str:
        return self._campaigns

    @property
    def recipients_table(self) -> str:
        return self._recipients

    # -- campaigns -------------------------------------------------------------------------

    def create_campaign(self, campaign: Campaign) -> Campaign:
        item = campaign_key(campaign.campaign_id) | serialize(
            {
                "campaignId": campaign.campaign_id,
                "name": campaign.name,
                "templateName": campaign.template_name,
                "templateLanguage": campaign.template_language,
                "parameterFormat": campaign.parameter_format,
                "channel": "WHATSAPP",
                "audienceType": "CSV",
                "status": campaign.status.value,
                "totalRecipients": 0,
                "sentCount": 0,
                "failedCount": 0,
                "unknownCount": 0,
                "createdAt": campaign.created_at,
            }
        )
        try:
            self._call(
                "PutItem",
                lambda: self._db.put_item(
                    TableName=self._campaigns,
                    Item=item,
                    ConditionExpression="attribute_not_exists(PK)",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                ),
            )
        except _ConditionFailed as failed:
            found = deserialize(failed.item) if failed.item else {}
            if found.get("createdAt") == campaign.created_at and found.get("name") == campaign.name:
                return campaign  # our own put landed; its answer was lost and it was retried
            raise InvalidInput(f"Campaign already exists: {campaign.campaign_id}") from None
        return campaign

    def get_campaign(self, campaign_id: str) -> Campaign | None:
        """The campaign with its counters summed over its counter shards (one Query: the
        metadata item and the ``COUNTER#<k>`` items share the partition)."""
        meta, shards = self._campaign_items(campaign_id)
        if meta is None:
            return None
        return _with_shards(campaign_from_item(meta), shards)

    def _campaign_items(
        self, campaign_id: str
    ) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        response = self._call(
            "Query",
            lambda: self._db.query(
                TableName=self._campaigns,
                KeyConditionExpression="PK = :pk",
                ExpressionAttributeValues={":pk": campaign_key(campaign_id)["PK"]},
                ConsistentRead=True,
            ),
        )
        meta: dict[str, Any] | None = None
        shards: list[dict[str, Any]] = []
        for item in response.get("Items", []):
            sort_key = str(item["SK"]["S"])
            if sort_key == METADATA:
                meta = dict(item)
            elif sort_key.startswith(SHARD_PREFIX):
                shards.append(dict(item))
        return meta, shards

    def require_campaign(self, campaign_id: str) -> Campaign:
        campaign = self.get_campaign(campaign_id)
        if campaign is None:
            raise CampaignNotFound(campaign_id)
        return campaign

    def list_campaigns(self) -> list[Campaign]:
        metas: dict[str, dict[str, Any]] = {}
        shards: dict[str, list[dict[str, Any]]] = {}
        kwargs: dict[str, Any] = {
            "TableName": self._campaigns,
            "FilterExpression": "begins_with(PK, :p) AND (SK = :m OR begins_with(SK, :c))",
            "ExpressionAttributeValues": {
                ":p": _str("CAMPAIGN#"),
                ":m": _str(METADATA),
                ":c": _str(SHARD_PREFIX),
            },
        }
        while True:
            page = self._call("Scan", lambda: self._db.scan(**kwargs))
            for item in page.get("Items", []):
                pk = str(item["PK"]["S"])
                if item["SK"]["S"] == METADATA:
                    metas[pk] = dict(item)
                else:
                    shards.setdefault(pk, []).append(dict(item))
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        campaigns = [
            _with_shards(campaign_from_item(meta), shards.get(pk, [])) for pk, meta in metas.items()
        ]
        return sorted(campaigns, key=lambda c: c.created_at or "")

    def transition(
        self, campaign_id: str, action: Action, *, pause_reason: str | None = None
    ) -> Campaign:
        """Move the campaign by ``action`` with one conditional write; two racing callers
        cannot both win (the loser gets ``InvalidTransition``)."""
        sources, target = TRANSITIONS[action]
        names = {"#s": "status", "#t": _TIMESTAMP_FIELD[action]}
        token = _write_token()
        values: dict[str, Any] = {
            ":to": _str(target.value),
            ":now": _str(self._iso_now()),
            ":tok": _str(token),
        }
        sets = ["#s = :to", "#t = :now", f"{WRITE_TOKEN} = :tok"]
        removes: list[str] = []
        if action is Action.PAUSE:
            sets.append("pauseReason = :r")
            values[":r"] = _str(pause_reason or "Paused by operator")
        elif action in (Action.START, Action.RESUME):
            removes.append("pauseReason")
        placeholders = []
        for index, status in enumerate(sorted(sources)):
            values[f":f{index}"] = _str(status.value)
            placeholders.append(f":f{index}")
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        condition = f"attribute_exists(PK) AND #s IN ({', '.join(placeholders)})"
        if action in (Action.START, Action.RESUME):
            # Not while a populate is writing: its late recipients would never be enqueued.
            condition += " AND (attribute_not_exists(importLock) OR importLockUntil < :nowN)"
            values[":nowN"] = _num(int(self._clock.now()))
        try:
            response = self._call(
                "UpdateItem",
                lambda: self._db.update_item(
                    TableName=self._campaigns,
                    Key=campaign_key(campaign_id),
                    UpdateExpression=expression,
                    ConditionExpression=condition,
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=values,
                    ReturnValues="ALL_NEW",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                ),
            )
        except _ConditionFailed as failed:
            if not failed.item:
                raise CampaignNotFound(campaign_id) from None
            found = deserialize(failed.item)
            current = found.get("status", "UNKNOWN")
            if _holds_token(failed.item, token):
                # Our own write landed and its answer was lost: botocore's retry met it.
                return campaign_from_item(failed.item)
            if current in {status.value for status in sources}:
                raise ImportLocked(
                    f"Campaign is being populated: cannot {action.value} until the import ends"
                ) from None
            raise InvalidTransition(str(current), action.value) from None
        return campaign_from_item(response["Attributes"])

    def add_counts(
        self,
        campaign_id: str,
        *,
        sent: int = 0,
        failed: int = 0,
        unknown: int = 0,
        slot: str | None = None,
    ) -> Campaign | None:
        """``ADD`` to the campaign counters; returns the campaign as it now is (None when the
        counters are sharded: one shard alone does not tell the campaign's state).

        With a ``slot`` (one per batch thread) the ADD is idempotent: it also writes a fresh
        token into that slot's attribute and is conditional on the slot not holding it yet, so
        a retry whose first attempt landed (answer lost) is recognised instead of counted twice.
        With ``COUNTER_SHARDS`` > 1 the ADD goes to ``COUNTER#<k>`` (k from the slot), summed
        on read, so no single item takes every write.
        """
        deltas = {"sentCount": sent, "failedCount": failed, "unknownCount": unknown}
        adds = [(name, delta) for name, delta in deltas.items() if delta]
        if not adds:
            return self.get_campaign(campaign_id)
        sharded = self._shards > 1
        key: Any = campaign_key(campaign_id)
        conditions = ["attribute_exists(PK)"]
        if sharded:
            key = {"PK": key["PK"], "SK": _str(f"{SHARD_PREFIX}{_shard_of(slot, self._shards)}")}
            conditions = []  # a shard item is created by its first ADD
        expression = "ADD " + ", ".join(f"{name} :{name}" for name, _ in adds)
        values: dict[str, Any] = {f":{name}": _num(delta) for name, delta in adds}
        request: dict[str, Any] = {}
        if slot is not None:
            token = f"{int(self._clock.now())}:{uuid.uuid4().hex[:12]}"
            request["ExpressionAttributeNames"] = {"#slot": COUNT_TOKEN_PREFIX + slot}
            values[":tok"] = _str(token)
            expression += " SET #slot = :tok"
            conditions.append("(attribute_not_exists(#slot) OR #slot <> :tok)")
        if conditions:
            request["ConditionExpression"] = " AND ".join(conditions)
        try:
            response = self._retrying(
                "UpdateItem",
                lambda: self._db.update_item(
                    TableName=self._campaigns,
                    Key=key,
                    UpdateExpression=expression,
                    ExpressionAttributeValues=values,
                    ReturnValues="NONE" if sharded else "ALL_NEW",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                    **request,
                ),
            )
        except _ConditionFailed as refused:
            if refused.item and slot is not None and not sharded:
                # Only our own landed write can hold this token: it counted, once.
                return campaign_from_item(refused.item)
            return None
        if sharded:
            return None
        return campaign_from_item(response["Attributes"])

    def prune_count_tokens(self, campaign_id: str, older_than_s: float) -> int:
        """Remove the idempotency tokens of batch threads idle for ``older_than_s``."""
        meta, shards = self._campaign_items(campaign_id)
        cutoff = self._clock.now() - older_than_s
        stale = [
            ({"PK": raw["PK"], "SK": raw["SK"]}, name, value)
            for raw in ([meta] if meta else []) + shards
            for name, value in deserialize(raw).items()
            if name.startswith(COUNT_TOKEN_PREFIX)
            and isinstance(value, str)
            and float(value.split(":", 1)[0]) < cutoff
        ]
        removed = 0
        for key, name, value in stale:
            try:  # only if no thread reused the slot meanwhile
                self._call(
                    "UpdateItem",
                    lambda key=key, name=name, value=value: self._db.update_item(  # type: ignore[misc]
                        TableName=self._campaigns,
                        Key=key,
                        UpdateExpression="REMOVE #slot",
                        ConditionExpression="#slot = :tok",
                        ExpressionAttributeNames={"#slot": name},
                        ExpressionAttributeValues={":tok": _str(value)},
                    ),
                )
                removed += 1
            except _ConditionFailed:
                continue
        return removed

    def add_total(self, campaign_id: str, inserted: int) -> None:
        try:
            self._retrying(
                "UpdateItem",
                lambda: self._db.update_item(
                    TableName=self._campaigns,
                    Key=campaign_key(campaign_id),
                    UpdateExpression="ADD totalRecipients :n",
                    ConditionExpression="attribute_exists(PK)",
                    ExpressionAttributeValues={":n": _num(inserted)},
                ),
            )
        except _ConditionFailed:
            raise CampaignNotFound(campaign_id) from None

    def set_counter(self, campaign_id: str, name: str, expected: int | None, value: int) -> bool:
        """Make one counter's total (metadata + shards) ``value`` if it still is ``expected``;
        False if it moved. The correction goes to the metadata item, conditional on the value
        read there."""
        meta, shards = self._campaign_items(campaign_id)
        if meta is None:
            return False
        shard_sum = sum(int(deserialize(item).get(name, 0)) for item in shards)
        raw = deserialize(meta).get(name)
        if expected is None and raw is not None:
            return False  # "absent" was expected but it is there
        if (raw or 0) + shard_sum != (expected or 0):
            return False
        condition = "attribute_not_exists(#c)" if raw is None else "#c = :old"
        values: dict[str, Any] = {":new": _num(value - shard_sum)}
        if raw is not None:
            values[":old"] = _num(int(raw))
        try:
            self._call(
                "UpdateItem",
                lambda: self._db.update_item(
                    TableName=self._campaigns,
                    Key=campaign_key(campaign_id),
                    UpdateExpression="SET #c = :new",
                    ConditionExpression=f"attribute_exists(PK) AND {condition}",
                    ExpressionAttributeNames={"#c": name},
                    ExpressionAttributeValues=values,
                ),
            )
        except _ConditionFailed:
            return False
        return True

    def count_statuses(self, campaign_id: str) -> StatusCounts:
        counts: dict[RecipientStatus, int] = {}
        for recipient in self.iter_recipients(campaign_id):
            counts[recipient.status] = counts.get(recipient.status, 0) + 1
        return StatusCounts(counts)

    def iter_recipients(
        self, campaign_id: str, status: RecipientStatus | None = None, page_size: int = 500
    ) -> Any:
        """Yield the campaign's recipients page by page (constant memory)."""
        kwargs: dict[str, Any] = {
            "TableName": self._recipients,
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :u)",
            "ExpressionAttributeValues": {
                ":pk": campaign_key(campaign_id)["PK"],
                ":u": _str(USER_PREFIX),
            },
            "ConsistentRead": True,
            "Limit": page_size,
        }
        if status is not None:
            kwargs["FilterExpression"] = "#s = :st"
            kwargs["ExpressionAttributeNames"] = _S
            kwargs["ExpressionAttributeValues"][":st"] = _str(status.value)
        while True:
            page = self._call("Query", lambda: self._db.query(**kwargs))
            for item in page.get("Items", []):
                yield recipient_from_item(campaign_id, item)
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def suppress(self, phone: str, reason: str) -> None:
        self._retrying(
            "PutItem",
            lambda: self._db.put_item(
                TableName=self._campaigns,
                Item=suppression_key(phone)
                | serialize({"phone": phone, "reason": reason, "createdAt": self._iso_now()}),
            ),
        )

    # -- the import lock: one populate at a time, and no start/resume while it runs --------

    def lock_import(self, campaign_id: str, token: str, now_s: float) -> None:
        values: dict[str, Any] = {
            ":t": {"S": token},
            ":until": {"N": str(int(now_s + IMPORT_LOCK_S))},
            ":now": {"N": str(int(now_s))},
        }
        statuses = []
        for index, status in enumerate(sorted(POPULATE_STATUSES)):
            values[f":s{index}"] = {"S": status.value}
            statuses.append(f":s{index}")
        try:
            self._db.update_item(
                TableName=self._campaigns,
                Key=campaign_key(campaign_id),
                UpdateExpression="SET importLock = :t, importLockUntil = :until",
                ConditionExpression=(
                    f"attribute_exists(PK) AND #s IN ({', '.join(statuses)}) AND "
                    "(attribute_not_exists(importLock) OR importLock = :t "
                    "OR importLockUntil < :now)"
                ),
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=values,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if not is_conditional_failure(exc):
                raise unavailable(exc, "UpdateItem") from None
            item: Any = exc.response.get("Item")
            if not item:
                raise CampaignNotFound(campaign_id) from None
            data = deserialize(item)
            if data.get("status") not in {s.value for s in POPULATE_STATUSES}:
                raise InvalidInput(
                    f"Campaign status is {data.get('status')}: cannot populate "
                    "(only DRAFT or PAUSED campaigns take recipients)"
                ) from None
            raise ImportLocked(
                "Another import is running for this campaign; try again when it ends"
            ) from None
        except BotoCoreError as exc:
            raise unavailable(exc, "UpdateItem") from None

    def unlock_import(self, campaign_id: str, token: str) -> None:
        try:
            self._db.update_item(
                TableName=self._campaigns,
                Key=campaign_key(campaign_id),
                UpdateExpression="REMOVE importLock, importLockUntil",
                ConditionExpression="importLock = :t",
                ExpressionAttributeValues={":t": {"S": token}},
            )
        except ClientError as exc:
            if not is_conditional_failure(exc):
                raise unavailable(exc, "UpdateItem") from None
        except BotoCoreError as exc:
            raise unavailable(exc, "UpdateItem") from None

    # -- recipients: the hot path ------------------------------------------------------------

    def claim(self, campaign_id: str, phone: str, owner: str, lease_until: float) -> ClaimResult:
        """PENDING → SENDING under ``owner``, ``ADD attempts 1``; refused unless PENDING."""
        try:
            response = self._call(
                "UpdateItem",
                lambda: self._db.update_item(
                    TableName=self._recipients,
                    Key=recipient_key(campaign_id, phone),
                    UpdateExpression=(
                        "SET #s = :sending, leaseOwner = :o, leaseUntil = :u, claimedAt = :now "
                        "ADD attempts :one"
                    ),
                    ConditionExpression="#s = :pending",
                    ExpressionAttributeNames=_S,
                    ExpressionAttributeValues={
                        ":sending": _str(RecipientStatus.SENDING.value),
                        ":pending": _str(RecipientStatus.PENDING.value),
                        ":o": _str(owner),
                        ":u": _num(lease_until),
                        ":now": _str(self._iso_now()),
                        ":one": _num(1),
                    },
                    ReturnValues="ALL_NEW",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                ),
            )
        except _ConditionFailed as failed:
            current = recipient_from_item(campaign_id, failed.item) if failed.item else None
            if current and current.lease_owner == owner and current.lease_until == lease_until:
                # Our own claim landed and its answer was lost; botocore's retry met it.
                return ClaimResult(claim=Claim(current, owner, lease_until))
            return ClaimResult(claim=None, current=current)
        recipient = recipient_from_item(campaign_id, response["Attributes"])
        return ClaimResult(claim=Claim(recipient=recipient, owner=owner, lease_until=lease_until))

    def record_attempt(self, claim: Claim, lease_until: float) -> Claim | None:
        """Before a retry: ``ADD attempts 1`` and extend the lease; None if the lease was lost."""
        try:
            response = self._retrying(
                "UpdateItem",
                lambda: self._db.update_item(
                    TableName=self._recipients,
                    Key=self._key(claim),
                    UpdateExpression="SET leaseUntil = :u ADD attempts :one",
                    # On attempts too, so a retried write cannot count one request twice.
                    ConditionExpression="#s = :sending AND leaseOwner = :o AND attempts = :n",
                    ExpressionAttributeNames=_S,
                    ExpressionAttributeValues={
                        ":sending": _str(RecipientStatus.SENDING.value),
                        ":o": _str(claim.owner),
                        ":u": _num(lease_until),
                        ":one": _num(1),
                        ":n": _num(claim.recipient.attempts),
                    },
                    ReturnValues="ALL_NEW",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                ),
            )
        except _ConditionFailed as failed:
            # Our own earlier try may have landed (answer lost): the lease we asked for is there.
            now = (
                recipient_from_item(claim.recipient.campaign_id, failed.item)
                if failed.item
                else None
            )
            if not (now and now.lease_owner == claim.owner and now.lease_until == lease_until):
                return None
            return Claim(recipient=now, owner=claim.owner, lease_until=lease_until)
        recipient = recipient_from_item(claim.recipient.campaign_id, response["Attributes"])
        return Claim(recipient=recipient, owner=claim.owner, lease_until=lease_until)

    def release(self, claim: Claim, *, refund_attempt: bool, halted: bool = False) -> bool:
        """SENDING → PENDING. ``refund_attempt``: the claimed request was never made;
        ``halted``: it was answered with a campaign-level error (not this number's fault)."""
        adds = []
        values: dict[str, Any] = {
            ":sending": _str(RecipientStatus.SENDING.value),
            ":pending": _str(RecipientStatus.PENDING.value),
            ":o": _str(claim.owner),
        }
        if refund_attempt:
            adds.append("attempts :minus")
            values[":minus"] = _num(-1)
        if halted:
            adds.append("haltedAttempts :one")
            values[":one"] = _num(1)
        expression = "SET #s = :pending REMOVE leaseOwner, leaseUntil"
        if adds:
            expression += " ADD " + ", ".join(adds)
        try:
            self._retrying(
                "UpdateItem",
                lambda: self._db.update_item(
                    TableName=self._recipients,
                    Key=self._key(claim),
                    UpdateExpression=expression,
                    ConditionExpression="#s = :sending AND leaseOwner = :o",
                    ExpressionAttributeNames=_S,
                    ExpressionAttributeValues=values,
                ),
            )
        except _ConditionFailed:
            return False
        return True

    def commit_sent(self, claim: Claim, message_id: str, now_s: float) -> CommitResult:
        return self._commit(claim, RecipientStatus.SENT, ("messageId", message_id), "sentAt", now_s)

    def commit_failed(self, claim: Claim, error_code: str, now_s: float) -> CommitResult:
        return self._commit(
            claim, RecipientStatus.FAILED, ("errorCode", error_code), "failedAt", now_s
        )

    def commit_unknown(self, claim: Claim, reason: str, now_s: float) -> CommitResult:
        return self._commit(
            claim,
            RecipientStatus.UNKNOWN,
            ("unknownReason", reason),
            "unknownAt",
            now_s,
            from_unknown=False,
        )

    def _commit(
        self,
        claim: Claim,
        status: RecipientStatus,
        outcome: tuple[str, str],
        stamp_field: str,
        now_s: float,
        *,
        from_unknown: bool = True,
    ) -> CommitResult:
        """SENDING → final, conditional on our lease. The owner stays on the item, so an
        outcome learned after our lease expired to UNKNOWN still resolves it exactly."""
        condition = "leaseOwner = :o AND (#s = :sending"
        condition += " OR #s = :unknown)" if from_unknown else ")"
        field, value = outcome
        values: dict[str, Any] = {
            ":v": _str(value),
            ":now": _str(iso_utc(now_s)),
            ":o": _str(claim.owner),
            ":st": _str(status.value),
            ":sending": _str(RecipientStatus.SENDING.value),
        }
        if from_unknown:
            values[":unknown"] = _str(RecipientStatus.UNKNOWN.value)
        try:
            response = self._retrying(
                "UpdateItem",
                lambda: self._db.update_item(
                    TableName=self._recipients,
                    Key=self._key(claim),
                    UpdateExpression=(
                        f"SET #s = :st, {field} = :v, {stamp_field} = :now REMOVE leaseUntil"
                    ),
                    ConditionExpression=condition,
                    ExpressionAttributeNames=_S,
                    ExpressionAttributeValues=values,
                    ReturnValues="UPDATED_OLD",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                ),
            )
        except _ConditionFailed as failed:
            # A retried write whose first answer was lost finds its own result in place.
            now = deserialize(failed.item) if failed.item else {}
            landed = (
                now.get("status") == status.value
                and now.get("leaseOwner") == claim.owner
                and now.get(field) == value
            )
            return CommitResult(committed=landed)
        old = deserialize(response.get("Attributes", {})).get("status")
        return CommitResult(committed=True, was_unknown=old == RecipientStatus.UNKNOWN.value)

    def expire_lease(self, recipient: Recipient, now_s: float) -> bool:
        """A SENDING recipient whose lease expired was claimed by a process that died: it may
        or may not have been sent, so it becomes UNKNOWN (never resent automatically)."""
        token = _write_token()
        try:
            self._retrying(
                "UpdateItem",
                lambda: self._db.update_item(
                    TableName=self._recipients,
                    Key=recipient_key(recipient.campaign_id, recipient.phone),
                    UpdateExpression=(
                        f"SET #s = :unknown, unknownReason = :r, unknownAt = :now, "
                        f"{WRITE_TOKEN} = :tok"
                    ),
                    ConditionExpression="#s = :sending AND leaseUntil < :t",
                    ExpressionAttributeNames=_S,
                    ExpressionAttributeValues={
                        ":unknown": _str(RecipientStatus.UNKNOWN.value),
                        ":sending": _str(RecipientStatus.SENDING.value),
                        ":r": _str(LEASE_EXPIRED),
                        ":now": _str(iso_utc(now_s)),
                        ":t": _num(now_s),
                        ":tok": _str(token),
                    },
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                ),
            )
        except _ConditionFailed as failed:
            # True only if it was this very write (answer lost, retried), not someone else's.
            return _holds_token(failed.item, token)
        return True

    def requeue_unknown(self, recipient: Recipient) -> bool:
        """UNKNOWN → PENDING, for an operator who accepts the duplicate risk."""
        token = _write_token()
        try:
            self._retrying(
                "UpdateItem",
                lambda: self._db.update_item(
                    TableName=self._recipients,
                    Key=recipient_key(recipient.campaign_id, recipient.phone),
                    UpdateExpression=(
                        f"SET #s = :pending, requeuedAt = :now, {WRITE_TOKEN} = :tok "
                        "REMOVE leaseOwner"
                    ),
                    ConditionExpression="#s = :unknown",
                    ExpressionAttributeNames=_S,
                    ExpressionAttributeValues={
                        ":unknown": _str(RecipientStatus.UNKNOWN.value),
                        ":pending": _str(RecipientStatus.PENDING.value),
                        ":now": _str(self._iso_now()),
                        ":tok": _str(token),
                    },
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                ),
            )
        except _ConditionFailed as failed:
            return _holds_token(failed.item, token)
        return True

    # -- plumbing ---------------------------------------------------------------------------

    @staticmethod
    def _key(claim: Claim) -> Any:
        return recipient_key(claim.recipient.campaign_id, claim.recipient.phone)

    def _iso_now(self) -> str:
        return iso_utc(self._clock.now())

    def _call(self, what: str, call: Callable[[], T]) -> T:
        """One request (botocore retries throttling and 5xx itself); errors translated."""
        try:
            return call()
        except ClientError as exc:
            if is_conditional_failure(exc):
                raise _ConditionFailed(exc.response.get("Item")) from None  # type: ignore[arg-type]
            raise unavailable(exc, what) from None
        except BotoCoreError as exc:
            raise unavailable(exc, what) from None

    def _retrying(self, what: str, call: Callable[[], T]) -> T:
        """Writes whose loss would leave state wrong (a commit after an accepted send) get our
        own bounded loop on top of botocore's retries."""
        delay_s = 0.2
        for attempt in range(1, self._commit_attempts + 1):
            try:
                return self._call(what, call)
            except StoreUnavailable:
                if attempt == self._commit_attempts:
                    raise
                self._clock.sleep(delay_s)
                delay_s *= 2
        raise AssertionError("unreachable")  # pragma: no cover


def _shard_of(slot: str | None, shards: int) -> int:
    return zlib.crc32((slot or "").encode()) % shards


def _with_shards(campaign: Campaign, shards: list[dict[str, Any]]) -> Campaign:
    if not shards:
        return campaign
    totals = {"sentCount": 0, "failedCount": 0, "unknownCount": 0}
    for item in shards:
        data = deserialize(item)
        for name in totals:
            totals[name] += int(data.get(name, 0))
    return replace(
        campaign,
        sent_count=campaign.sent_count + totals["sentCount"],
        failed_count=campaign.failed_count + totals["failedCount"],
        unknown_count=campaign.unknown_count + totals["unknownCount"],
    )


class _ConditionFailed(Exception):
    def __init__(self, item: dict[str, Any] | None) -> None:
        super().__init__("condition failed")
        self.item = item


__all__ = ["CampaignStatus", "DynamoStore"]
