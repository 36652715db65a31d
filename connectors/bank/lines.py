"""A statement line, whatever file it came from, and its identity in the log.

The external id is the bank's FITID when the file has one. Otherwise it is a stable key over
(account, date, amount, currency, description) plus the line's occurrence number among identical
lines of the same file, so an overlapping statement imports only what is new, while two
genuinely identical lines (two coffees at the same price on one day) both count.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from hub.domain.money import exponent
from hub.spi.importer import ImportFileError

EVENT_TYPE = "bank.line"
BALANCE_EVENT_TYPE = "bank.balance"

MINOR_LIMIT = 2**63
"""Amounts are kept in signed 64-bit minor units (the log's and PostgreSQL's bigint range),
symmetrically (``abs(amount) < MINOR_LIMIT``) so that a sign turned keeps it in range."""


class BankFileError(ImportFileError):
    """A statement file that cannot be imported; names the file, line (or item) and reason."""


def shortened(text: object, limit: int = 200) -> str:
    """``text`` for an error message, cut when long (a file may hold anything)."""
    value = str(text)
    return value if len(value) <= limit else f"{value[: limit - 20]}… ({len(value)} characters)"


def midnight(day: date, zone: ZoneInfo) -> datetime:
    """The start of ``day`` in ``zone`` (a line dated without a time happened then);
    ``ValueError`` when that instant is outside the years 1-9999 in UTC (0001-01-01 in a zone
    east of UTC), which the log cannot hold."""
    start = datetime.combine(day, time(), zone)
    try:
        start.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"date {day.isoformat()} is out of range in {zone.key}") from None
    return start


def quoted(text: object, limit: int = 40) -> str:
    """``text`` quoted for an error message, shortened when long."""
    value = str(text)
    if len(value) > limit:
        return f"{value[: limit - 12]!r}… ({len(value)} characters)"
    return repr(value)


def minor_units(amount: Decimal, currency: str, *, written: str | None = None) -> int:
    """``amount`` (major units, as the file wrote it) in minor units of ``currency``, exactly;
    ``ValueError`` for more precision than the currency has, or for an amount beyond 64-bit
    minor units.

    Computed on the digits themselves, not in a decimal context: a context rounds to 28
    significant digits and turns ``1e-999999999`` into 0, and expanding ``1E999999999`` would
    take a billion digits; both are refused here instead.
    """
    shown = quoted(written if written is not None else amount)
    if not amount.is_finite():
        raise ValueError(f"{shown} is not a finite amount")
    places = exponent(currency)
    sign, digits, power = amount.as_tuple()
    assert isinstance(power, int)  # finite
    trimmed = list(digits)
    while len(trimmed) > 1 and trimmed[-1] == 0:  # 1.500 is 1.5: trailing zeros are no precision
        trimmed.pop()
        power += 1
    if trimmed == [0]:
        return 0
    if power + places < 0:
        raise ValueError(f"{shown} has more than {places} decimal places for {currency}")
    if power + len(trimmed) - 1 > 20:  # far beyond 2**63 minor units in any currency
        raise ValueError(f"{shown} is too large (beyond 64-bit minor units)")
    minor = int("".join(map(str, trimmed))) * 10 ** (power + places)
    return bounded(-minor if sign else minor, shown)


def bounded(minor: int, shown: str = "the amount") -> int:
    """``minor`` if it is within 64-bit minor units either way; ``ValueError`` otherwise."""
    if abs(minor) >= MINOR_LIMIT:
        raise ValueError(f"{shown} is too large (beyond 64-bit minor units)")
    return minor


@dataclass(frozen=True)
class StatementLine:
    """One line of a bank statement. ``amount_minor`` > 0 is money in (OFX's sign)."""

    account: str
    posted_on: date
    occurred_at: datetime
    amount_minor: int
    currency: str
    description: str
    where: str
    """Where in the file: ``line 42`` or ``transactions[3]``."""
    fitid: str | None = None
    memo: str | None = None
    kind: str | None = None
    check_number: str | None = None
    original: dict[str, Any] | None = None
    """The line's fields as the file gave them (strings), kept in the event's data."""

    def data(self, file_format: str) -> dict[str, Any]:
        """The ``bank.line`` event's payload."""
        return {
            "account": self.account,
            "date": self.posted_on.isoformat(),
            "amount_minor": self.amount_minor,
            "currency": self.currency,
            "description": self.description,
            "memo": self.memo,
            "fitid": self.fitid,
            "kind": self.kind,
            "check_number": self.check_number,
            "format": file_format,
            "original": self.original or {},
        }


@dataclass(frozen=True)
class StatementBalance:
    """What a statement says the account held at the end of ``as_of`` (OFX ``LEDGERBAL``:
    ``BALAMT`` at ``DTASOF``); ``amount_minor`` > 0 is money the business has."""

    account: str
    as_of: date
    """The business date as the file wrote it (before any UTC shift)."""
    occurred_at: datetime
    amount_minor: int
    currency: str
    where: str

    @property
    def external_id(self) -> str:
        """``balance:<account>:<as-of date>``: one balance per account and day, so a statement
        imported again (or another file closing on the same day) adds nothing."""
        return f"balance:{self.account}:{self.as_of.isoformat()}"

    def data(self, file_format: str) -> dict[str, Any]:
        """The ``bank.balance`` event's payload."""
        return {
            "account": self.account,
            "date": self.as_of.isoformat(),
            "amount_minor": self.amount_minor,
            "currency": self.currency,
            "format": file_format,
        }


def _content_key(line: StatementLine) -> str:
    text = "\x1f".join(
        (
            line.account,
            line.posted_on.isoformat(),
            str(line.amount_minor),
            line.currency,
            line.description.strip(),
        )
    )
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def external_ids(lines: list[StatementLine]) -> list[str]:
    """Each line's external id: its FITID, else ``key:<content hash>#<occurrence>``."""
    seen: Counter[str] = Counter()
    ids = []
    for line in lines:
        if line.fitid:
            ids.append(line.fitid)
            continue
        key = _content_key(line)
        seen[key] += 1
        ids.append(f"key:{key}#{seen[key]}")
    return ids
