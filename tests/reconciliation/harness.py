"""Running the reconciliation projection in this event loop on a test's database, reading it,
and rebuilding it."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import date
from typing import Any

import asyncpg

from hub.domain.events import NewEvent
from hub.runtime.operate import follow_job
from hub.runtime.worker import Worker
from hub.store import EventStore
from hub.store.jobs import Jobs
from hub.store.projections import ProjectionStore
from projections.ledger import Ledger
from projections.reconciliation import Reconciliation, queries
from tests.runtime.harness import running

LATE = date(2030, 1, 1)
"""A day after every window in the scenarios: unmatched payouts are missing by then."""


class Recon:
    """The test's view of the reconciliation read model."""

    def __init__(self, dsn: str, conn: asyncpg.Connection) -> None:
        self.dsn = dsn
        self.conn = conn

    async def settle(self, patience: float = 60, projection: str = "reconciliation") -> None:
        """Wait until the active generation (of ``projection``) has applied every event."""
        deadline = asyncio.get_running_loop().time() + patience
        while True:
            head = await self.conn.fetchval(
                "SELECT coalesce(max(position), 0) FROM ledgerhub.events"
            )
            position = await self.conn.fetchval(
                "SELECT g.position FROM ledgerhub.projection_generations AS g "
                "JOIN ledgerhub.projections AS p ON p.name = g.projection "
                "AND p.active_generation = g.generation WHERE p.name = $1",
                projection,
            )
            if position is not None and position >= head:
                return
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{projection} did not catch up")
            await asyncio.sleep(0.05)

    async def run(self, store: EventStore, *batches: list[NewEvent]) -> None:
        """Append ``batches`` (each one append) with the projection running, until applied."""
        async with reconciliation_running(self.dsn):
            for batch in batches:
                await store.append(batch)
            await self.settle()

    async def run_with_ledger(self, store: EventStore, *batches: list[NewEvent]) -> None:
        """``run`` with the ledger projection running too (the clearing tie-out reads both)."""
        async with books_running(self.dsn):
            for batch in batches:
                await store.append(batch)
            await self.settle()
            await self.settle(projection="ledger")

    async def clearing(self, as_of: date = LATE, **filters: Any) -> list[dict[str, Any]]:
        return await queries.clearing(self.conn, "default", as_of=as_of, limit=1000, **filters)

    async def payouts(self, as_of: date = LATE, **filters: Any) -> list[dict[str, Any]]:
        return await queries.payouts(self.conn, "default", as_of=as_of, limit=1000, **filters)

    async def exceptions(self, as_of: date = LATE, **filters: Any) -> list[dict[str, Any]]:
        return await queries.exceptions(self.conn, "default", as_of=as_of, limit=1000, **filters)

    async def snapshot(self) -> dict[str, list[str]]:
        """Every row of every table as text, in key order (to compare rebuilds)."""
        found = {}
        for table in Reconciliation.tables:
            rows = await self.conn.fetch(
                f"SELECT t::text AS row FROM {Reconciliation.view(table)} AS t ORDER BY 1"
            )
            found[table] = [r["row"] for r in rows]
        return found

    async def rebuild(self, store: EventStore) -> None:
        """Queue a rebuild and wait until it is done (a worker must be running)."""
        active = "SELECT active_generation FROM ledgerhub.projections WHERE name = 'reconciliation'"
        generation = await self.conn.fetchval(active)
        projections = ProjectionStore.over(store)
        job = await Jobs(projections).enqueue("reconciliation", "rebuild")
        done = await asyncio.wait_for(follow_job(projections, job.id, poll=0.05), 90)
        assert done.state == "done", done
        assert await self.conn.fetchval(active) > generation, "a new generation is active"


def reconciliation_running(dsn: str) -> contextlib.AbstractAsyncContextManager[Worker]:
    """The reconciliation projection running in a worker in this event loop for the block."""
    return running(dsn, Reconciliation)


def books_running(dsn: str) -> contextlib.AbstractAsyncContextManager[Worker]:
    """The ledger and reconciliation projections running in one worker for the block."""
    return running(dsn, Ledger, Reconciliation)
