"""The price table (PRICES_FILE) and the estimate: exact decimals, the ``*`` fallback,
unpriced counts never guessed, and one clear line for every malformed table."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from campaigns.domain.errors import ConfigError
from campaigns.domain.pricing import parse_prices
from campaigns.operator.prices import MAX_PRICES_FILE_BYTES, load_prices

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "prices.example.csv"


def table(text: str) -> list[str]:
    return text.strip().splitlines()


def test_the_estimate_is_the_exact_sum_of_count_times_price() -> None:
    prices = parse_prices(
        table("""
            calling_code,category,price
            91,marketing,0.0107
            91,utility,0.0014
            44,marketing,0.0529
        """),
        "t",
    )

    estimate = prices.estimate(
        {("marketing", "91"): 3, ("utility", "91"): 7, ("marketing", "44"): 1}
    )

    assert estimate.total == Decimal("0.0107") * 3 + Decimal("0.0014") * 7 + Decimal("0.0529")
    assert estimate.to_public()["estimated"] == "0.0948"
    assert estimate.unpriced == 0
    assert [line["cost"] for line in estimate.to_public()["lines"]] == [
        "0.0529",
        "0.0321",
        "0.0098",
    ]


def test_a_star_row_prices_every_country_without_a_row_of_its_own() -> None:
    prices = parse_prices(
        table("calling_code,category,price\n91,marketing,0.01\n*,marketing,0.05"), "t"
    )

    assert prices.price("marketing", "91") == Decimal("0.01")
    assert prices.price("marketing", "55") == Decimal("0.05")
    assert prices.price("utility", "55") is None


def test_what_the_table_does_not_price_is_counted_as_unpriced_and_left_out() -> None:
    prices = parse_prices(table("calling_code,category,price\n91,marketing,0.01"), "t")

    estimate = prices.estimate({("marketing", "91"): 2, ("authentication", "91"): 5})

    assert (estimate.total, estimate.unpriced) == (Decimal("0.02"), 5)
    public = estimate.to_public()
    assert public["lines"][0] == {
        "category": "authentication",
        "callingCode": "91",
        "count": 5,
        "unitPrice": None,
        "cost": None,
    }


def test_comments_blank_lines_a_plus_sign_and_one_currency_are_accepted() -> None:
    prices = parse_prices(
        table("""
            # illustrative
            calling_code,category,price,currency

            +91,Marketing,0.0107,usd
            44,marketing,0.0529,USD
        """),
        "t",
    )

    assert prices.currency == "USD"
    assert prices.price("marketing", "91") == Decimal("0.0107")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "no header"),
        ("code,category,price", "line 1: the header must be"),
        ("calling_code,category,price\n91,marketing", "line 2: 2 values, expected 3"),
        ("calling_code,category,price\nIN,marketing,0.1", "line 2: calling code 'IN'"),
        ("calling_code,category,price\n91,market ing,0.1", "line 2: category 'market ing'"),
        ("calling_code,category,price\n91,marketing,cheap", "line 2: price 'cheap' is not"),
        ("calling_code,category,price\n91,marketing,-1", "line 2: price '-1' is not a non"),
        ("calling_code,category,price\n91,marketing,NaN", "line 2: price 'NaN' is not a non"),
        ("calling_code,category,price\n91,marketing,1\n91,marketing,2", "line 3: a second"),
        (
            "calling_code,category,price,currency\n91,marketing,1,USD\n44,marketing,1,EUR",
            "one currency per table, not EUR, USD",
        ),
        ("calling_code,category,price,currency\n91,marketing,1,dollars", "currency 'dollars'"),
    ],
)
def test_a_malformed_table_is_one_line_naming_where(text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_prices(text.splitlines(), "PRICES_FILE p.csv")

    message = str(raised.value)
    assert message.startswith("PRICES_FILE p.csv: ")
    assert problem in message
    assert "\n" not in message


def test_the_shipped_example_is_a_valid_table_with_a_fallback_row() -> None:
    prices = load_prices(EXAMPLE)

    assert prices.price("marketing", "999") is not None  # the * rows
    assert EXAMPLE.read_text().lstrip().startswith("#")  # it says what it is first


def test_a_missing_oversized_or_binary_file_is_one_line(tmp_path: Path) -> None:
    big = tmp_path / "big.csv"
    big.write_bytes(b"#" * (MAX_PRICES_FILE_BYTES + 1))
    binary = tmp_path / "bin.csv"
    binary.write_bytes(b"\xff\xfe\x00bad")

    for path, words in (
        (tmp_path / "missing.csv", "cannot be read"),
        (big, "larger than"),
        (binary, "not UTF-8"),
    ):
        with pytest.raises(ConfigError, match=words):
            load_prices(path)
