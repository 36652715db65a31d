"""Money: exact decimal parsing per currency exponent, never a float, never silent rounding."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from hub.domain.money import Money, exponent, parse_decimal, to_major, to_minor


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("409.94", "USD", 40994),
        ("-3.45", "usd", -345),
        ("1500", "JPY", 1500),
        ("1.234", "KWD", 1234),
        ("0.10", "EUR", 10),
        ("12", "USD", 1200),
    ],
)
def test_decimal_strings_become_exact_minor_units(text: str, currency: str, minor: int) -> None:
    assert to_minor(text, currency) == minor
    assert Money.parse(text, currency).minor == minor


@pytest.mark.parametrize(
    ("text", "currency"), [("1.005", "USD"), ("1.5", "JPY"), ("0.0001", "KWD")]
)
def test_more_precision_than_the_currency_has_is_refused(text: str, currency: str) -> None:
    with pytest.raises(ValueError, match="decimal places"):
        to_minor(text, currency)


def test_floats_and_garbage_are_refused() -> None:
    with pytest.raises(ValueError, match="decimal string"):
        to_minor(10.99, "USD")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        Money(minor=10.0, currency="USD")
    with pytest.raises(ValueError, match="not a decimal"):
        parse_decimal("12;50")
    with pytest.raises(ValueError, match="decimal amount"):
        parse_decimal("NaN")
    with pytest.raises(ValidationError):
        Money(minor=1, currency="US")


def test_exponents_and_arithmetic() -> None:
    assert (exponent("JPY"), exponent("usd"), exponent("KWD")) == (0, 2, 3)
    assert Money.parse("10.99", "USD") + Money(minor=1, currency="USD") == Money.parse("11", "USD")
    with pytest.raises(ValueError, match="cannot combine"):
        _ = Money.zero("USD") + Money.zero("EUR")


@given(
    st.integers(min_value=-(10**15), max_value=10**15),
    st.sampled_from(["USD", "JPY", "KWD", "EUR", "CLF"]),
)
def test_minor_units_round_trip_through_decimal_strings(minor: int, currency: str) -> None:
    text = str(to_major(minor, currency))
    assert to_minor(text, currency) == minor
    assert Money.parse(text, currency).major() == Decimal(text)


@given(
    text=st.one_of(
        st.from_regex(r"\A-?[0-9]{1,15}(\.[0-9]{0,6})?\Z"),
        st.text(alphabet="0123456789.-+e_ ", max_size=12),
    ),
    currency=st.sampled_from(["USD", "JPY", "KWD", "CLF", "usd"]),
)
def test_strings_read_by_their_digits_agree_with_decimal(text: str, currency: str) -> None:
    """``to_minor`` reads common decimal strings without ``Decimal``: the same minor units, and
    the same refusals (too precise, not a number), as reading them with ``Decimal``."""
    try:
        value = Decimal(text.strip()).scaleb(exponent(currency))
        expected: int | None = int(value) if value.is_finite() and value == int(value) else None
    except ArithmeticError:
        expected = None
    try:
        got: int | None = to_minor(text, currency)
    except ValueError:
        got = None
    assert got == expected


def test_money_made_without_validation_is_the_validated_money() -> None:
    """``Money.of`` and arithmetic skip pydantic's ``__init__`` for valid values: the result
    compares, hashes, dumps and copies as the validated model does."""
    checked = Money(minor=-245, currency="usd")
    for made in (
        Money.of(-245, "usd"),
        Money.of(-245, "USD"),
        Money.of(100, "USD") - Money.of(345, "USD"),
        -Money.of(245, "USD"),
    ):
        assert made == checked
        assert hash(made) == hash(checked)
        assert made.model_dump() == checked.model_dump() == {"minor": -245, "currency": "USD"}
        assert made.model_fields_set == checked.model_fields_set
        assert made.model_copy(update={"minor": 1}) == Money(minor=1, currency="USD")
        with pytest.raises(ValidationError):
            made.minor = 3  # type: ignore[misc]  # frozen, as the validated one


@pytest.mark.parametrize(
    ("minor", "currency"), [(1.5, "USD"), (True, "USD"), ("12", "USD"), (12, "US"), (12, "U$D")]
)
def test_money_of_refuses_what_money_refuses(minor: object, currency: str) -> None:
    with pytest.raises(ValidationError):
        Money(minor=minor, currency=currency)
    with pytest.raises(ValidationError):
        Money.of(minor, currency)  # type: ignore[arg-type]
