"""Reading the ledger: trial balance, an account's entries, suggestions, unmapped events.

Every function reads the ledger's views (the active generation) through ``conn`` and takes the
tenant whose books to read. Amounts are integer minor units with their currency.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from hub.spi.projection import Connection
from projections.ledger import Ledger

JOURNAL = Ledger.view("journal")
ACCOUNTS = Ledger.view("accounts")
BANK_LINES = Ledger.view("bank_lines")
UNMAPPED = Ledger.view("unmapped")

_POSTINGS = f"""
SELECT j.tenant, j.entry_key, j.business_date, j.kind, j.description, j.source, j.positions,
       p.account, p.currency, p.amount, p.n
FROM {JOURNAL} AS j,
     unnest(j.accounts, j.currencies, j.amounts) WITH ORDINALITY AS p(account, currency, amount, n)
"""


async def trial_balance(conn: Connection, tenant: str, as_of: date | None = None) -> dict[str, Any]:
    """Per account and currency: debits, credits and balance (debit - credit) of the entries
    dated on or before ``as_of`` (all when None); ``balanced`` when debits equal credits in
    every currency. The shape of ``GET /v1/ledger/trial-balance``."""
    rows = await conn.fetch(
        f"""
        SELECT p.account AS code, coalesce(a.name, p.account) AS name, a.role, p.currency,
               sum(greatest(p.amount, 0))::bigint AS debit_minor,
               sum(greatest(-p.amount, 0))::bigint AS credit_minor,
               sum(p.amount)::bigint AS balance_minor
        FROM ({_POSTINGS}) AS p
        LEFT JOIN {ACCOUNTS} AS a ON a.tenant = p.tenant AND a.code = p.account
        WHERE p.tenant = $1 AND ($2::date IS NULL OR p.business_date <= $2)
        GROUP BY p.account, a.name, a.role, p.currency
        ORDER BY p.account, p.currency
        """,
        tenant,
        as_of,
    )
    lines = [dict(row) for row in rows]
    totals: dict[str, int] = {}
    for line in lines:
        totals[line["currency"]] = totals.get(line["currency"], 0) + line["balance_minor"]
    return {
        "as_of": None if as_of is None else as_of.isoformat(),
        "lines": lines,
        "balanced": all(total == 0 for total in totals.values()),
    }


Cursor = tuple[date, str, int]
"""Where a page of account postings ended: (business date, entry key, posting number)."""


async def account_entries(
    conn: Connection, tenant: str, code: str, *, limit: int = 100, after: Cursor | None = None
) -> list[dict[str, Any]]:
    """The postings to account ``code``, oldest first, with the entry they belong to and the
    event positions it came from; ``after`` is the ``cursor`` of the previous page's last row."""
    rows = await conn.fetch(
        f"""
        SELECT entry_key, business_date, kind, description, source, positions, currency, n,
               greatest(amount, 0)::bigint AS debit_minor,
               greatest(-amount, 0)::bigint AS credit_minor
        FROM ({_POSTINGS}) AS p
        WHERE tenant = $1 AND account = $2
          AND ($3::date IS NULL OR (business_date, entry_key, n) > ($3, $4, $5))
        ORDER BY business_date, entry_key, n
        LIMIT $6
        """,
        tenant,
        code,
        *(after or (None, None, None)),
        limit,
    )
    return [
        {
            **dict(row),
            "cursor": (row["business_date"], row["entry_key"], row["n"]),
            "positions": list(row["positions"]),
        }
        for row in rows
    ]


async def account_exists(conn: Connection, tenant: str, code: str) -> bool:
    """Whether ``code`` is in the tenant's chart."""
    found = await conn.fetchval(
        f"SELECT true FROM {ACCOUNTS} WHERE tenant = $1 AND code = $2", tenant, code
    )
    return bool(found)


async def suggestions(conn: Connection, tenant: str) -> list[dict[str, Any]]:
    """For each bank line in suspense whose payee (compared by ``posting.payee_key``) was
    categorized before: the account most often used for it (ties: the lowest code). Shown,
    never applied."""
    rows = await conn.fetch(
        f"""
        WITH history AS (
            SELECT payee_key, account, count(*) AS times FROM {BANK_LINES}
            WHERE tenant = $1 AND status = 'categorized' AND payee_key IS NOT NULL
            GROUP BY payee_key, account
        ), best AS (
            SELECT DISTINCT ON (payee_key) payee_key, account, times FROM history
            ORDER BY payee_key, times DESC, account
        )
        SELECT b.entry_key, b.business_date, b.payee, b.currency, b.amount AS amount_minor,
               best.account AS suggested_account, best.times AS used_times
        FROM {BANK_LINES} AS b JOIN best ON best.payee_key = b.payee_key
        WHERE b.tenant = $1 AND b.status = 'suspense'
        ORDER BY b.business_date, b.entry_key
        """,
        tenant,
    )
    return [{**dict(r), "business_date": r["business_date"].isoformat()} for r in rows]


async def unmapped(conn: Connection, tenant: str) -> list[dict[str, Any]]:
    """Events kept but not booked, with the reason, in log order."""
    rows = await conn.fetch(
        f"SELECT position, source, type, reason FROM {UNMAPPED} WHERE tenant = $1 "
        "ORDER BY position",
        tenant,
    )
    return [dict(r) for r in rows]


JournalCursor = tuple[date, str]
"""Where a page of journal entries ended: (business date, entry key)."""


async def journal(
    conn: Connection,
    tenant: str,
    *,
    start: date | None = None,
    end: date | None = None,
    after: JournalCursor | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """The entries dated ``start`` … ``end`` (inclusive) by business date and key, each with
    its postings (account, currency, debit or credit) in the order kept and the event positions
    it came from; ``after`` is the previous page's last ``(business_date, entry_key)``. An entry
    that books nothing (a voided one) is left out."""
    rows = await conn.fetch(
        f"""
        SELECT entry_key, business_date, kind, description, payee, source, positions,
               accounts, currencies, amounts
        FROM {JOURNAL}
        WHERE tenant = $1 AND cardinality(amounts) > 0
          AND ($2::date IS NULL OR business_date >= $2)
          AND ($3::date IS NULL OR business_date <= $3)
          AND ($4::date IS NULL OR (business_date, entry_key) > ($4, $5))
        ORDER BY business_date, entry_key
        LIMIT $6
        """,
        tenant,
        start,
        end,
        *(after or (None, None)),
        limit,
    )
    return [
        {
            "entry_key": row["entry_key"],
            "business_date": row["business_date"],
            "kind": row["kind"],
            "description": row["description"],
            "payee": row["payee"],
            "source": row["source"],
            "positions": list(row["positions"]),
            "postings": [
                {
                    "account": account,
                    "currency": currency,
                    "debit_minor": max(amount, 0),
                    "credit_minor": max(-amount, 0),
                }
                for account, currency, amount in zip(
                    row["accounts"], row["currencies"], row["amounts"], strict=True
                )
            ],
        }
        for row in rows
    ]
