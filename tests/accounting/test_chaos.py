"""The sync's promise under chaos: with 30 % of Xero's write calls failing (5xx, 429, timeouts,
the connection dropped after Xero applied the write) and the worker killed with SIGKILL at
random 20 times while it books and sends, every document exists at Xero exactly once and the log
holds one ``accounting.document.synced`` outcome per document (and content: a payment re-booked
when its order arrives is written again, under a new key).

The worker is the real ``python -m hub worker`` (projections and sender); the Xero it talks to
is the local fake, in this test's event loop, which keeps answering while workers die. New
events arrive between kills, so most kills land while there is work in flight; half the kills
wait for a sync run of the worker to be open, so that many land in the middle of sending,
however fast the machine is. At the end each live object at the fake holds the content the
books hold now, under the key ``sync_documents`` records.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
from collections import Counter
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import orjson

from hub.domain.events import NewEvent
from hub.store import EventStore
from tests.accounting.fake_xero import FakeXero, serve
from tests.accounting.harness import ROOT, XERO_SECRET_ENV, documents, write_config
from tests.accounting.targets import CHART
from tests.ledger.harness import Books, new, sample
from tests.reconciliation.scenarios import stripe_month

SHOP = "shopify:acme-store"
KILLS = 20
ORDERS = 5
FAULT_RATE = 0.3


def _environment(dsn: str, config: Path, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGERHUB_")}
    env.update(
        LEDGERHUB_DSN=dsn,
        LEDGERHUB_CONFIG=str(config),
        LEDGERHUB_HOME=str(home),
        LEDGERHUB_LEASE_TTL="1",
        LEDGERHUB_POLL_INTERVAL="0.2",
        LEDGERHUB_SYNC_INTERVAL="0.2",
        LEDGERHUB_SYNC_RETRY_WAIT="0.05",
        LEDGERHUB_SYNC_BACKOFF_MAX="0.5",
        PYTHONPATH=str(ROOT),
        **{XERO_SECRET_ENV: "client-secret"},
    )
    return env


async def _worker(env: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "hub", "worker", env=env, cwd=ROOT, stdout=out, stderr=out
        )


async def _documents_so_far(books: Books, target: str) -> dict[str, Any]:
    """The documents the accounting projection holds for ``target``; none before it has created
    its tables (every worker may have been killed before that, on a slow machine)."""
    try:
        return await documents(books.conn, target=target)
    except asyncpg.UndefinedTableError:
        return {}


async def _moment_to_kill(books: Books, rng: random.Random, since: datetime) -> None:
    """Wait for the moment to kill the worker started at ``since``: in half the rounds a random
    one (starting, booking or sending), in the other half while a sync run of it is open
    (found in ``sync_runs``; a random instant into it), else after 10 s."""
    if rng.random() < 0.5:
        await asyncio.sleep(rng.uniform(1.0, 3.0))  # the chaos's timing, not a synchronization
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while loop.time() < deadline:
        running = await books.conn.fetchval(
            "SELECT count(*) FROM ledgerhub.sync_runs WHERE ended_at IS NULL AND started_at >= $1",
            since,
        )
        if running:
            await asyncio.sleep(rng.uniform(0.0, 0.3))
            return
        await asyncio.sleep(0.05)


async def _synced(books: Books) -> Counter[tuple[str, str, str]]:
    """Synced outcomes per (document, content, operation): a document whose content changed
    (a payment re-booked when its order arrived) is written again, but each content once."""
    rows = await books.conn.fetch(
        "SELECT data::text AS d FROM ledgerhub.events WHERE type = 'accounting.document.synced'"
    )
    found = (orjson.loads(r["d"]) for r in rows)
    return Counter((d["doc_key"], d["content_hash"], d["operation"]) for d in found)


async def test_every_document_once_through_faults_and_sigkills(
    dsn: str, store: EventStore, config: Path, books: Books, tmp_path: Path
) -> None:
    month = stripe_month(seed=11)
    # the first four days of the month and five orders: at Xero's 60 calls a minute, each
    # document more is about two seconds more
    cutoff = sorted({e.occurred_at.date() for e in month.events})[3]
    events = [e for e in month.events if e.occurred_at.date() <= cutoff] + _shop_orders(ORDERS)
    chunks = [events[i::KILLS] for i in range(KILLS)]  # every round brings new work
    rng = random.Random(2026)
    fake = FakeXero(set(CHART), "refresh-0", "org-1", seed=5)
    fake.fault_rate = FAULT_RATE
    fake.stall = 3.0  # longer than the client's 2 s timeout (write_config)
    fake.latency = 0.05  # each call takes a while (a real one longer), so runs can be cut
    log = tmp_path / "workers.log"
    async with serve(fake):
        write_config(config, "per_transaction", target="xero", xero_url=fake.url)
        (config.parent / "xero-refresh-token").write_text("refresh-0")
        env = _environment(dsn, config, tmp_path / "home")
        for chunk in chunks:
            await store.append(chunk)
            since = await books.conn.fetchval("SELECT now()")
            proc = await _worker(env, log)
            await _moment_to_kill(books, rng, since)
            proc.send_signal(signal.SIGKILL)
            assert await proc.wait() == -signal.SIGKILL, log.read_text()[-3000:]

        proc = await _worker(env, log)
        try:
            deadline = asyncio.get_running_loop().time() + 180
            while True:
                docs = await _documents_so_far(books, "xero")
                synced = await _synced(books)
                if docs and {k for k, _, _ in synced} >= set(docs) and await _caught_up(books):
                    break
                assert proc.returncode is None, log.read_text()[-3000:]
                assert asyncio.get_running_loop().time() < deadline, (
                    f"{len({k for k, _, _ in synced} & set(docs))}/{len(docs)} synced; "
                    + log.read_text()[-3000:]
                )
                await asyncio.sleep(0.5)
        finally:
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), 30)

    assert sum(fake.injected.values()) >= 10
    interrupted = await books.conn.fetchval(
        "SELECT count(*) FROM ledgerhub.sync_runs WHERE ended_at IS NULL"
    )
    assert interrupted >= 5, interrupted  # kills landed in the middle of sync runs
    assert {"500", "429", "timeout", "drop"} <= set(fake.injected), fake.injected
    docs = await documents(books.conn, target="xero")
    await assert_once_as_the_books_say(books, "xero", docs, fake.live_tags())
    kinds = {collection: len(fake.live(collection)) for collection in fake.store}
    assert kinds["Invoices"] == ORDERS, kinds  # one per order
    assert kinds["Payments"] >= 1, kinds  # paid as Xero payments (not all: see the README)
    assert kinds["BankTransfers"] > 0, kinds  # payouts: Xero's own types, not journals
    assert kinds["BankTransactions"] > 0, kinds
    synced = await _synced(books)
    assert {k for k, _, _ in synced} == set(docs)
    assert set(synced.values()) == {1}  # one outcome per document and content


async def assert_once_as_the_books_say(
    books: Books, target: str, docs: dict[str, Any], live_tags: list[tuple[str, str, str]]
) -> None:
    """Each document lives at ``target`` once (a payment's fee part once too), under the key it
    was last written with (its own, or a new one when it was voided and written again: a
    payment re-booked when its order arrived), holding the content recorded, which is the
    content the books hold now. ``live_tags``: (key, content hash, part) of each live object."""
    rows = await books.conn.fetch(
        "SELECT doc_key, idempotency_key, content_hash FROM ledgerhub.sync_documents "
        "WHERE target = $1 AND status = 'synced'",
        target,
    )
    current = {r["doc_key"]: r["idempotency_key"] for r in rows}
    assert set(current) == set(docs), set(current) ^ set(docs)
    keys = Counter(key for key, _, part in live_tags if not part)
    assert sorted(keys) == sorted(current.values()), set(keys) ^ set(current.values())
    assert set(keys.values()) == {1}, [k for k, n in keys.items() if n > 1]  # no second copy
    parts = Counter((key, part) for key, _, part in live_tags)
    assert set(parts.values()) == {1}, [p for p, n in parts.items() if n > 1]
    live = {(key, content) for key, content, part in live_tags if not part}
    assert live == {(r["idempotency_key"], r["content_hash"]) for r in rows}
    recorded = {r["doc_key"]: r["content_hash"] for r in rows}
    assert recorded == {key: d["content_hash"] for key, d in docs.items()}


def _shop_orders(count: int) -> list[NewEvent]:
    """``count`` paid Shopify orders, each followed by the charge that paid it (with a fee)."""
    order = sample("shopify", "shopify.orders.create")
    events = []
    for n in range(count):
        number = 7000 + n
        placed = {**order, "id": number, "name": f"#{number}", "financial_status": "paid"}
        events.append(
            new(SHOP, f"o-{number}", "shopify.orders.create", placed, order["created_at"])
        )
        charge = {"id": 9000 + n, "type": "charge", "test": False, "payout_id": None,
                  "payout_status": "pending", "currency": "USD", "amount": order["total_price"],
                  "fee": "12.19", "net": str(Decimal(order["total_price"]) - Decimal("12.19")),
                  "source_id": 9100 + n, "source_type": "charge", "source_order_id": number,
                  "source_order_transaction_id": 9200 + n,
                  "processed_at": order["created_at"]}  # fmt: skip
        events.append(new(SHOP, f"tx-{9000 + n}", "shopify.balance_transaction", charge,
                          order["created_at"]))  # fmt: skip
    return events


async def _caught_up(books: Books) -> bool:
    """Whether the accounting projection has applied every event the sender could act on."""
    row = await books.conn.fetchrow(
        "SELECT g.position, (SELECT max(position) FROM ledgerhub.events "
        "                    WHERE type NOT LIKE 'accounting.%') AS head "
        "FROM ledgerhub.projection_generations AS g JOIN ledgerhub.projections AS p "
        "ON p.name = g.projection AND p.active_generation = g.generation "
        "WHERE p.name = 'accounting'"
    )
    return row is not None and row["position"] >= row["head"]
