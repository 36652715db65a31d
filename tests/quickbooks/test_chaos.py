"""The sync's promise under chaos, against QuickBooks: with 30 % of QuickBooks' write calls
failing (500, 503, 429, a timeout after QuickBooks applied the write, the connection dropped
after the write) and the real worker killed with SIGKILL at random 20 times while it books and
sends, every document exists in QuickBooks exactly once and the log holds one
``accounting.document.synced`` outcome per document.

The worker is the real ``python -m hub worker`` (projections and sender) opening the
``quickbooks`` target through its entry point; the QuickBooks it talks to is the local fake, in
this test's event loop, which keeps answering while workers die. New events arrive between
kills, so most kills land while there is work in flight; half the kills wait for a sync run of
the worker to be open, so that many land in the middle of sending.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
from pathlib import Path

from hub.store import EventStore
from tests.accounting.harness import ROOT, documents
from tests.accounting.test_chaos import (
    _caught_up,
    _documents_so_far,
    _moment_to_kill,
    _shop_orders,
    _synced,
    _worker,
    assert_once_as_the_books_say,
)
from tests.ledger.harness import Books
from tests.quickbooks.fake_qbo import serve
from tests.quickbooks.harness import SECRET_ENV, TOKEN_FILE, new_fake, write_config
from tests.reconciliation.scenarios import stripe_month

KILLS = 20
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
        **{SECRET_ENV: "secret"},
    )
    return env


async def test_every_document_once_through_faults_and_sigkills(
    dsn: str, store: EventStore, config: Path, books: Books, tmp_path: Path
) -> None:
    month = stripe_month(seed=11)
    cutoff = sorted({e.occurred_at.date() for e in month.events})[6]
    events = [e for e in month.events if e.occurred_at.date() <= cutoff] + _shop_orders(8)
    chunks = [events[i::KILLS] for i in range(KILLS)]  # every round brings new work
    rng = random.Random(2026)
    fake = new_fake(seed=5)
    fake.fault_rate = FAULT_RATE
    fake.stall = 3.0  # longer than the client's 2 s timeout (write_config)
    fake.latency = 0.05  # each call takes a while (a real one longer), so runs can be cut
    log = tmp_path / "workers.log"
    async with serve(fake):
        write_config(config, "per_transaction", fake.url)
        (config.parent / TOKEN_FILE).write_text(fake.refresh_token)
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
                docs = await _documents_so_far(books, "quickbooks")
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
    docs = await documents(books.conn, target="quickbooks")
    live = [(key, content, part) for _, key, content, part in fake.live_tags()]
    await assert_once_as_the_books_say(books, "quickbooks", docs, live)
    kinds = {entity: len(fake.live(entity)) for entity in fake.store}
    assert kinds["Invoice"] == 8, kinds  # one per order
    assert kinds["Payment"] >= 1, kinds  # applied to invoices (not all: see the README)
    assert kinds["Transfer"] > 0, kinds  # payouts: QuickBooks' own types, not journals
    assert kinds["Deposit"] > 0, kinds
    assert kinds["Purchase"] > 0, kinds
    names = [c["DisplayName"] for c in fake.store["Customer"].values()]
    assert len(names) == len(set(names))  # each customer once
    synced = await _synced(books)
    assert {k for k, _, _ in synced} == set(docs)
    assert set(synced.values()) == {1}  # one outcome per document and content
    assert set(fake.minor_versions) == {"75"}
