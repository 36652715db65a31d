"""The runtime keeps the planner's statistics of a generation's tables fresh while it fills them.

During a rebuild or a long catch-up the read-model tables grow faster than autovacuum analyzes
them; a query planned for a nearly empty table (a scan of all of it) then makes every batch
slower than the one before (issue 12 measured it). So a runner analyzes a generation's tables
after its 1st, 2nd, 4th, 8th … batch: a handful of ``ANALYZE`` runs however long the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools

import asyncpg

from hub.runtime.settings import RuntimeSettings
from hub.runtime.worker import Worker
from hub.store import EventStore
from tests.factories import event
from tests.projections.count import CountByType
from tests.runtime.harness import wait_until


async def _analyzed(conn: asyncpg.Connection) -> dict[str, int]:
    rows = await conn.fetch(
        "SELECT relname, analyze_count FROM pg_stat_user_tables "
        "WHERE schemaname = 'ledgerhub_projections' AND relname LIKE 'count_by_type__%'"
    )
    return {r["relname"]: r["analyze_count"] for r in rows}


async def test_a_generations_tables_are_analyzed_after_batches_1_2_4_8(
    dsn: str, store: EventStore
) -> None:
    await store.append([event(f"evt_{i}", type=f"t.{i % 3}") for i in range(9)])
    settings = RuntimeSettings(lease_ttl=2, poll_interval=0.05, batch_size=1)
    conn = await asyncpg.connect(dsn)
    try:
        worker = asyncio.create_task(Worker(dsn, [CountByType], settings).run())
        try:
            await wait_until(
                lambda: conn.fetchval(
                    "SELECT position >= 9 FROM ledgerhub.projection_generations "
                    "WHERE projection = 'count_by_type'"
                ),
                what="nine one-event batches",
            )
        finally:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        # nine batches: analyzed after the 1st, 2nd, 4th and 8th (shared statistics are
        # flushed when a session goes idle, hence the wait)
        counts = await wait_until(
            lambda: _nonempty_fours(conn), what="the analyze counts of both tables"
        )
    finally:
        await conn.close()
    assert counts == {name: 4 for name in counts}
    assert len(counts) == 2  # both tables of the generation


async def _nonempty_fours(conn: asyncpg.Connection) -> dict[str, int] | None:
    counts = await _analyzed(conn)
    return counts if len(counts) == 2 and all(n >= 4 for n in counts.values()) else None


async def test_a_runner_keeping_up_leaves_statistics_to_autovacuum(
    dsn: str, store: EventStore
) -> None:
    """Short batches (a runner at the head) never wait for an ``ANALYZE``: it would hold the
    batch, and every event behind it, for as long as it takes to sample the tables."""
    settings = RuntimeSettings(lease_ttl=2, poll_interval=0.05, batch_size=100)
    conn = await asyncpg.connect(dsn)
    try:
        worker = asyncio.create_task(Worker(dsn, [CountByType], settings).run())
        try:
            for i in range(1, 10):
                await store.append([event(f"evt_{i}", type=f"t.{i % 3}")])
                await wait_until(functools.partial(_applied, conn, i), what=f"event {i} applied")
        finally:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        # the worker's sessions are closed: their statistics, rows written included, are in
        counts = await wait_until(lambda: _written(conn), what="the worker's table statistics")
    finally:
        await conn.close()
    assert counts == {name: 0 for name in counts}


async def _applied(conn: asyncpg.Connection, position: int) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT position >= $1 FROM ledgerhub.projection_generations "
            "WHERE projection = 'count_by_type'",
            position,
        )
    )


async def _written(conn: asyncpg.Connection) -> dict[str, int] | None:
    rows = await conn.fetch(
        "SELECT relname, analyze_count, n_tup_ins + n_tup_upd AS written "
        "FROM pg_stat_user_tables WHERE schemaname = 'ledgerhub_projections' "
        "AND relname LIKE 'count_by_type__%'"
    )
    if len(rows) < 2 or any(r["written"] == 0 for r in rows):
        return None
    return {r["relname"]: r["analyze_count"] for r in rows}
