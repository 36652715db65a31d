"""Reading reconciliation: payouts and exceptions of one tenant, a page at a time.

Both read the ``ledgerhub_views`` functions (migration 0011), the same rows analysts query in
SQL, so the HTTP answers and the views cannot disagree. ``as_of`` is the day statuses are
evaluated on (None: today in the tenant's time zone): a payout with no deposit is ``pending``
until its window's last day has passed, ``missing_deposit`` after.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from hub.store.pool import Connection

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

PayoutCursor = tuple[date, str, str]
"""Where a page of payouts ended: (arrival date, source, payout id)."""


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


async def exception_exists(conn: Connection, tenant: str, exception_id: str) -> bool:
    """Whether ``exception_id`` is an exception of ``tenant`` (listed or not yet due)."""
    found = await conn.fetchval(
        "SELECT true FROM ledgerhub_views.reconciliation_exceptions_at('infinity'::date) "
        "WHERE tenant = $1 AND id = $2",
        tenant,
        exception_id,
    )
    return bool(found)
