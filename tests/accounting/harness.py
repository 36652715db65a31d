"""Running the ledger and accounting projections in this event loop, and reading documents."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg

from hub.runtime.worker import Worker
from projections.accounting import Accounting
from projections.ledger import Ledger
from tests.ledger.harness import FAST

ROOT = Path(__file__).resolve().parents[2]


async def cli(
    dsn: str, config: Path, home: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """``python -m hub ARGS`` on ``dsn`` with ``config``: (exit code, stdout, stderr)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("LEDGERHUB_")}
    environ.update(LEDGERHUB_DSN=dsn, LEDGERHUB_CONFIG=str(config), LEDGERHUB_HOME=str(home),
                   PYTHONPATH=str(ROOT), **(env or {}))  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hub", *args, env=environ, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 90)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


XERO_SECRET_ENV = "LEDGERHUB_TEST_XERO_CLIENT_SECRET"
"""The environment variable a test config names for the Xero client secret."""


def write_config(
    path: Path, mode: str, target: str = "beancount", extra: str = "", xero_url: str = ""
) -> None:
    """A config whose default tenant syncs to ``target`` in ``mode``; a Xero target reaches the
    fake at ``xero_url`` with the refresh token in ``xero-refresh-token`` beside the file."""
    sync = f'[tenants.default.sync]\ntarget = "{target}"\nmode = "{mode}"\n'
    if target == "xero":
        url = xero_url or "http://127.0.0.1:9"
        sync += (
            'tenant_id = "org-1"\nclient_id = "client"\n'
            f'client_secret = "env:{XERO_SECRET_ENV}"\n'
            'refresh_token_file = "xero-refresh-token"\n'
            f'api_url = "{url}/api.xro/2.0"\ntoken_url = "{url}/connect/token"\ntimeout = 2\n'
        )
    path.write_text(f"[tenants.default]\n{sync}{extra}")


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
