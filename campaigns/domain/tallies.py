"""A campaign's keyed counters ("tallies"): delivery failures by error code and billable
deliveries by pricing category and recipient country.

Each tally is one counter named by its key — ``deliveryFailed:META_131026``,
``billed:marketing:44`` — kept beside the fixed counters (on DynamoDB: an attribute of that name
on the delivery counter shards, summed on read). The keys come from Meta's webhooks, so each
part is checked here: an error code is ``META_<digits>`` (or ``NONE`` when a failure named
none), a category is Meta's lowercase word (anything else is ``other``), a calling code is
digits. That bounds the names and keeps them safe as attribute names and as labels of a table.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

FAILED_PREFIX = "deliveryFailed:"
BILLED_PREFIX = "billed:"
NO_CODE = "NONE"  # a "failed" status that carried no error code
OTHER_CATEGORY = "other"
_CODE = re.compile(r"^META_\d{1,9}$")
_CATEGORY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_CALLING_CODE = re.compile(r"^\d{1,4}$")


def code_label(error_code: str | None) -> str:
    """A delivery failure's code as a tally part or metric label: ``META_<digits>`` or NONE."""
    return error_code if error_code is not None and _CODE.match(error_code) else NO_CODE


def failure_key(error_code: str | None) -> str:
    return FAILED_PREFIX + code_label(error_code)


def category_of(raw: str | None) -> str | None:
    """Meta's ``pricing.category`` as a tally part (None: no pricing object)."""
    if raw is None:
        return None
    word = raw.strip().lower()
    return word if _CATEGORY.match(word) else OTHER_CATEGORY


def billed_key(category: str, calling_code: str) -> str:
    part = category_of(category) or OTHER_CATEGORY
    code = calling_code if _CALLING_CODE.match(calling_code) else "0"
    return f"{BILLED_PREFIX}{part}:{code}"


def is_tally(name: str) -> bool:
    return name.startswith((FAILED_PREFIX, BILLED_PREFIX))


def failures(tallies: Mapping[str, int]) -> dict[str, int]:
    """Error code → recipients whose delivery failed with it (non-zero only), by code."""
    found = {
        key[len(FAILED_PREFIX) :]: count
        for key, count in tallies.items()
        if key.startswith(FAILED_PREFIX) and count
    }
    return dict(sorted(found.items()))


def billed(tallies: Mapping[str, int]) -> dict[tuple[str, str], int]:
    """(category, calling code) → billable deliveries (non-zero only), sorted."""
    found: dict[tuple[str, str], int] = {}
    for key, count in tallies.items():
        if not key.startswith(BILLED_PREFIX) or not count:
            continue
        category, _, calling_code = key[len(BILLED_PREFIX) :].partition(":")
        found[(category, calling_code)] = count
    return dict(sorted(found.items()))
