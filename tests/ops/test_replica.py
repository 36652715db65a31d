"""A streaming read replica for analysts (DESIGN "Scale"), for real: a primary started with
``wal_level=replica``, migrated by the hub, copied with ``pg_basebackup -R`` into a hot standby;
then a month of Stripe activity is appended and the ledger and reconciliation projections run on
the primary, and the analyst views (``ledgerhub_views``, as ``ledgerhub_analyst``) answer on the
standby exactly what the primary committed, once the standby has replayed the primary's WAL
position. The standby refuses writes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from hub.store import EventStore
from hub.store.provision import with_database
from hub.store.schema import migrate
from tests.ops.cluster import Servers, free_port, servers
from tests.reconciliation.harness import LATE, books_running
from tests.reconciliation.scenarios import stripe_month

VIEWS = (
    "SELECT t::text FROM ledgerhub_views.reconciliation_payouts AS t ORDER BY 1",
    "SELECT t::text FROM ledgerhub_views.clearing_tieout AS t ORDER BY 1",
    "SELECT t::text FROM ledgerhub_views.reconciliation_exceptions_at($1) AS t ORDER BY 1",
)
"""What an analyst's BI tool reads (the last one as of a day after the scenario)."""


@pytest.fixture
def cluster() -> Iterator[Servers]:
    with servers() as made:
        yield made


async def _analyst_reads(dsn: str) -> list[list[str]]:
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction(readonly=True):
            await conn.execute("SET LOCAL ROLE ledgerhub_analyst")
            return [
                [r[0] for r in await conn.fetch(query, *((LATE,) if "$1" in query else ()))]
                for query in VIEWS
            ]
    finally:
        await conn.close()


async def _caught_up(primary: str, standby: str, patience: float = 60) -> None:
    """Wait until the standby has replayed everything the primary has written so far."""
    conn = await asyncpg.connect(primary)
    try:
        lsn = await conn.fetchval("SELECT pg_current_wal_lsn()::text")
    finally:
        await conn.close()
    replica = await asyncpg.connect(standby)
    try:
        deadline = asyncio.get_running_loop().time() + patience
        replayed = "SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn"
        while not await replica.fetchval(replayed, lsn):
            assert asyncio.get_running_loop().time() < deadline, f"standby never reached {lsn}"
            await asyncio.sleep(0.05)
    finally:
        await replica.close()


async def _projected(primary: str, patience: float = 90) -> None:
    """Wait until the ledger and reconciliation projections have applied the whole log."""
    conn = await asyncpg.connect(primary)
    try:
        deadline = asyncio.get_running_loop().time() + patience
        while (
            await conn.fetchval(
                "SELECT count(*) FROM ledgerhub.projection_generations AS g JOIN "
                "ledgerhub.projections AS p ON p.name = g.projection AND "
                "p.active_generation = g.generation WHERE p.name IN ('ledger', 'reconciliation') "
                "AND g.position >= (SELECT max(position) FROM ledgerhub.events)"
            )
            < 2
        ):
            assert asyncio.get_running_loop().time() < deadline, "projections did not catch up"
            await asyncio.sleep(0.05)
    finally:
        await conn.close()


async def test_analysts_read_on_a_streaming_replica_what_the_primary_committed(
    cluster: Servers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "ledgerhub.toml"
    config.write_text("")
    monkeypatch.setenv("LEDGERHUB_CONFIG", str(config))
    port = free_port()
    primary_admin = cluster.start(
        cluster.initdb("primary"), port, "wal_level=replica", "max_wal_senders=4"
    )
    conn = await asyncpg.connect(primary_admin)
    try:
        await conn.execute("CREATE DATABASE ledgerhub")
    finally:
        await conn.close()
    primary = with_database(primary_admin, "ledgerhub")
    await migrate(primary)

    standby_data = cluster.root / "standby"
    cluster.run("pg_basebackup", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
                "-D", str(standby_data), "-R", "-X", "stream", "-c", "fast")  # fmt: skip
    assert (standby_data / "standby.signal").exists()
    standby = with_database(cluster.start(standby_data, free_port(), "hot_standby=on"), "ledgerhub")

    replica = await asyncpg.connect(standby)
    try:
        assert await replica.fetchval("SELECT pg_is_in_recovery()")
        # before anything ran: the projections have not created their views yet
        assert not await replica.fetchval(
            "SELECT count(*) FROM pg_views WHERE schemaname = 'ledgerhub_views'"
        )
    finally:
        await replica.close()

    month = stripe_month()
    half = len(month.events) // 2
    async with await EventStore.open(primary) as store, books_running(primary):
        seen: list[list[list[str]]] = []
        for part in (month.events[:half], month.events[half:]):
            await store.append(part)
            await _projected(primary)
            await _caught_up(primary, standby)
            on_primary = await _analyst_reads(primary)
            assert await _analyst_reads(standby) == on_primary
            seen.append(on_primary)
    first, last = seen
    assert all(last), [len(rows) for rows in last]  # every view has rows
    assert len(last[0]) == len(month.payouts)
    assert len(first[0]) < len(last[0])  # the standby followed what came after the first look

    replica = await asyncpg.connect(standby)
    try:
        with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
            await replica.execute("CREATE TABLE ledgerhub.scratch (x int)")
        with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
            await replica.execute("DELETE FROM ledgerhub.events")
        assert await replica.fetchval("SELECT count(*) FROM ledgerhub.events") == len(month.events)
    finally:
        await replica.close()
