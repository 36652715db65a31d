"""Reading reconciliation: the analysts' views (``VIEWS``), and payouts, exceptions and the
clearing tie-out of one tenant a page at a time.

``VIEWS`` are the projection's ``ledgerhub_views`` views (``Reconciliation.views``): the runtime
applies them to each generation it makes active. The functions below read those same views, so
the HTTP answers and what analysts query in SQL cannot disagree. ``as_of`` is the day statuses
are evaluated on (None: today in the tenant's time zone): a payout with no deposit is ``pending``
until its window's last day has passed, ``missing_deposit`` after.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import asyncpg

from hub.spi.projection import Connection, View
from hub.spi.reports import EXCEPTION_FIELDS, PAYOUT_FIELDS

# The analysts' views. Placeholders: {table} is this projection's table of the generation,
# {as_of} the day statuses are evaluated on (NULL in the view: today in each row's time zone;
# the function <view>_at(as_of date) for another day), {ledger:table} the ledger projection's.

_PAYOUTS_VIEW = """
SELECT p.tenant, p.source, p.payout_id, p.currency, p.amount_minor, p.arrival_date,
       CASE WHEN p.match_state <> 'unmatched' THEN p.match_state
            WHEN coalesce({as_of}, (now() AT TIME ZONE p.timezone)::date) > p.window_end
            THEN 'missing_deposit'
            ELSE 'pending' END AS status,
       p.bank_line, p.difference_minor, p.gross_minor, p.refunds_minor, p.fees_minor,
       p.disputes_minor, p.adjustments_minor, p.window_end
FROM {payouts} AS p
WHERE p.payout_status NOT IN ('failed', 'canceled')
"""

_BANK_LINES_VIEW = """
SELECT b.tenant, b.source, b.line_id, b.account, b.currency, b.amount_minor, b.business_date,
       b.payee, b.description, b.matched_payout, b.duplicate_of
FROM {bank_lines} AS b
"""

# paid_minor: a payment charged in another currency counts at what it settled in the order's.
_ORDERS_VIEW = """
SELECT o.tenant, o.source, o.order_id, o.number, o.status, o.currency, o.total_minor,
       o.business_date,
       (SELECT coalesce(sum(CASE WHEN p.currency = o.currency THEN p.gross_minor
                                 ELSE p.settled_minor END), 0)::bigint
        FROM {payments} AS p
        WHERE p.tenant = o.tenant AND p.order_ref = o.order_id
          AND (p.currency = o.currency OR p.settled_currency = o.currency)) AS paid_minor
FROM {orders} AS o
"""

_PAYMENTS_VIEW = """
SELECT p.tenant, p.source, p.payment_id, p.processor, p.order_ref, p.currency, p.gross_minor,
       p.fee_minor, p.business_date, coalesce(p.payout_id, m.payout_id) AS payout_id
FROM {payments} AS p
LEFT JOIN {movements} AS m
       ON m.tenant = p.tenant AND m.source = p.source AND m.txn_id = p.balance_transaction
"""

# Per tenant, processor (its clearing:<processor> account), currency and business day with
# activity on either side: the ledger's clearing balance at the end of the day against what the
# processor says it still owes (the net of its balance transactions dated on or before the day,
# less those carried by a payout paid by then; the payouts' own balance transactions are left
# out). Only (tenant, processor, currency) with stored balance transactions are listed. Status
# on as_of: tied (no difference), pending (younger than the tenant's tieout_grace_days), off.
# It reads the ledger, so it is bound late: empty until the ledger has been built.
_CLEARING_VIEW = """
WITH clearing AS (
    SELECT a.tenant, a.code, substr(a.role, length('clearing:') + 1) AS processor
    FROM {ledger:accounts} AS a
    WHERE a.role LIKE 'clearing:%'
),
settled AS (
    SELECT m.tenant, m.processor, m.currency, m.business_date, m.net_minor AS net,
           CASE WHEN p.payout_status = 'paid'
                THEN greatest(p.arrival_date, m.business_date) END AS paid_on
    FROM {movements} AS m
    LEFT JOIN {payouts} AS p
           ON p.tenant = m.tenant AND p.source = m.source AND p.payout_id = m.payout_id
    WHERE m.category NOT IN ('payout', 'payout_reversal', 'payout_cancel', 'payout_failure')
),
processor_days AS (
    SELECT s.tenant, s.processor, s.currency, d.day, sum(d.moved) AS processor_moved
    FROM settled AS s
    CROSS JOIN LATERAL (VALUES (s.business_date, s.net), (s.paid_on, -s.net)) AS d(day, moved)
    WHERE d.day IS NOT NULL
    GROUP BY 1, 2, 3, 4
),
ledger_days AS (
    SELECT j.tenant, c.processor, pst.currency, j.business_date AS day,
           sum(pst.amount) AS ledger_moved
    FROM {ledger:journal} AS j
    CROSS JOIN LATERAL unnest(j.accounts, j.currencies, j.amounts)
         AS pst(account, currency, amount)
    JOIN clearing AS c ON c.tenant = j.tenant AND c.code = pst.account
    GROUP BY 1, 2, 3, 4
),
days AS (
    SELECT x.tenant, x.processor, x.currency, x.day,
           sum(coalesce(x.ledger_moved, 0)) OVER w AS ledger,
           sum(coalesce(x.processor_moved, 0)) OVER w AS unpaid
    FROM (SELECT * FROM ledger_days
          FULL JOIN processor_days USING (tenant, processor, currency, day)) AS x
    WHERE EXISTS (SELECT 1 FROM processor_days AS k
                  WHERE k.tenant = x.tenant AND k.processor = x.processor
                    AND k.currency = x.currency)
    WINDOW w AS (PARTITION BY x.tenant, x.processor, x.currency ORDER BY x.day)
),
differences AS (
    SELECT d.*, d.ledger - d.unpaid AS difference,
           d.ledger - d.unpaid - coalesce(lag(d.ledger - d.unpaid) OVER (
               PARTITION BY d.tenant, d.processor, d.currency ORDER BY d.day), 0) AS change
    FROM days AS d
)
SELECT f.tenant, f.processor, c.code, f.currency, f.day, f.ledger::bigint, f.unpaid::bigint,
       f.difference::bigint, f.change::bigint,
       CASE WHEN f.difference = 0 THEN 'tied'
            WHEN coalesce({as_of}, (now() AT TIME ZONE coalesce(t.timezone, 'UTC'))::date)
                 > f.day + coalesce(t.tieout_grace_days, 5)
            THEN 'off'
            ELSE 'pending' END
FROM differences AS f
JOIN clearing AS c ON c.tenant = f.tenant AND c.processor = f.processor
LEFT JOIN {tenants} AS t ON t.tenant = f.tenant
"""

# The exceptions the projection stores (listed once due), and the clearing days that do not tie
# (an off day whose difference is not the previous listed day's), each with its resolution.
_EXCEPTIONS_VIEW = """
SELECT e.tenant, e.id, e.kind, e.source, e.reference, e.amount_minor, e.currency,
       e.difference_minor, e.detail, coalesce(r.resolved, false) AS resolved,
       CASE WHEN r.resolved THEN r.reason END AS resolution_reason
FROM {exceptions} AS e
LEFT JOIN {resolutions} AS r ON r.tenant = e.tenant AND r.exception_id = e.id
WHERE e.due_date IS NULL
   OR coalesce({as_of}, (now() AT TIME ZONE e.timezone)::date) > e.due_date
UNION ALL
SELECT x.tenant, x.id, 'amount_mismatch', x.source, x.reference, x.processor_unpaid_minor,
       x.currency, x.difference_minor,
       format('clearing account %s (clearing:%s) at the end of %s: the books hold %s %s, '
              '%s says %s is unpaid; difference %s%s (%s%s that day)',
              x.clearing_account, x.processor, x.business_date, x.ledger_balance_minor,
              x.currency, x.processor, x.processor_unpaid_minor,
              CASE WHEN x.difference_minor > 0 THEN '+' ELSE '' END, x.difference_minor,
              CASE WHEN x.difference_change_minor > 0 THEN '+' ELSE '' END,
              x.difference_change_minor),
       coalesce(r.resolved, false), CASE WHEN r.resolved THEN r.reason END
FROM (
    SELECT t.*, 'clearing:' || t.processor AS source,
           t.clearing_account || '/' || t.currency || '/' || t.business_date AS reference,
           'amount_mismatch:clearing:' || t.processor || '/' || t.clearing_account || '/'
               || t.currency || '/' || t.business_date AS id
    FROM ledgerhub_views.clearing_tieout_at({as_of}) AS t
    WHERE t.status = 'off' AND t.difference_change_minor <> 0
) AS x
LEFT JOIN {resolutions} AS r ON r.tenant = x.tenant AND r.exception_id = x.id
"""

VIEWS: dict[str, View] = {
    "reconciliation_payouts": View(
        _PAYOUTS_VIEW,
        "one row per payout expected at the bank: status matched | pending | missing_deposit | "
        "amount_mismatch (difference_minor = deposit - payout), bank_line, and the composition "
        "(signed components that sum to amount_minor)",
    ),
    "reconciliation_bank_lines": View(
        _BANK_LINES_VIEW,
        "bank statement lines with the payout each deposit matched and the line each duplicates",
    ),
    "reconciliation_orders": View(
        _ORDERS_VIEW,
        "orders with what the payments naming them add up to (paid_minor, in the order "
        "currency; a payment charged in another currency at what it settled in the order "
        "currency)",
    ),
    "reconciliation_payments": View(
        _PAYMENTS_VIEW,
        "payments with the order they name and the payout that carried them (when known)",
    ),
    "clearing_tieout": View(
        _CLEARING_VIEW,
        "per tenant, processor, clearing account, currency and day with activity: the ledger's "
        "clearing balance at the end of the day, what the processor says is still unpaid, "
        "difference_minor = ledger - processor, status tied | pending | off",
        columns=(
            "tenant text, processor text, clearing_account text, currency text, "
            "business_date date, ledger_balance_minor bigint, processor_unpaid_minor bigint, "
            "difference_minor bigint, difference_change_minor bigint, status text"
        ),
    ),
    "reconciliation_exceptions": View(
        _EXCEPTIONS_VIEW,
        "what an analyst acts on: missing_deposit, amount_mismatch (a payout, an order, or a "
        "clearing account on a day: source clearing:<processor>), unexplained_deposit, "
        "duplicate_bank_line, composition_mismatch, payment_without_order, order_unpaid, "
        "document_missing; resolved by a reconciliation.exception.resolved event",
    ),
}
"""``ledgerhub_views.<name>`` for analysts (role ``ledgerhub_analyst``), in the order they are
created; the dated ones (``{as_of}``) also as ``<name>_at(as_of date)``."""

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
    columns = ", ".join(PAYOUT_FIELDS)
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
    columns = ", ".join(EXCEPTION_FIELDS)
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
    columns = ", ".join(EXCEPTION_FIELDS)
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
    from projections.reconciliation import Reconciliation  # the package imports this module

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
