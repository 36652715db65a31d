"""Real worker processes (``python -m hub worker``) on a test's database, and bounded waits."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg

from hub.runtime.settings import RuntimeSettings
from hub.runtime.worker import Worker
from hub.spi.projection import Projection

ROOT = Path(__file__).resolve().parents[2]
COUNT = "tests.projections.count:CountByType"
MAILER = "tests.projections.count:Mailer"

FAST = {
    "LEDGERHUB_LEASE_TTL": "1",
    "LEDGERHUB_POLL_INTERVAL": "0.2",
    "LEDGERHUB_RETRY_ATTEMPTS": "2",
    "LEDGERHUB_RETRY_WAIT": "0.01",
    "LEDGERHUB_BACKOFF_MAX": "0.5",
}
"""Short leases and polls so takeovers and retries happen within a test's patience."""

FAST_SETTINGS = RuntimeSettings(
    lease_ttl=1, poll_interval=0.2, retry_attempts=3, retry_wait=0.01, backoff_max=0.5
)
"""The same for a worker running inside the test's own event loop."""


@contextlib.asynccontextmanager
async def running(dsn: str, *projections: type[Projection]) -> AsyncIterator[Worker]:
    """A worker in this event loop for the duration of the block."""
    worker = Worker(dsn, projections, FAST_SETTINGS)
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def environment(dsn: str, workdir: Path, **extra: str) -> dict[str, str]:
    """The environment of a worker or CLI process for this test."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGERHUB_")}
    env.update(FAST)
    env.update(
        LEDGERHUB_DSN=dsn,
        LEDGERHUB_TEST_DIR=str(workdir),
        LEDGERHUB_PROJECTIONS=COUNT,
        PYTHONPATH=str(ROOT),
    )
    env.update(extra)
    return env


class Workers:
    """Starts worker processes and makes sure none outlives the test."""

    def __init__(self, dsn: str, workdir: Path) -> None:
        self.dsn = dsn
        self.workdir = workdir
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, *command: str, **extra: str) -> subprocess.Popen[bytes]:
        """``python -m hub worker`` for CountByType only (or ``command``), with this test's
        environment."""
        log = (self.workdir / f"worker-{len(self.procs)}.log").open("wb")
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "hub",
                *(command or ("worker", "--projection", "count_by_type")),
            ],
            env=environment(self.dsn, self.workdir, **extra),
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.procs.append(proc)
        return proc

    def logs(self) -> str:
        return "\n".join(p.read_text() for p in sorted(self.workdir.glob("worker-*.log")))

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.kill()
            proc.wait(timeout=10)


def cli(dsn: str, workdir: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m hub ARGS`` to completion (at most 60 s)."""
    return subprocess.run(
        [sys.executable, "-m", "hub", *args],
        env=environment(dsn, workdir, **extra),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def wait_until(
    check: Callable[[], Awaitable[Any]], *, within: float = 30, what: str = "condition"
) -> Any:
    """Poll ``check`` until it returns something truthy; fail the test after ``within`` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        value = await check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.05)


class ReadModel:
    """The test's view of the database: checkpoints, leases and the CountByType read model."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def checkpoint(self, projection: str = "count_by_type") -> int:
        value = await self.conn.fetchval(
            "SELECT g.position FROM ledgerhub.projection_generations AS g "
            "JOIN ledgerhub.projections AS p ON p.name = g.projection "
            "AND p.active_generation = g.generation WHERE p.name = $1",
            projection,
        )
        return int(value or 0)

    async def head(self) -> int:
        return int(
            await self.conn.fetchval("SELECT coalesce(max(position), 0) FROM ledgerhub.events")
        )

    async def holder(self, projection: str = "count_by_type") -> str | None:
        value = await self.conn.fetchval(
            "SELECT holder FROM ledgerhub.projection_leases "
            "WHERE projection = $1 AND expires_at > clock_timestamp()",
            projection,
        )
        return None if value is None else str(value)

    async def caught_up(self, projection: str = "count_by_type") -> bool:
        head = await self.head()
        return head > 0 and await self.checkpoint(projection) == head

    async def applications(self) -> dict[int, int]:
        rows = await self.conn.fetch(
            'SELECT position, applications FROM ledgerhub_projections."count_by_type__seen"'
        )
        return {r["position"]: r["applications"] for r in rows}

    async def counts(self) -> dict[str, int]:
        rows = await self.conn.fetch(
            'SELECT type, n FROM ledgerhub_projections."count_by_type__counts"'
        )
        return {r["type"]: r["n"] for r in rows}

    async def handled_by(self, position: int) -> int:
        return int(
            await self.conn.fetchval(
                'SELECT pid FROM ledgerhub_projections."count_by_type__seen" WHERE position = $1',
                position,
            )
        )


def pid_of(holder: str) -> int:
    """The process id inside a lease holder's name (``host:pid:random``)."""
    return int(holder.split(":")[-2])


def overlaps(workdir: Path) -> list[str]:
    """The processes that found another live process inside the same handler."""
    return [path.name for path in workdir.glob("overlap-*")]
