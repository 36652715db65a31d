"""A scratch database for one benchmark run: created, migrated, and dropped afterwards."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator

import asyncpg

from hub.config import Settings
from hub.store.provision import resolve_dsn, with_database
from hub.store.schema import migrate


@contextlib.asynccontextmanager
async def scratch_database(server: str | None, label: str) -> AsyncIterator[str]:
    """Yield the DSN of a fresh, migrated database on ``server`` (else the embedded one)."""
    server = server or await resolve_dsn(Settings.from_env())
    name = f"lh_bench_{label}_{os.getpid()}"
    admin = await asyncpg.connect(server)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        dsn = with_database(server, name)
        await migrate(dsn)
        version = await admin.fetchval("SHOW server_version")
        print(f"PostgreSQL {version}; database {name} (dropped after the run); "
              f"{os.cpu_count()} CPUs")  # fmt: skip
        yield dsn
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
