"""CSV statements, read with a column mapping (TOML, ``--mapping FILE``)::

[csv]
date = "Date"                   # the posting date column
date_format = "%m/%d/%Y"        # strptime format (default ISO, %Y-%m-%d)
description = ["Payee", "Memo"] # one column, or several joined with a space
amount = "Amount"               # a signed amount column, or instead:
# debit = "Withdrawal"          #   money out (a positive number)
# credit = "Deposit"            #   money in
sign = "inflow_positive"        # or "outflow_positive" (then the amount is negated)
currency = "USD"                # or currency_column = "Currency"
id = "Reference"                # optional: the bank's own line id (used like a FITID)
delimiter = ","
encoding = "utf-8-sig"
"""

from __future__ import annotations

import csv
import io
import tomllib
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from connectors.bank.lines import (
    BankFileError,
    StatementLine,
    bounded,
    midnight,
    minor_units,
    quoted,
)
from hub.domain.money import parse_decimal
from hub.errors import ConfigError


class CsvMapping(BaseModel):
    """How a bank's CSV export maps to statement lines."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    date: str = "Date"
    date_format: str = "%Y-%m-%d"
    description: str | list[str] = "Description"
    amount: str | None = None
    debit: str | None = None
    credit: str | None = None
    sign: Literal["inflow_positive", "outflow_positive"] = "inflow_positive"
    currency: str | None = Field(default="USD", pattern=r"^[A-Z]{3}$")
    currency_column: str | None = None
    id: str | None = None
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    encoding: str = "utf-8-sig"

    @model_validator(mode="before")
    @classmethod
    def _one_amount_style(cls, values: Any) -> Any:
        if not isinstance(values, dict):
            return values
        styles = [k for k in ("amount", "debit", "credit") if values.get(k) is not None]
        if not styles:
            return {**values, "amount": "Amount"}
        if "amount" in styles and len(styles) > 1:
            raise ValueError("give either amount, or debit and/or credit, not both")
        return values

    def columns(self) -> list[str]:
        """Every column this mapping reads."""
        described = [self.description] if isinstance(self.description, str) else self.description
        named = [
            self.date,
            *described,
            self.amount,
            self.debit,
            self.credit,
            self.currency_column,
            self.id,
        ]
        return [c for c in named if c]


NEWLINE = b"\n"


def load_mapping(path: Path | None) -> CsvMapping:
    """The ``[csv]`` table of a mapping file (defaults without one); ``ConfigError`` if bad."""
    if path is None:
        return CsvMapping()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the mapping file: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    try:
        return CsvMapping.model_validate(raw.get("csv", {}))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in ("csv", *first["loc"]))
        raise ConfigError(f"{path}: {where}: {first['msg']}") from exc


def _amount(row: dict[str, str], mapping: CsvMapping, currency: str) -> int:
    if mapping.amount is not None:
        written = row[mapping.amount]
        minor = _minor(written, currency)
    else:
        debit = row.get(mapping.debit or "", "").strip()
        credit = row.get(mapping.credit or "", "").strip()
        minor = (_minor(credit, currency) if credit else 0) - (
            _minor(debit, currency) if debit else 0
        )
    return bounded(-minor if mapping.sign == "outflow_positive" else minor)


def _minor(written: str, currency: str) -> int:
    try:
        return minor_units(_decimal(written), currency, written=written)
    except ValueError as exc:
        raise ValueError(f"amount {exc}") from None


def _decimal(text: str) -> Decimal:
    try:
        return parse_decimal(text)
    except ValueError:
        raise ValueError(f"{quoted(text)} is not a decimal number") from None


def parse_csv(
    name: str, data: bytes, *, account: str, mapping: CsvMapping, zone: ZoneInfo
) -> list[StatementLine]:
    """Every row as a statement line; dates are midnight in ``zone`` (the tenant's time zone)."""
    try:
        text = data.decode(mapping.encoding)
    except LookupError as exc:
        raise BankFileError(name, "line 1", f"unknown encoding {mapping.encoding!r}") from exc
    except UnicodeDecodeError as exc:
        where = f"line {data.count(NEWLINE, 0, exc.start) + 1}"
        reason = f"not {mapping.encoding} text ({exc.reason} at byte {exc.start})"
        raise BankFileError(name, where, reason) from exc
    # a row shorter than the header leaves its last columns empty (restval), as banks' exports
    # often drop trailing empty fields; a longer one is refused (``_line``)
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=mapping.delimiter, restval="")
    lines: list[StatementLine] = []
    problems: list[BankFileError] = []
    try:
        header = reader.fieldnames or []
        missing = [c for c in mapping.columns() if c not in header]
        if missing:
            columns = quoted(", ".join(header), 200)
            raise BankFileError(
                name, "line 1", f"the header has no column {missing[0]!r} (columns: {columns})"
            )
        for row in reader:
            where = f"line {reader.line_num}"
            try:
                lines.append(_line(row, mapping, account=account, zone=zone, where=where))
            except (ValueError, KeyError) as exc:
                problems.append(BankFileError(name, where, str(exc)))
    except csv.Error as exc:  # e.g. a field beyond the csv module's size limit
        problems.append(BankFileError(name, f"line {max(reader.line_num, 1)}", f"not CSV: {exc}"))
    if problems:
        raise BankFileError.combine(problems)
    return lines


def _line(
    row: dict[str, str], mapping: CsvMapping, *, account: str, zone: ZoneInfo, where: str
) -> StatementLine:
    if None in row:
        raise ValueError("the row has more fields than the header")
    currency = (
        (row[mapping.currency_column] if mapping.currency_column else mapping.currency or "")
        .strip()
        .upper()
    )
    if len(currency) != 3 or not currency.isascii() or not currency.isalpha():
        raise ValueError(f"currency {quoted(currency)} is not a currency code")
    date_text = (row.get(mapping.date) or "").strip()
    try:
        posted: date = datetime.strptime(date_text, mapping.date_format).date()
    except ValueError as exc:
        raise ValueError(
            f"date {quoted(date_text)} does not match {mapping.date_format!r}"
        ) from exc
    described = (
        [mapping.description] if isinstance(mapping.description, str) else mapping.description
    )
    description = " ".join(row[c].strip() for c in described if row.get(c, "").strip())
    return StatementLine(
        account=account,
        posted_on=posted,
        occurred_at=midnight(posted, zone),
        amount_minor=_amount(row, mapping, currency),
        currency=currency,
        description=description,
        where=where,
        fitid=(row[mapping.id].strip() or None) if mapping.id else None,
        original={k: v for k, v in row.items() if k is not None},
    )
