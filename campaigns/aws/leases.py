"""The recipient lease state machine, one conditional write per step (never TransactWriteItems
on the hot path: see docs/architecture.md):

    PENDING --claim--> SENDING --commit_sent/failed/unknown--> SENT / FAILED / UNKNOWN
    SENDING --release--> PENDING          SENDING --expire_lease--> UNKNOWN
    SENDING --renew / record_attempt--> SENDING (a later leaseUntil)

The lease owner is per claim, ``<consumer>#<token>`` (``new_lease_owner``): renew,
record_attempt, release and the commits are conditioned on the whole of it, so a write of an
earlier claim (replayed after its answer was lost) never touches a newer claim of the same
process. Items written by older code hold the bare consumer id and are matched as they are.
    UNKNOWN --requeue_unknown--> PENDING  (an operator who accepts the duplicate risk)

Each write that can be retried recognises its own landed try from the item a refused retry
finds: by the lease it asked for (claim, record_attempt), by the outcome it wrote (commits), or
by a ``writeToken`` (expire_lease, requeue_unknown).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from campaigns.aws.dynamo import (
    WRITE_TOKEN,
    Landed,
    Refused,
    Table,
    WriteToken,
    deserialize,
    number,
    text,
)
from campaigns.aws.items import RECIPIENT_ATTRIBUTES, recipient_from_item, recipient_key
from campaigns.domain.clock import iso_utc
from campaigns.domain.models import (
    LEASE_EXPIRED,
    Claim,
    DeliveryStatus,
    Recipient,
    RecipientStatus,
    new_lease_owner,
)
from campaigns.ports import ClaimResult, Clock, CommitResult

if TYPE_CHECKING:
    from tenacity import Retrying

_STATUS = {"#s": "status"}
_DELIVERY_STATUS = RECIPIENT_ATTRIBUTES["delivery_status"].name
_SENDING = text(RecipientStatus.SENDING.value)
_PENDING = text(RecipientStatus.PENDING.value)
_UNKNOWN = text(RecipientStatus.UNKNOWN.value)
_FINISHED_AT = RECIPIENT_ATTRIBUTES["finished_at"].name  # when it became final (epoch s)


def _holds_lease(owner: str, lease_until: float) -> Landed:
    """The item holds the very lease this write asked for (owner and until)."""
    return lambda found: found.get("leaseOwner") == owner and found.get("leaseUntil") == lease_until


def _holds_outcome(status: RecipientStatus, owner: str, field: str, value: str) -> Landed:
    """The item is final with the very outcome this commit wrote, under our owner."""
    return lambda found: (
        found.get("status") == status.value
        and found.get("leaseOwner") == owner
        and found.get(field) == value
    )


class Leases:
    """The recipient part of ``campaigns.ports.Store`` on the recipients table."""

    def __init__(self, table: Table, clock: Clock, retry: Retrying) -> None:
        self._table = table
        self._clock = clock
        self._retry = retry

    def claim(self, campaign_id: str, phone: str, owner: str, lease_until: float) -> ClaimResult:
        """PENDING → SENDING under a fresh per-claim owner ``<owner>#<token>``, ``ADD attempts
        1``; refused unless PENDING. A retried try recognises itself by that owner."""
        owner = new_lease_owner(owner)
        try:
            written = self._table.update(
                recipient_key(campaign_id, phone),
                "SET #s = :sending, leaseOwner = :o, leaseUntil = :u, claimedAt = :now "
                "ADD attempts :one",
                condition="#s = :pending",
                names=_STATUS,
                values={
                    ":sending": _SENDING,
                    ":pending": _PENDING,
                    ":o": text(owner),
                    ":u": number(lease_until),
                    ":now": text(iso_utc(self._clock.now())),
                    ":one": number(1),
                },
                returns="ALL_NEW",
                # A retried try finds its own claim by the per-claim owner: safe to retry, and
                # better than leaving it SENDING under a claim nobody holds (UNKNOWN later).
                landed=_holds_lease(owner, lease_until),
                retry=self._retry,
            )
        except Refused as refused:
            current = recipient_from_item(campaign_id, refused.item) if refused.item else None
            return ClaimResult(claim=None, current=current)
        recipient = recipient_from_item(campaign_id, written.item)
        return ClaimResult(claim=Claim(recipient=recipient, owner=owner, lease_until=lease_until))

    def record_attempt(self, claim: Claim, lease_until: float) -> Claim | None:
        """Before a retry: ``ADD attempts 1`` and extend the lease; None if the lease was lost."""
        return self._extend(
            claim,
            lease_until,
            "SET leaseUntil = :u ADD attempts :one",
            # On attempts too, so a retried write cannot count one request twice.
            " AND attempts = :n",
            {":one": number(1), ":n": number(claim.recipient.attempts)},
        )

    def renew(self, claim: Claim, lease_until: float) -> Claim | None:
        """Extend the lease of this very claim (owner and token), still SENDING; None if lost.
        A retried try whose first landed finds its own lease (owner and until)."""
        return self._extend(claim, lease_until, "SET leaseUntil = :u", "", {})

    def _extend(
        self,
        claim: Claim,
        lease_until: float,
        expression: str,
        condition: str,
        values: dict[str, Any],
    ) -> Claim | None:
        """One write of this very claim's lease (SENDING under its owner, plus ``condition``),
        ``leaseUntil`` set to ``lease_until``; the claim as written, or None if it was lost."""
        try:
            written = self._table.update(
                _key(claim),
                expression,
                condition="#s = :sending AND leaseOwner = :o" + condition,
                names=_STATUS,
                values={
                    ":sending": _SENDING,
                    ":o": text(claim.owner),
                    ":u": number(lease_until),
                    **values,
                },
                returns="ALL_NEW",
                landed=_holds_lease(claim.owner, lease_until),
                retry=self._retry,
            )
        except Refused:
            return None
        recipient = recipient_from_item(claim.recipient.campaign_id, written.item)
        return Claim(recipient=recipient, owner=claim.owner, lease_until=lease_until)

    def release(self, claim: Claim, *, refund_attempt: bool, halted: bool = False) -> bool:
        """SENDING → PENDING. ``refund_attempt``: the claimed request was never made;
        ``halted``: it was answered with a campaign-level error (not this number's fault)."""
        adds = []
        values: dict[str, Any] = {
            ":sending": _SENDING,
            ":pending": _PENDING,
            ":o": text(claim.owner),
        }
        if refund_attempt:
            adds.append("attempts :minus")
            values[":minus"] = number(-1)
        if halted:
            adds.append("haltedAttempts :one")
            values[":one"] = number(1)
        expression = "SET #s = :pending REMOVE leaseOwner, leaseUntil"
        if adds:
            expression += " ADD " + ", ".join(adds)
        try:
            self._table.update(
                _key(claim),
                expression,
                condition="#s = :sending AND leaseOwner = :o",
                names=_STATUS,
                values=values,
                retry=self._retry,
            )
        except Refused:
            return False
        return True

    def commit_sent(
        self, claim: Claim, message_id: str, now_s: float, *, held: bool = False
    ) -> CommitResult:
        return self._commit(
            claim, RecipientStatus.SENT, ("messageId", message_id), "sentAt", now_s, held=held
        )

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
        held: bool = False,
    ) -> CommitResult:
        """SENDING → final, conditional on our lease. The owner stays on the item, so an
        outcome learned after our lease expired to UNKNOWN still resolves it exactly. With
        ``held``, deliveryStatus becomes HELD only if no status webhook wrote one first
        (``if_not_exists``); the old item returned tells which (``marked_held``)."""
        condition = "leaseOwner = :o AND (#s = :sending"
        condition += " OR #s = :unknown)" if from_unknown else ")"
        field, value = outcome
        values: dict[str, Any] = {
            ":v": text(value),
            ":now": text(iso_utc(now_s)),
            ":fin": number(now_s),
            ":o": text(claim.owner),
            ":st": text(status.value),
            ":sending": _SENDING,
        }
        if from_unknown:
            values[":unknown"] = _UNKNOWN
        sets = f"SET #s = :st, {field} = :v, {stamp_field} = :now, {_FINISHED_AT} = :fin"
        names = dict(_STATUS)
        if held:
            sets += ", #d = if_not_exists(#d, :held)"
            names["#d"] = _DELIVERY_STATUS
            values[":held"] = text(DeliveryStatus.HELD.value)
        try:
            written = self._table.update(
                _key(claim),
                sets + " REMOVE leaseUntil",
                condition=condition,
                names=names,
                values=values,
                # ALL_OLD with held: the old deliveryStatus is there whether or not
                # if_not_exists kept it (UPDATED_OLD may leave out an unchanged value).
                returns="ALL_OLD" if held else "UPDATED_OLD",
                landed=_holds_outcome(status, claim.owner, field, value),
                retry=self._retry,
            )
        except Refused:
            return CommitResult(committed=False)
        found = deserialize(written.item)
        if written.replayed:  # the item as it is now, not its old status
            # Only this commit writes HELD (a status webhook never does): HELD now is ours.
            return CommitResult(
                committed=True,
                marked_held=held and found.get(_DELIVERY_STATUS) == DeliveryStatus.HELD.value,
            )
        return CommitResult(
            committed=True,
            was_unknown=found.get("status") == RecipientStatus.UNKNOWN.value,
            marked_held=held and _DELIVERY_STATUS not in found,
        )

    def expire_lease(self, recipient: Recipient, now_s: float) -> bool:
        """A SENDING recipient whose lease expired was claimed by a process that died: it may
        or may not have been sent, so it becomes UNKNOWN (never resent automatically). Only
        the very claim that was read (its owner, token included; a tokenless owner of older
        code as it is): a read that went stale cannot expire a newer claim."""
        token = WriteToken()
        values = {
            ":unknown": _UNKNOWN,
            ":sending": _SENDING,
            ":r": text(LEASE_EXPIRED),
            ":now": text(iso_utc(now_s)),
            ":fin": number(now_s),
            ":t": number(now_s),
            ":tok": text(token.value),
        }
        condition = "#s = :sending AND leaseUntil < :t AND "
        if recipient.lease_owner is None:
            condition += "attribute_not_exists(leaseOwner)"
        else:
            condition += "leaseOwner = :o"
            values[":o"] = text(recipient.lease_owner)
        try:
            self._table.update(
                recipient_key(recipient.campaign_id, recipient.phone),
                f"SET #s = :unknown, unknownReason = :r, unknownAt = :now, "
                f"{_FINISHED_AT} = :fin, {WRITE_TOKEN} = :tok",
                condition=condition,
                names=_STATUS,
                values=values,
                # True only if it was this very write (answer lost, retried), not someone else's.
                landed=token.landed,
                retry=self._retry,
            )
        except Refused:
            return False
        return True

    def requeue_unknown(self, recipient: Recipient) -> bool:
        """UNKNOWN → PENDING, for an operator who accepts the duplicate risk."""
        token = WriteToken()
        try:
            self._table.update(
                recipient_key(recipient.campaign_id, recipient.phone),
                f"SET #s = :pending, requeuedAt = :now, {WRITE_TOKEN} = :tok "
                f"REMOVE leaseOwner, {_FINISHED_AT}",
                condition="#s = :unknown",
                names=_STATUS,
                values={
                    ":unknown": _UNKNOWN,
                    ":pending": _PENDING,
                    ":now": text(iso_utc(self._clock.now())),
                    ":tok": text(token.value),
                },
                landed=token.landed,
                retry=self._retry,
            )
        except Refused:
            return False
        return True


def _key(claim: Claim) -> Any:
    return recipient_key(claim.recipient.campaign_id, claim.recipient.phone)
