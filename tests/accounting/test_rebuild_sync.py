"""A rebuild of ``accounting`` after a completed sync sends nothing; after a mapping change it
sends only the documents the change touched — done as an operator would, with
``ledgerhub rebuild accounting`` and ``ledgerhub sync run``."""

from __future__ import annotations

from pathlib import Path

import asyncpg

from hub.store import EventStore
from tests.accounting.harness import cli, documents, running, settle
from tests.accounting.targets import bean_check
from tests.ledger.harness import Books, new, sample

SHOP = "shopify:acme-store"
CONFIG = """
[tenants.default]
timezone = "America/New_York"
sync = {{ target = "beancount", mode = "per_transaction" }}

[[connections]]
id = "shopify:acme-store"
connector = "shopify"
tenant = "default"

[connections.mapping.sale.status]
from = "order.financial_status"
transform = "map"
default = "draft"
values = {{ paid = "paid", pending = "{pending}" }}
"""
FAST = {"LEDGERHUB_POLL_INTERVAL": "0.1", "LEDGERHUB_LEASE_TTL": "2"}


async def _calls(conn: asyncpg.Connection, output: str) -> list[tuple[str, str]]:
    """(document key, operation) of every call the run printed in ``output`` made."""
    run_id = int(output.split(": run ", 1)[1].split(":", 1)[0])
    rows = await conn.fetch(
        "SELECT doc_key, operation FROM ledgerhub.sync_calls WHERE run_id = $1 ORDER BY id",
        run_id,
    )
    return [(r["doc_key"], r["operation"]) for r in rows]


async def test_rebuild_sends_nothing_then_only_what_a_mapping_change_touched(
    dsn: str, store: EventStore, config: Path, books: Books, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    config.write_text(CONFIG.format(pending="draft"))  # noqa: ASYNC240 (test setup)
    order = sample("shopify", "shopify.orders.create")
    orders = {
        1001: "pending",  # a draft under this mapping: books nothing, no document
        1002: "paid",
        1003: "paid",
    }
    placed = [
        new(SHOP, f"o-{n}", "shopify.orders.create", {**order, "id": n, "name": f"#{n}",
            "financial_status": status}, order["created_at"])
        for n, status in orders.items()
    ]  # fmt: skip
    async with running(dsn):
        await store.append(placed)
        await settle(books.conn, ("ledger", "accounting"))
        before = await documents(books.conn)
        assert sorted(before) == [f"{SHOP}/order:1002", f"{SHOP}/order:1003"]

        code, out, err = await cli(dsn, config, home, "sync", "run", env=FAST)
        assert code == 0, err
        assert "2 sent, 0 failed" in out

        code, _, err = await cli(dsn, config, home, "rebuild", "accounting", env=FAST)
        assert code == 0, err
        code, out, err = await cli(dsn, config, home, "sync", "run", env=FAST)
        assert code == 0, err
        assert "0 sent, 0 failed" in out
        assert await _calls(books.conn, out) == []  # not even a call

        config.write_text(CONFIG.format(pending="open"))  # noqa: ASYNC240 - pending is owed now
        code, _, err = await cli(dsn, config, home, "rebuild", "accounting", env=FAST)
        assert code == 0, err
        await settle(books.conn, ("ledger", "accounting"))
        after = await documents(books.conn)
        code, out, err = await cli(dsn, config, home, "sync", "run", env=FAST)
        assert code == 0, err

    assert sorted(after) == [f"{SHOP}/order:100{n}" for n in (1, 2, 3)]
    for key in before:  # the rebuild recomputed the untouched documents identically
        assert after[key]["content_hash"] == before[key]["content_hash"]
    assert "1 sent, 0 failed" in out
    assert await _calls(books.conn, out) == [(f"{SHOP}/order:1001", "create")]
    ledger = home / "sync" / "default.beancount"
    bean_check(ledger)
    text = ledger.read_text()
    assert all(text.count(f"order:{n}") >= 1 for n in orders)
