"""Ports for the web console (``hub.console``): what it shows of the books and of
reconciliation, read from whichever installed projections keep them.

- ``LedgerInspector``: the trial balance (``hub.spi.reports.TrialBalanceSource``), an account's
  postings page by page, and one journal entry with its postings and the log positions it came
  from (from which the console goes on to the stored events and their raw deliveries);
- ``ReconciliationInspector``: payout and exception pages (``hub.spi.reports.
  ReconciliationSource``), one order's chain to the bank and its accounting document, payouts
  and bank deposits per day (the console's chart), and the event that resolves or reopens an
  exception (the projection owns its source, type and shape).

As with the other ports, a projection implements the methods as class methods, so the class is
the inspector (``ledger_inspector`` and ``reconciliation_inspector`` find it among the installed
projections through ``hub.spi.registry.provider``). Each reads the projection's views through
``conn`` and raises ``hub.errors.InvalidInput`` for an ``after`` that is not a page's ``next``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import TYPE_CHECKING, Any, Protocol, cast, runtime_checkable

from hub.spi.registry import provider
from hub.spi.reports import ReconciliationSource, TrialBalanceSource

if TYPE_CHECKING:
    from hub.domain.events import NewEvent
    from hub.store.pool import Connection


@runtime_checkable
class LedgerInspector(TrialBalanceSource, Protocol):
    """The books as the console walks them: trial balance → account → entry → positions."""

    async def account_page(
        self,
        conn: Connection,
        tenant: str,
        code: str,
        *,
        after: str | None = None,
        limit: int = 100,
    ) -> dict[str, Any] | None:
        """``{"code", "entries": [...], "next"}``: a page of the postings to account ``code``,
        oldest first, each ``{"entry_key", "business_date", "kind", "description", "source",
        "positions", "currency", "debit_minor", "credit_minor"}`` (the shape of ``GET
        /v1/ledger/accounts/{code}/entries``); None when the tenant has no such account."""
        ...

    async def journal_entry(
        self, conn: Connection, tenant: str, entry_key: str
    ) -> dict[str, Any] | None:
        """``{"entry_key", "business_date", "kind", "description", "payee", "source",
        "positions", "postings": [{"account", "name", "currency", "debit_minor",
        "credit_minor"}]}``, or None when the tenant has no such entry."""
        ...


@runtime_checkable
class ReconciliationInspector(ReconciliationSource, Protocol):
    """Reconciliation as the console shows it: pages, an order's chain, the chart, resolving."""

    async def order_chain(
        self, conn: Connection, tenant: str, order_id: str, *, as_of: date | None = None
    ) -> dict[str, Any] | None:
        """``{"order", "payments", "document", "exceptions"}`` in the shape of ``GET
        /v1/reconciliation/orders/{id}``; None when the tenant has no such order."""
        ...

    async def exception_exists(self, conn: Connection, tenant: str, exception_id: str) -> bool:
        """Whether ``exception_id`` is an exception of ``tenant`` (listed or not yet due)."""
        ...

    async def payout_statuses(
        self, conn: Connection, tenant: str, *, as_of: date | None = None
    ) -> list[dict[str, Any]]:
        """Per status and currency (statuses evaluated on ``as_of``, default today in the
        tenant's zone): ``{"status", "currency", "count", "amount_minor"}``."""
        ...

    async def payouts_and_deposits(
        self, conn: Connection, tenant: str, *, start: date | None = None, end: date | None = None
    ) -> list[dict[str, Any]]:
        """Per day and currency from ``start`` to ``end`` (inclusive), oldest first:
        ``{"day", "currency", "payouts_minor", "deposits_minor"}`` — what payouts were due to
        arrive that day and what bank deposits came in."""
        ...

    def resolution(
        self,
        tenant: str,
        exception_id: str,
        reason: str,
        *,
        resolved: bool = True,
        external_id: str,
        meta: Mapping[str, Any],
    ) -> NewEvent:
        """The event that resolves (or, ``resolved=False``, reopens) an exception, as ``POST
        /v1/reconciliation/resolutions`` appends it."""
        ...

    def resolution_source(self) -> str:
        """The source of the resolutions made by people (a key needs ``ingest:<it>`` to append
        one through the API)."""
        ...


def ledger_inspector(environ: Mapping[str, str] | None = None) -> LedgerInspector:
    """The installed projection that keeps the books, as the console reads them."""
    return cast(LedgerInspector, provider(LedgerInspector, "the console's ledger", environ))


def reconciliation_inspector(environ: Mapping[str, str] | None = None) -> ReconciliationInspector:
    """The installed projection that reconciles payouts, as the console reads it."""
    return cast(
        ReconciliationInspector,
        provider(ReconciliationInspector, "the console's reconciliation", environ),
    )
