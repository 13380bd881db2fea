"""Money in integer minor units: formatting, parsing what people type, and the platform fee."""

from __future__ import annotations

import pytest

from backend.money import fee_for, format_money, minor_unit_exponent, parse_amount


@pytest.mark.parametrize(("amount", "currency", "expected"), [
    (12345, "USD", "$123.45"),
    (12345, "EUR", "€123.45"),
    (12345, "GBP", "£123.45"),
    (12345, "JPY", "¥12,345"),
    (12345, "XYZ", "123.45 XYZ"),
    (12345, "CHF", "123.45 CHF"),
    (123456789, "USD", "$1,234,567.89"),
    (100000000, "JPY", "¥100,000,000"),
    (1234567, "KWD", "1,234.567 KWD"),  # three decimals
    (0, "USD", "$0.00"),
    (5, "USD", "$0.05"),
    (0, "JPY", "¥0"),
    (-12345, "EUR", "-€123.45"),
    (-5, "XYZ", "-0.05 XYZ"),
    (12345, "usd", "$123.45"),  # codes are case-insensitive
])
def test_format_money(amount, currency, expected):
    assert format_money(amount, currency) == expected


@pytest.mark.parametrize("bad", [123.45, "123", True, None])
def test_format_money_takes_integer_minor_units_only(bad):
    with pytest.raises(TypeError):
        format_money(bad, "USD")


@pytest.mark.parametrize("code", ["", "US", "USDX", "U$D", "12 3"])
def test_format_money_refuses_codes_that_are_not_iso_shaped(code):
    with pytest.raises(ValueError):
        format_money(100, code)


def test_minor_unit_exponent():
    assert [minor_unit_exponent(c) for c in ("USD", "JPY", "KWD", "XYZ")] == [2, 0, 3, 2]


@pytest.mark.parametrize(("amount", "bps", "fee"), [
    (10000, 1000, 1000),
    (12345, 1000, 1235),  # 1234.5 rounds half up
    (12344, 1000, 1234),
    (5, 1000, 1),  # 0.5 -> 1
    (4, 1000, 0),
    (0, 1000, 0),
    (999, 0, 0),
    (999, 10000, 999),
])
def test_fee_for_rounds_half_up_to_a_minor_unit(amount, bps, fee):
    assert fee_for(amount, bps) == fee


@pytest.mark.parametrize(("amount", "bps"), [(-1, 1000), (100, -1), (100, 10001), (1.5, 1000)])
def test_fee_for_refuses_nonsense(amount, bps):
    with pytest.raises(ValueError):
        fee_for(amount, bps)


@pytest.mark.parametrize(("text", "currency", "expected"), [
    ("120", "USD", 12000),
    ("120.5", "USD", 12050),
    ("120.50", "USD", 12050),
    ("1,250.50", "USD", 125050),
    (" $99 ", "USD", 9900),
    ("80 EUR", "EUR", 8000),
    ("€80", "EUR", 8000),
    ("1,000", "JPY", 1000),
    ("0.125", "KWD", 125),
    (".5", "USD", 50),
])
def test_parse_amount(text, currency, expected):
    assert parse_amount(text, currency, field_name="price") == expected


@pytest.mark.parametrize(("text", "currency", "message"), [
    ("", "USD", "Enter the price"),
    ("abc", "USD", "Enter the price as a number, like 120 or 120.50"),
    ("12.345", "USD", "The price can have at most 2 decimal places"),
    ("12.5", "JPY", "The price can have no decimals"),
    ("-5", "USD", "The price cannot be negative"),
    ("0", "USD", "The price must be more than zero"),
    ("1,2345", "USD", "Enter the price as a number, like 120 or 120.50"),
    ("1e3", "USD", "Enter the price as a number, like 120 or 120.50"),
    ("NaN", "USD", "Enter the price as a number, like 120 or 120.50"),
    ("80 EUR", "USD", "Enter the price as a number, like 120 or 120.50"),  # not the marketplace's currency
    ("1,000,001", "USD", "The price can be at most $1,000,000.00"),
])
def test_parse_amount_explains_what_is_wrong(text, currency, message):
    with pytest.raises(ValueError) as info:
        parse_amount(text, currency, field_name="price", maximum_major=1_000_000)
    assert str(info.value) == message


def test_parse_amount_allow_zero_makes_the_field_optional():
    assert parse_amount("", "USD", field_name="budget", allow_zero=True) == 0
    assert parse_amount("0", "USD", field_name="budget", allow_zero=True) == 0
    assert parse_amount("1,000,000", "USD", field_name="budget", maximum_major=1_000_000) == 100_000_000
