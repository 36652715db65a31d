"""Reading reconciliation: payouts and exceptions of one tenant, a page at a time.

Both read the ``ledgerhub_views`` functions (migration 0011), the same rows analysts query in
SQL, so the HTTP answers and the views cannot disagree. ``as_of`` is the day statuses are
evaluated on (None: today in the tenant's time zone): a payout with no deposit is ``pending``
until its window's last day has passed, ``missing_deposit`` after.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import asyncpg

from hub.spi.projection import Connection
from projections.reconciliation import Reconciliation

PAYOUT_COLUMNS = (
    "source", "payout_id", "currency", "amount_minor", "arrival_date", "status", "bank_line",
    "difference_minor", "gross_minor", "refunds_minor", "fees_minor", "disputes_minor",
    "adjustments_minor",
)  # fmt: skip
"""The payout reconciliation row of DESIGN.md's contract, in order."""

EXCEPTION_COLUMNS = (
    "id", "kind", "source", "reference", "amount_minor", "currency", "difference_minor",
    "detail", "resolved",
)  # fmt: skip
"""The exception row of DESIGN.md's contract, in order."""

CLEARING_COLUMNS = (
    "processor", "clearing_account", "currency", "business_date", "ledger_balance_minor",
    "processor_unpaid_minor", "difference_minor", "difference_change_minor", "status",
)  # fmt: skip
"""A clearing tie-out day (``ledgerhub_views.clearing_tieout`` without ``tenant``), in order."""

PayoutCursor = tuple[date, str, str]
"""Where a page of payouts ended: (arrival date, source, payout id)."""

ClearingCursor = tuple[date, str, str, str]
"""Where a page of tie-out days ended: (business date, processor, clearing account, currency)."""


async def payouts(
    conn: Connection,
    tenant: str,
    *,
    status: str | None = None,
    start: date | None = None,
    end: date | None = None,
    as_of: date | None = None,
    after: PayoutCursor | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Payouts arriving from ``start`` to ``end`` (inclusive), oldest first, optionally of
    one ``status``; ``after`` is the previous page's last ``(arrival_date, source, payout_id)``."""
    columns = ", ".join(PAYOUT_COLUMNS)
    rows = await conn.fetch(
        f"""
        SELECT {columns} FROM ledgerhub_views.reconciliation_payouts_at($2)
        WHERE tenant = $1 AND ($3::text IS NULL OR status = $3)
          AND ($4::date IS NULL OR arrival_date >= $4) AND ($5::date IS NULL OR arrival_date <= $5)
          AND ($6::date IS NULL OR (arrival_date, source, payout_id) > ($6, $7, $8))
        ORDER BY arrival_date, source, payout_id
        LIMIT $9
        """,
        tenant,
        as_of,
        status,
        start,
        end,
        *(after or (None, None, None)),
        limit,
    )
    return [dict(row) for row in rows]


async def exceptions(
    conn: Connection,
    tenant: str,
    *,
    kind: str | None = None,
    resolved: bool | None = None,
    as_of: date | None = None,
    after: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Exceptions by id, optionally of one ``kind`` or resolution state; ``after`` is the
    previous page's last id."""
    columns = ", ".join(EXCEPTION_COLUMNS)
    rows = await conn.fetch(
        f"""
        SELECT {columns} FROM ledgerhub_views.reconciliation_exceptions_at($2)
        WHERE tenant = $1 AND ($3::text IS NULL OR kind = $3)
          AND ($4::boolean IS NULL OR resolved = $4) AND ($5::text IS NULL OR id > $5)
        ORDER BY id
        LIMIT $6
        """,
        tenant,
        as_of,
        kind,
        resolved,
        after,
        limit,
    )
    return [dict(row) for row in rows]


async def clearing(
    conn: Connection,
    tenant: str,
    *,
    processor: str | None = None,
    start: date | None = None,
    end: date | None = None,
    as_of: date | None = None,
    after: ClearingCursor | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """The clearing tie-out days from ``start`` to ``end`` (inclusive), oldest first, optionally
    of one ``processor``; ``after`` is the previous page's last ``(business_date, processor,
    clearing_account, currency)``; statuses evaluated on ``as_of`` (None: today)."""
    columns = ", ".join(CLEARING_COLUMNS)
    rows = await conn.fetch(
        f"""
        SELECT {columns} FROM ledgerhub_views.clearing_tieout_at($2)
        WHERE tenant = $1 AND ($3::text IS NULL OR processor = $3)
          AND ($4::date IS NULL OR business_date >= $4)
          AND ($5::date IS NULL OR business_date <= $5)
          AND ($6::date IS NULL
               OR (business_date, processor, clearing_account, currency) > ($6, $7, $8, $9))
        ORDER BY business_date, processor, clearing_account, currency
        LIMIT $10
        """,
        tenant,
        as_of,
        processor,
        start,
        end,
        *(after or (None, None, None, None)),
        limit,
    )
    return [dict(row) for row in rows]


async def exception_exists(conn: Connection, tenant: str, exception_id: str) -> bool:
    """Whether ``exception_id`` is an exception of ``tenant`` (listed or not yet due)."""
    found = await conn.fetchval(
        "SELECT true FROM ledgerhub_views.reconciliation_exceptions_at('infinity'::date) "
        "WHERE tenant = $1 AND id = $2",
        tenant,
        exception_id,
    )
    return bool(found)


async def order_chain(
    conn: Connection, tenant: str, order_id: str, *, as_of: date | None = None
) -> dict[str, Any] | None:
    """The chain of one order: the order, the payments naming it with the payout that carried
    each and that payout's status and bank line, and the exceptions about any of them (None
    when the tenant has no such order), and the accounting document that covers the order
    with its sync status (None when the tenant syncs nowhere)."""
    order = await conn.fetchrow(
        "SELECT source, order_id, number, status, currency, total_minor, business_date, "
        "paid_minor FROM ledgerhub_views.reconciliation_orders "
        "WHERE tenant = $1 AND order_id = $2 ORDER BY source LIMIT 1",
        tenant,
        order_id,
    )
    if order is None:
        return None
    payments = await conn.fetch(
        """
        SELECT pm.source, pm.payment_id, pm.processor, pm.currency, pm.gross_minor,
               pm.fee_minor, pm.business_date, pm.payout_id, po.status AS payout_status,
               po.arrival_date AS payout_arrival_date, po.bank_line
        FROM ledgerhub_views.reconciliation_payments AS pm
        LEFT JOIN ledgerhub_views.reconciliation_payouts_at($3) AS po
               ON po.tenant = pm.tenant AND po.source = pm.source AND po.payout_id = pm.payout_id
        WHERE pm.tenant = $1 AND pm.order_ref = $2
        ORDER BY pm.business_date, pm.source, pm.payment_id
        """,
        tenant,
        order_id,
        as_of,
    )
    references = [order_id, *(p["payment_id"] for p in payments)]
    references += [p["payout_id"] for p in payments if p["payout_id"] is not None]
    columns = ", ".join(EXCEPTION_COLUMNS)
    exceptions = await conn.fetch(
        f"SELECT {columns} FROM ledgerhub_views.reconciliation_exceptions_at($2) "
        "WHERE tenant = $1 AND reference = ANY($3::text[]) ORDER BY id",
        tenant,
        as_of,
        references,
    )
    return {
        "order": dict(order),
        "payments": [dict(p) for p in payments],
        "document": await order_document(conn, tenant, order["source"], order_id),
        "exceptions": [dict(e) for e in exceptions],
    }


async def order_document(
    conn: Connection, tenant: str, source: str, order_id: str
) -> dict[str, Any] | None:
    """The document covering an order: ``doc_key``, ``target``, ``target_id`` and ``status``
    (``synced``, ``voided``, ``failed``, or ``unsent`` when the sender has logged nothing about
    it); None when the tenant syncs nowhere (or the projection predates documents)."""
    try:
        row = await conn.fetchrow(
            f"""
            SELECT o.doc_key, d.target, d.target_id, coalesce(d.status, 'unsent') AS status
            FROM {Reconciliation.view("orders")} AS o
            LEFT JOIN {Reconciliation.view("documents")} AS d
                   ON d.tenant = o.tenant AND d.doc_key = o.doc_key
            WHERE o.tenant = $1 AND o.source = $2 AND o.order_id = $3
            ORDER BY d.status = 'synced' DESC NULLS LAST, d.target
            LIMIT 1
            """,
            tenant,
            source,
            order_id,
        )
    except (asyncpg.UndefinedColumnError, asyncpg.UndefinedTableError):
        return None
    if row is None or row["doc_key"] is None:
        return None
    return dict(row)
