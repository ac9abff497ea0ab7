"""Phone numbers: normalised to E.164 digits, masked for logs."""

from __future__ import annotations

import pytest

from campaigns.domain.phones import InvalidPhone, mask, normalise


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+91 98765 43210", "919876543210"),
        ("+919876543210", "919876543210"),
        ("919876543210", "919876543210"),
        ("9876543210", "919876543210"),  # national number, default region IN
        ("09876543210", "919876543210"),  # trunk prefix 0
        ("098765 43210", "919876543210"),
        ("0091 98765 43210", "919876543210"),  # international 00 prefix
        ("0091-98765-43210", "919876543210"),
        ("98765-43210", "919876543210"),
        ("(98765) 43210", "919876543210"),
        ("  +91 98765 43210  ", "919876543210"),
        ("+1 650-253-0000", "16502530000"),
        ("0044 20 7946 0958", "442079460958"),
    ],
)
def test_common_ways_of_writing_a_number_normalise_to_e164_digits(raw: str, expected: str) -> None:
    assert normalise(raw) == expected


def test_the_default_region_decides_national_numbers() -> None:
    assert normalise("020 7946 0958", "GB") == "442079460958"
    assert normalise("(650) 253-0000", "US") == "16502530000"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty value"),
        ("   ", "empty value"),
        ("abc", "not a phone number"),
        ("123", "impossible number length"),
        ("+9198765432101234", "impossible number length"),
        ("91987654321", "not a valid number for its region"),
    ],
)
def test_an_invalid_value_is_refused_with_a_reason(raw: str, reason: str) -> None:
    with pytest.raises(InvalidPhone) as raised:
        normalise(raw)

    assert raised.value.value == raw
    assert raised.value.reason.startswith(reason)
    assert repr(raw) in str(raised.value)


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("919876543210", "9198******10"),
        ("+919876543210", "9198******10"),
        ("16502530000", "1650*****00"),
        ("1234567", "1234*67"),
        ("123456", "******"),
        ("", ""),
    ],
)
def test_a_masked_number_keeps_only_enough_to_correlate(phone: str, masked: str) -> None:
    assert mask(phone) == masked
