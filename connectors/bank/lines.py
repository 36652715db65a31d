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
from datetime import date, datetime
from typing import Any

from hub.spi.importer import ImportFileError

EVENT_TYPE = "bank.line"


class BankFileError(ImportFileError):
    """A statement file that cannot be imported; names the file, line (or item) and reason."""


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
