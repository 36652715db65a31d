"""Running the ledger and accounting projections in this event loop, and reading documents."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg

from hub.runtime.worker import Worker
from projections.accounting import Accounting
from projections.ledger import Ledger
from tests.ledger.harness import FAST


def write_config(path: Path, mode: str, target: str = "beancount", extra: str = "") -> None:
    """A config whose default tenant syncs to ``target`` in ``mode``."""
    path.write_text(
        f'[tenants.default]\nsync = {{ target = "{target}", mode = "{mode}" }}\n{extra}'
    )


async def caught_up(conn: asyncpg.Connection, names: tuple[str, ...]) -> bool:
    """Whether every named projection's active generation has applied the whole log."""
    head = await conn.fetchval("SELECT coalesce(max(position), 0) FROM ledgerhub.events")
    rows = await conn.fetch(
        "SELECT p.name, g.position FROM ledgerhub.projection_generations AS g "
        "JOIN ledgerhub.projections AS p ON p.name = g.projection "
        "AND p.active_generation = g.generation WHERE p.name = ANY($1::text[])",
        list(names),
    )
    return len(rows) == len(names) and all(r["position"] >= head for r in rows)


async def settle(conn: asyncpg.Connection, names: tuple[str, ...] = ("accounting",)) -> None:
    """Wait (30 s at most) until the named projections have applied every event."""
    deadline = asyncio.get_running_loop().time() + 30
    while not await caught_up(conn, names):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{names} did not catch up")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def running(dsn: str, *projections: type[Any]) -> AsyncIterator[None]:
    """The projections (default: ledger and accounting) in a worker for the block."""
    worker = Worker(dsn, list(projections or (Ledger, Accounting)), FAST)
    task = asyncio.create_task(worker.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def documents(
    conn: asyncpg.Connection, tenant: str = "default", target: str = "beancount"
) -> dict[str, Any]:
    """Document key → its row, for ``tenant`` and ``target``."""
    rows = await conn.fetch(
        f"SELECT * FROM {Accounting.view('documents')} WHERE tenant = $1 AND target = $2 "
        "ORDER BY doc_key",
        tenant,
        target,
    )
    return {r["doc_key"]: r for r in rows}


def sums(rows: Any) -> dict[tuple[str, str], int]:
    """(account, currency) → the total over the rows' postings (zero totals dropped)."""
    total: dict[tuple[str, str], int] = {}
    for row in rows:
        for account, currency, amount in zip(
            row["accounts"], row["currencies"], row["amounts"], strict=True
        ):
            total[(account, currency)] = total.get((account, currency), 0) + amount
    return {k: v for k, v in total.items() if v}
