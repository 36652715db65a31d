"""The ledger's side of ``hub.spi.console``: ``LedgerInspection`` gives the ``Ledger`` class
the ``LedgerInspector`` port (with ``trial_balance``): an account's postings page by page, read
through ``projections.ledger.queries`` as ``GET /v1/ledger/accounts/{code}/entries`` reads
them, and one journal entry with its postings and the log positions it came from.
"""

from __future__ import annotations

from typing import Any

from hub.spi.projection import Connection


class LedgerInspection:
    """``hub.spi.console.LedgerInspector``'s own methods as class methods."""

    @classmethod
    async def account_page(
        cls, conn: Connection, tenant: str, code: str, *, after: str | None = None, limit: int = 100
    ) -> dict[str, Any] | None:
        """A page of the account's postings (``next``: as the HTTP route's); None when the
        tenant has no account ``code``."""
        from projections.ledger import queries  # queries reads the Ledger class's views
        from projections.ledger.routes import _cursor

        if not await queries.account_exists(conn, tenant, code):
            return None
        rows = await queries.account_entries(conn, tenant, code, limit=limit, after=_cursor(after))
        last = rows[-1]["cursor"] if len(rows) == limit else None
        following = None if last is None else f"{last[0].isoformat()}|{last[2]}|{last[1]}"
        return {"code": code, "entries": rows, "next": following}

    @classmethod
    async def journal_entry(
        cls, conn: Connection, tenant: str, entry_key: str
    ) -> dict[str, Any] | None:
        """The entry ``entry_key`` of the tenant with its postings (and each account's name),
        or None."""
        from projections.ledger import queries

        row = await conn.fetchrow(
            f"""
            SELECT entry_key, business_date, kind, description, payee, source, positions,
                   accounts, currencies, amounts
            FROM {queries.JOURNAL} WHERE tenant = $1 AND entry_key = $2
            """,
            tenant,
            entry_key,
        )
        if row is None:
            return None
        names = {
            r["code"]: r["name"]
            for r in await conn.fetch(
                f"SELECT code, name FROM {queries.ACCOUNTS} WHERE tenant = $1 AND code = ANY($2)",
                tenant,
                list(row["accounts"]),
            )
        }
        return {
            **{k: row[k] for k in ("entry_key", "business_date", "kind", "description")},
            **{k: row[k] for k in ("payee", "source")},
            "positions": list(row["positions"]),
            "postings": [
                {
                    "account": account,
                    "name": names.get(account, account),
                    "currency": currency,
                    "debit_minor": max(amount, 0),
                    "credit_minor": max(-amount, 0),
                }
                for account, currency, amount in zip(
                    row["accounts"], row["currencies"], row["amounts"], strict=True
                )
            ],
        }
