"""Ports for the books' reports: where the framework's own commands (the demo, the CLI's
``ledger``, ``reconcile`` and ``export`` commands) read what a projection keeps without knowing
which projection keeps it.

- ``TrialBalanceSource``: a tenant's trial balance (``GET /v1/ledger/trial-balance``);
- ``JournalSource``: the journal, each entry with its postings, as the ledger keeps it
  (``GET /v1/ledger/journal``);
- ``ReconciliationSource``: payout and exception rows (``GET /v1/reconciliation/payouts`` and
  ``/exceptions``), with the same filters and pages.

A projection says it provides one by implementing the methods as class methods, so the class
itself is the source (``hub.spi.registry.provider`` finds it among the installed projections;
``trial_balance_source`` for the first), as ``hub.spi.documents.DocumentSource`` works for
accounting documents. Each reads the projection's views through ``conn`` and raises
``hub.errors.InvalidInput`` for an ``after`` that is not a page's ``next``. Rows hold Python
values (``date`` for a date, ``int`` minor units): ``hub.spi.exports`` writes them as CSV or
typed Excel, and ``orjson`` as the JSON the HTTP routes answer.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from hub.store.pool import Connection

PAYOUT_FIELDS = (
    "source", "payout_id", "currency", "amount_minor", "arrival_date", "status", "bank_line",
    "difference_minor", "gross_minor", "refunds_minor", "fees_minor", "disputes_minor",
    "adjustments_minor",
)  # fmt: skip
"""A payout reconciliation row's fields (DESIGN.md's contract), in order."""

EXCEPTION_FIELDS = (
    "id", "kind", "source", "reference", "amount_minor", "currency", "difference_minor",
    "detail", "resolved",
)  # fmt: skip
"""An exception row's fields (DESIGN.md's contract), in order."""

TRIAL_BALANCE_FIELDS = (
    "code", "name", "role", "currency", "debit_minor", "credit_minor", "balance_minor",
)  # fmt: skip
"""A trial balance line's fields (DESIGN.md's contract), in order."""

JOURNAL_FIELDS = (
    "entry_key", "business_date", "kind", "description", "payee", "source", "positions",
    "account", "currency", "debit_minor", "credit_minor",
)  # fmt: skip
"""A journal posting flattened to one row (``journal_rows``), in order."""


@runtime_checkable
class TrialBalanceSource(Protocol):
    """A tenant's trial balance, in the shape of ``GET /v1/ledger/trial-balance``."""

    async def trial_balance(
        self, conn: Connection, tenant: str, as_of: date | None = None
    ) -> dict[str, Any]:
        """``{"as_of", "lines": [{"code", "name", "role", "currency", "debit_minor",
        "credit_minor", "balance_minor"}], "balanced"}`` for entries dated on or before
        ``as_of`` (all when None)."""
        ...


@runtime_checkable
class JournalSource(Protocol):
    """A tenant's journal, in the shape of ``GET /v1/ledger/journal``."""

    async def journal(
        self,
        conn: Connection,
        tenant: str,
        *,
        start: date | None = None,
        end: date | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> dict[str, Any]:
        """A page ``{"entries": [...], "next"}`` of the entries dated ``start`` … ``end``
        (inclusive), by business date and key; each entry ``{"entry_key", "business_date",
        "kind", "description", "payee", "source", "positions", "postings": [{"account",
        "currency", "debit_minor", "credit_minor"}]}``. ``next`` (null on the last page) is
        the ``after`` of the following page."""
        ...


@runtime_checkable
class ReconciliationSource(Protocol):
    """A tenant's payout and exception rows, in the shape of the reconciliation routes."""

    async def payouts(
        self,
        conn: Connection,
        tenant: str,
        *,
        status: str | None = None,
        start: date | None = None,
        end: date | None = None,
        as_of: date | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> dict[str, Any]:
        """A page ``{"payouts": [row…], "next"}`` as ``GET /v1/reconciliation/payouts``
        answers it (``start``/``end``: its ``from``/``to``), statuses evaluated on ``as_of``
        (default today in the tenant's zone); rows have ``PAYOUT_FIELDS``."""
        ...

    async def exceptions(
        self,
        conn: Connection,
        tenant: str,
        *,
        kind: str | None = None,
        resolved: bool | None = None,
        as_of: date | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> dict[str, Any]:
        """A page ``{"exceptions": [row…], "next"}`` as ``GET /v1/reconciliation/exceptions``
        answers it; rows have ``EXCEPTION_FIELDS``."""
        ...


def journal_rows(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The postings of journal ``entries`` as flat rows of ``JOURNAL_FIELDS`` (one a posting,
    its entry's fields repeated; ``positions`` as space-separated numbers), for a table or a
    spreadsheet."""
    rows: list[dict[str, Any]] = []
    for entry in entries:
        head = {name: entry[name] for name in JOURNAL_FIELDS[:7]}
        head["positions"] = " ".join(str(p) for p in entry["positions"])
        rows.extend({**head, **posting} for posting in entry["postings"])
    return rows
