"""Running the ledger projection in this event loop on a test's database, and reading it."""

from __future__ import annotations

import asyncio
import contextlib
import copy
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import asyncpg

from hub.config.books import mappers
from hub.domain.events import NewEvent
from hub.runtime.operate import follow_job
from hub.runtime.settings import RuntimeSettings
from hub.runtime.worker import Worker
from hub.store import EventStore
from hub.store.jobs import Jobs
from hub.store.projections import ProjectionStore
from projections.ledger import Ledger, queries

FAST = RuntimeSettings(lease_ttl=2, poll_interval=0.1, retry_attempts=1, retry_wait=0.01)


def sample(connector: str, event_type: str, index: int = 0) -> dict[str, Any]:
    """A deep copy of the ``data`` of a connector's ``index``-th shipped sample of a type."""
    found = [s for s in mappers()[connector].samples() if s.type == event_type]
    return copy.deepcopy(dict(found[index].data))


def new(
    source: str, external_id: str, event_type: str, data: dict[str, Any], when: str, **extra: Any
) -> NewEvent:
    """A ``NewEvent`` as a connector would store it."""
    return NewEvent(
        source=source,
        external_id=external_id,
        type=event_type,
        occurred_at=datetime.fromisoformat(when),
        data=data,
        **extra,
    )


class Books:
    """The test's view of the ledger's read model."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def caught_up(self) -> bool:
        head = await self.conn.fetchval("SELECT coalesce(max(position), 0) FROM ledgerhub.events")
        position = await self.conn.fetchval(
            "SELECT g.position FROM ledgerhub.projection_generations AS g "
            "JOIN ledgerhub.projections AS p ON p.name = g.projection "
            "AND p.active_generation = g.generation WHERE p.name = 'ledger'"
        )
        return position is not None and position >= head

    async def settle(self, patience: float = 30) -> None:
        """Wait until the active generation has applied every event."""
        deadline = asyncio.get_running_loop().time() + patience
        while not await self.caught_up():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError("the ledger did not catch up")
            await asyncio.sleep(0.05)

    async def balances(self, tenant: str = "default") -> dict[tuple[str, str], int]:
        """(account code, currency) → balance (debit positive) over every entry."""
        tb = await queries.trial_balance(self.conn, tenant)
        assert tb["balanced"], tb
        return {(line["code"], line["currency"]): line["balance_minor"] for line in tb["lines"]}

    async def journal_rows(self) -> list[str]:
        """Every journal row as text, in key order (to compare rebuilds byte for byte)."""
        rows = await self.conn.fetch(
            f"SELECT j::text AS row FROM {Ledger.view('journal')} AS j ORDER BY tenant, entry_key"
        )
        return [r["row"] for r in rows]

    async def rebuild(self, store: EventStore) -> None:
        """Queue a rebuild of the ledger and wait until it is done (it must be running)."""
        active = "SELECT active_generation FROM ledgerhub.projections WHERE name = 'ledger'"
        generation = await self.conn.fetchval(active)
        projections = ProjectionStore.over(store)
        job = await Jobs(projections).enqueue("ledger", "rebuild")
        done = await asyncio.wait_for(follow_job(projections, job.id, poll=0.05), 90)
        assert done.state == "done", done
        assert await self.conn.fetchval(active) > generation, "a new generation is active"

    async def entry(self, key: str, tenant: str = "default") -> asyncpg.Record | None:
        return await self.conn.fetchrow(
            f"SELECT * FROM {Ledger.view('journal')} WHERE tenant = $1 AND entry_key = $2",
            tenant,
            key,
        )


@contextlib.asynccontextmanager
async def ledger_running(dsn: str) -> AsyncIterator[None]:
    """The ledger projection running in a worker in this event loop for the block."""
    worker = Worker(dsn, [Ledger], FAST)
    task = asyncio.create_task(worker.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
