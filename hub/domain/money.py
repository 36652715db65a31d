"""Money as integer minor units plus an ISO 4217 currency. Never a float.

Each currency has an exponent (the number of minor-unit digits: JPY 0, USD 2, KWD 3).
``Money.parse("409.94", "USD")`` reads a decimal string exactly with ``Decimal`` and refuses more
precision than the currency has ("1.005" USD is an error, not 100 or 101 cents).
``parse_decimal`` is the lenient reader for bank files (thousands separators, ``(12.00)``).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, StrictInt, field_validator

# ISO 4217 minor-unit exponents that are not 2.
_EXPONENTS = {
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0, "PYG": 0,
    "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
    "CLF": 4, "UYW": 4,
}  # fmt: skip


def _currency_code(value: str) -> str:
    code = _CODES.get(value)
    if code is not None:
        return code
    code = value.upper()
    if len(code) != 3 or not code.isascii() or not code.isalpha():
        raise ValueError(f"{value!r} is not an ISO 4217 currency code")
    if len(_CODES) < 1024:  # spellings seen (``usd``, ``USD``): a handful in practice
        _CODES[value] = code
    return code


_CODES: dict[str, str] = {}
"""Currency spellings already checked, with their code (``_currency_code`` runs per amount)."""


Currency = Annotated[str, AfterValidator(_currency_code)]
"""An ISO 4217 code, upper-cased on the way in (Stripe sends ``usd``)."""


def exponent(currency: str) -> int:
    """Digits after the decimal point in ``currency`` (JPY 0, USD 2, KWD 3)."""
    return _EXPONENTS.get(currency.upper(), 2)


_PLAIN = re.compile(r"(-?)([0-9]+)(?:\.([0-9]+))?")
"""A decimal string in its common form (``409.94``, ``-5``): read without ``Decimal``."""


def to_minor(amount: Decimal | str | int, currency: str) -> int:
    """``amount`` (major units) in minor units; ``ValueError`` if it has more precision than the
    currency, or is a float, or a string that is not a plain decimal number (``"409.94"``)."""
    if type(amount) is str:  # the common form by its digits (a third of the time of Decimal)
        plain = _PLAIN.fullmatch(amount.strip())
        if plain is not None:
            sign, whole, fraction = plain.groups()
            digits = exponent(currency)
            fraction = fraction or ""
            if not fraction[digits:].strip("0"):  # no more precision than the currency has
                minor = int(whole + fraction[:digits].ljust(digits, "0"))
                return -minor if sign else minor
    if isinstance(amount, bool) or not isinstance(amount, Decimal | str | int):
        raise ValueError(f"an amount must be a decimal string, not {type(amount).__name__}")
    if isinstance(amount, str):
        try:
            amount = Decimal(amount.strip())
        except InvalidOperation as exc:
            raise ValueError(f"{amount!r} is not a decimal number") from exc
    value = Decimal(amount)
    if not value.is_finite():
        raise ValueError(f"{amount} is not a finite amount")
    scaled = value.scaleb(exponent(currency))
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} {currency} has more than {exponent(currency)} decimal places")
    return int(scaled)


def to_major(minor: int, currency: str) -> Decimal:
    """Integer minor units as an exact ``Decimal`` in major units (1099 USD → 10.99)."""
    return Decimal(minor).scaleb(-exponent(currency))


def parse_decimal(text: str) -> Decimal:
    """A decimal string (``-1,234.50``, ``(12.00)`` negative); ``ValueError`` if not one."""
    cleaned = text.strip().replace(",", "").replace(" ", "")
    negative = cleaned.startswith("(") and cleaned.endswith(")")
    if negative:
        cleaned = cleaned[1:-1]
    try:
        value = Decimal(cleaned)
    except InvalidOperation as exc:
        raise ValueError(f"{text!r} is not a decimal amount") from exc
    if not value.is_finite():
        raise ValueError(f"{text!r} is not a decimal amount")
    return -value if negative else value


class Money(BaseModel):
    """An amount in integer minor units of ``currency``. Signed; the sign's meaning is the
    field's (documented where used)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    minor: StrictInt
    currency: Currency

    @field_validator("minor", mode="before")
    @classmethod
    def _no_float(cls, value: Any) -> Any:
        if isinstance(value, float):
            raise ValueError("money is never a float: give integer minor units")
        return value

    @classmethod
    def of(cls, minor: int, currency: str) -> Money:
        """``Money(minor=minor, currency=currency)``, the same checks and errors, about twice
        as fast for the valid case (an int and a currency code): mappers and the books make
        several per event, and pydantic's ``__init__`` is most of their cost."""
        code = _CODES.get(currency) if type(currency) is str else None
        if code is None or type(minor) is not int:  # a bool, a float, a code not yet seen
            return cls(minor=minor, currency=currency)
        return _made(minor, code)

    @classmethod
    def parse(cls, amount: str | Decimal | int, currency: str) -> Money:
        """Money from a major-unit decimal string (Shopify ``"409.94"``), exactly."""
        return cls.of(to_minor(amount, currency), currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        """No money in ``currency``."""
        return cls.of(0, currency)

    def major(self) -> Decimal:
        """The amount in major units, exact."""
        return to_major(self.minor, self.currency)

    def __str__(self) -> str:
        return f"{self.major()} {self.currency}"

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise ValueError(f"cannot combine {self.currency} with {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return _made(self.minor + other.minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return _made(self.minor - other.minor, self.currency)

    def __neg__(self) -> Money:
        return _made(-self.minor, self.currency)


_new = object.__new__
_set = object.__setattr__


def _made(minor: int, code: str) -> Money:
    """A ``Money`` of values already valid (an int, a checked upper-case code), built as
    ``BaseModel.model_construct`` builds one, without its per-call overhead (arithmetic on
    valid amounts cannot make an invalid one)."""
    made = _new(Money)
    _set(made, "__dict__", {"minor": minor, "currency": code})
    _set(made, "__pydantic_fields_set__", {"minor", "currency"})
    _set(made, "__pydantic_extra__", None)
    _set(made, "__pydantic_private__", None)
    return made


def total(amounts: list[Money], currency: str) -> Money:
    """The sum of ``amounts`` (all in ``currency``); zero for none."""
    code = _CODES.get(currency) or Money.zero(currency).currency
    for amount in amounts:
        if amount.currency != code:
            raise ValueError(f"cannot combine {code} with {amount.currency}")
    return _made(sum(amount.minor for amount in amounts), code)
