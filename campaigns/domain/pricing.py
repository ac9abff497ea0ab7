"""The estimated cost of a campaign: its billable deliveries priced by an operator's table.

Meta bills a delivered template message by its pricing category and the recipient's country
(per-message pricing since July 2025) and publishes a rate card per currency that changes over
time, so the engine never holds prices: the operator gives a CSV (``PRICES_FILE``), one row per
country calling code and category::

    calling_code,category,price[,currency]
    91,marketing,0.0107
    *,marketing,0.0500

(``*``: any calling code without a row of its own). A line starting with ``#`` is a
comment. Prices are decimals (kept exact: ``Decimal``); the optional currency column, when
present, must name one currency for the whole table. The estimate is
``sum(count * price)`` over the campaign's billable deliveries (``Campaign.billed``); a
(category, country) with no row and no ``*`` row is counted as unpriced, never guessed.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from campaigns.domain.errors import ConfigError
from campaigns.domain.tallies import category_of

ANY_CODE = "*"
MONEY_PLACES = Decimal("0.0001")
MAX_PRICE_ROWS = 10_000
_CALLING_CODE = re.compile(r"^\d{1,4}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_HEADER = ("calling_code", "category", "price")


@dataclass(frozen=True)
class CostLine:
    category: str
    calling_code: str
    count: int
    unit_price: Decimal | None  # None: no row for it

    @property
    def cost(self) -> Decimal | None:
        return None if self.unit_price is None else self.unit_price * self.count


@dataclass(frozen=True)
class CostEstimate:
    currency: str | None
    lines: tuple[CostLine, ...]

    @property
    def total(self) -> Decimal:
        return sum((line.cost for line in self.lines if line.cost is not None), Decimal(0))

    @property
    def unpriced(self) -> int:
        """Billable deliveries the table has no price for (left out of the total)."""
        return sum(line.count for line in self.lines if line.unit_price is None)

    def to_public(self) -> dict[str, Any]:
        """Money as decimal strings (exact), four places."""
        return {
            "currency": self.currency,
            "estimated": _money(self.total),
            "unpriced": self.unpriced,
            "lines": [
                {
                    "category": line.category,
                    "callingCode": line.calling_code,
                    "count": line.count,
                    "unitPrice": None if line.unit_price is None else str(line.unit_price),
                    "cost": None if line.cost is None else _money(line.cost),
                }
                for line in self.lines
            ],
        }


@dataclass(frozen=True)
class PriceTable:
    prices: Mapping[tuple[str, str], Decimal]  # (calling code or "*", category) → price
    currency: str | None = None

    def price(self, category: str, calling_code: str) -> Decimal | None:
        found = self.prices.get((calling_code, category))
        return found if found is not None else self.prices.get((ANY_CODE, category))

    def estimate(self, billed: Mapping[tuple[str, str], int]) -> CostEstimate:
        lines = tuple(
            CostLine(category, code, count, self.price(category, code))
            for (category, code), count in sorted(billed.items())
        )
        return CostEstimate(self.currency, lines)


def parse_prices(lines: Iterable[str], source: str) -> PriceTable:
    """The table in ``lines`` (a CSV with the header above); ``ConfigError`` naming ``source``
    and the line of the first problem."""
    header: list[str] | None = None
    prices: dict[tuple[str, str], Decimal] = {}
    currencies: set[str] = set()
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        cells = [cell.strip() for cell in next(csv.reader([line]), [])]
        if header is None:
            header = [cell.lower() for cell in cells]
            if tuple(header[:3]) != _HEADER or header[3:] not in ([], ["currency"]):
                raise ConfigError(
                    f"{source}: line {number}: the header must be "
                    f"calling_code,category,price[,currency], not {line.strip()!r}"
                )
            continue
        where = f"{source}: line {number}"
        key, price, currency = _row(cells, len(header), where)
        if key in prices:
            raise ConfigError(f"{where}: a second price for {key[1]} at calling code {key[0]}")
        if len(prices) >= MAX_PRICE_ROWS:
            raise ConfigError(f"{source}: more than {MAX_PRICE_ROWS} prices")
        prices[key] = price
        if currency:
            currencies.add(currency)
    if header is None:
        raise ConfigError(f"{source}: no header (calling_code,category,price[,currency])")
    if len(currencies) > 1:
        raise ConfigError(f"{source}: one currency per table, not {', '.join(sorted(currencies))}")
    return PriceTable(prices, next(iter(currencies), None))


def _row(cells: list[str], width: int, where: str) -> tuple[tuple[str, str], Decimal, str | None]:
    if len(cells) != width:
        raise ConfigError(f"{where}: {len(cells)} values, expected {width}")
    code, raw_category, raw_price = cells[:3]
    if code != ANY_CODE and not _CALLING_CODE.match(code.lstrip("+")):
        raise ConfigError(f"{where}: calling code {code!r} is not 1-4 digits or *")
    category = category_of(raw_category)
    if not raw_category or category != raw_category.lower():
        raise ConfigError(f"{where}: category {raw_category!r} is not a word like marketing")
    try:
        price = Decimal(raw_price)
    except InvalidOperation:
        raise ConfigError(f"{where}: price {raw_price!r} is not a number") from None
    if not price.is_finite() or price < 0:
        raise ConfigError(f"{where}: price {raw_price!r} is not a non-negative number")
    currency = cells[3].upper() if width > 3 else None
    if currency is not None and not _CURRENCY.match(currency):
        raise ConfigError(f"{where}: currency {cells[3]!r} is not a 3-letter code like USD")
    return (code.lstrip("+"), raw_category.lower()), price, currency


def _money(amount: Decimal) -> str:
    return str(amount.quantize(MONEY_PLACES))
