"""Meta error codes and what the engine does with each (``shared/WHATSAPP.md``).

All logic keys on ``error.code``, never on the HTTP status or the message text.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from campaigns.domain.models import OPERATOR_PAUSE_REASON, PauseReason


class Disposition(StrEnum):
    RETRY = "retry"  # transient server trouble: retry with backoff
    THROTTLE = "throttle"  # throughput limit: retry later and slow down
    PAIR_RATE = "pair_rate"  # same user too often: retry that recipient after 4^n s
    PAUSE = "pause"  # campaign-level: pause, recipient stays pending
    FAIL = "fail"  # recipient-level: fail the recipient, refund its cap unit
    FAIL_SUPPRESS = "fail_suppress"  # recipient opted out: fail and suppress the number


@dataclass(frozen=True)
class Verdict:
    disposition: Disposition
    pause_reason: PauseReason | None = None
    classified: bool = True


_THROTTLE = {130429, 4, 80007}
_PAIR_RATE = {131056}
_RETRY = {1, 2, 131000, 131016, 131057, 133004}
_PAUSE: dict[int, PauseReason] = {
    0: PauseReason.AUTH,
    190: PauseReason.AUTH,
    3: PauseReason.AUTH,
    10: PauseReason.AUTH,
    **dict.fromkeys(range(200, 300), PauseReason.AUTH),
    368: PauseReason.ACCOUNT,
    131031: PauseReason.ACCOUNT,
    130497: PauseReason.ACCOUNT,
    131048: PauseReason.QUALITY,
    131064: PauseReason.QUALITY,
    132001: PauseReason.TEMPLATE,
    132015: PauseReason.TEMPLATE,
    132016: PauseReason.TEMPLATE,
    131063: PauseReason.TEMPLATE,
}
_FAIL = {
    100, 131008, 131009, 132000, 132005, 132007, 132012,  # bad parameter or payload
    131026,  # undeliverable
    131047,  # outside the 24 h window
    131049,  # per-user marketing limit
    130472, 130403,  # experiment / blocked by the business
}  # fmt: skip
_FAIL_SUPPRESS = {131050}  # user opted out of marketing

HTTP_SERVER_ERROR = 500


def _table() -> dict[int, Verdict]:
    """Every known code's verdict; where a code sat in two groups the first group wins."""
    groups: list[tuple[set[int], Disposition]] = [
        (_THROTTLE, Disposition.THROTTLE),
        (_PAIR_RATE, Disposition.PAIR_RATE),
        (_RETRY, Disposition.RETRY),
        (set(_PAUSE), Disposition.PAUSE),
        (_FAIL, Disposition.FAIL),
        (_FAIL_SUPPRESS, Disposition.FAIL_SUPPRESS),
    ]
    table: dict[int, Verdict] = {}
    for codes, disposition in groups:
        for code in codes:
            reason = _PAUSE[code] if disposition is Disposition.PAUSE else None
            table.setdefault(code, Verdict(disposition, reason))
    return table


_VERDICTS = _table()


def classify(code: int, http_status: int) -> Verdict:
    """The engine's action for a Meta error ``code`` answered with ``http_status``."""
    known = _VERDICTS.get(code)
    if known is not None:
        return known
    # Not in the table: a server error is worth retrying, a client error fails the recipient.
    if http_status >= HTTP_SERVER_ERROR:
        return Verdict(Disposition.RETRY, classified=False)
    return Verdict(Disposition.FAIL, classified=False)


def pause_reason_text(reason: PauseReason, code: str) -> str:
    texts = {
        PauseReason.AUTH: "Authentication or permission failure",
        PauseReason.ACCOUNT: "Account restricted or locked",
        PauseReason.QUALITY: "Spam or quality enforcement",
        PauseReason.TEMPLATE: "Template missing, paused or disabled",
        PauseReason.DAILY_LIMIT: "Daily limit reached",
        PauseReason.OPERATOR: OPERATOR_PAUSE_REASON,
    }
    return f"{texts[reason]} ({code})"
