"""Reading the accounting projection's documents (the sender's input)."""
# Invoices come first so that a payment sent in the same run finds its order's invoice.

from __future__ import annotations

from hub.domain.documents import Document
from hub.spi.projection import Connection
from projections.accounting import Accounting


async def documents(conn: Connection, tenant: str, target: str) -> list[Document]:
    """Every document ``target`` should hold for ``tenant``: invoices first, then in key order
    (none before the projection has first run)."""
    view = Accounting.view("documents")
    if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", view):
        return []
    rows = await conn.fetch(
        f"SELECT * FROM {Accounting.view('documents')} WHERE tenant = $1 AND target = $2 "
        "ORDER BY kind <> 'invoice', doc_key",
        tenant,
        target,
    )
    return [
        Document(
            r["tenant"],
            r["target"],
            r["doc_key"],
            r["kind"],
            r["business_date"],
            r["description"],
            tuple(zip(r["accounts"], r["currencies"], r["amounts"], strict=True)),
            customer=r["customer"],
            order=r["order_ref"],
        )
        for r in rows
    ]


async def last_positions(conn: Connection, tenant: str, target: str) -> dict[str, int]:
    """Document key → the position of the latest event that shaped it (whose trace a send
    continues)."""
    view = Accounting.view("documents")
    if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", view):
        return {}
    rows = await conn.fetch(
        f"SELECT doc_key, (SELECT max(p) FROM unnest(positions) AS p) AS last FROM {view} "
        "WHERE tenant = $1 AND target = $2",
        tenant,
        target,
    )
    return {r["doc_key"]: int(r["last"]) for r in rows if r["last"] is not None}
