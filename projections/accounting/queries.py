"""Reading the accounting projection's documents (the sender's input, through
``Accounting.documents`` and ``Accounting.last_positions``: the ``DocumentSource`` port).

Each query reads ``view`` (the ``documents`` view on the active generation) and answers nothing
before the projection has first run.
"""
# Invoices come first so that a payment sent in the same run finds its order's invoice.

from __future__ import annotations

from hub.domain.documents import Document
from hub.spi.projection import Connection


async def documents(conn: Connection, view: str, tenant: str, target: str) -> list[Document]:
    """Every document ``target`` should hold for ``tenant``: invoices first, then in key order
    (none before the projection has first run)."""
    if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", view):
        return []
    rows = await conn.fetch(
        f"SELECT * FROM {view} WHERE tenant = $1 AND target = $2 "
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


async def last_positions(conn: Connection, view: str, tenant: str, target: str) -> dict[str, int]:
    """Document key → the position of the latest event that shaped it (whose trace a send
    continues)."""
    if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", view):
        return {}
    rows = await conn.fetch(
        f"SELECT doc_key, (SELECT max(p) FROM unnest(positions) AS p) AS last FROM {view} "
        "WHERE tenant = $1 AND target = $2",
        tenant,
        target,
    )
    return {r["doc_key"]: int(r["last"]) for r in rows if r["last"] is not None}
