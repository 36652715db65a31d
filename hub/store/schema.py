"""Schema migrations: ordered ``migrations/NNNN_name.sql`` files, each applied once and recorded.

``migrate`` is safe to run twice and from several processes at once: it holds a session advisory
lock while it works, and each file runs in its own transaction together with its record.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

from hub.errors import SchemaError, StoreUnavailable
from hub.store.pool import Connection

MIGRATION_LOCK = 0x4C48_4D49  # "LHMI": serialises concurrent `ledgerhub migrate` runs
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    """One migration file."""

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def available() -> list[Migration]:
    """The migrations shipped with this code, in order."""
    found = []
    for entry in resources.files("hub.store").joinpath("migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    return found


async def _applied(conn: Connection) -> dict[int, str]:
    exists = await conn.fetchval("SELECT to_regclass('ledgerhub.schema_migrations') IS NOT NULL")
    if not exists:
        return {}
    rows = await conn.fetch("SELECT version, checksum FROM ledgerhub.schema_migrations")
    return {row["version"]: row["checksum"] for row in rows}


def _check(applied: dict[int, str], shipped: list[Migration]) -> list[Migration]:
    """The migrations still to apply; raises if the database has diverged from the code."""
    known = {m.version: m for m in shipped}
    newer = sorted(v for v in applied if v not in known)
    if newer:
        raise SchemaError(
            f"the database has migration {newer[0]:04d}, which this version of ledgerhub does not "
            "know: upgrade ledgerhub"
        )
    for version, checksum in applied.items():
        if known[version].checksum != checksum:
            raise SchemaError(
                f"migration {version:04d}_{known[version].name} was changed after it was applied"
            )
    return [m for m in shipped if m.version not in applied]


async def migrate(dsn: str) -> list[Migration]:
    """Apply every pending migration to the database at ``dsn``; return those applied."""
    try:
        conn = await asyncpg.connect(dsn)
    except (OSError, asyncpg.PostgresError) as exc:
        raise StoreUnavailable(f"cannot connect to PostgreSQL to migrate: {exc}") from exc
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
        await conn.execute(
            """
            CREATE SCHEMA IF NOT EXISTS ledgerhub;
            CREATE TABLE IF NOT EXISTS ledgerhub.schema_migrations (
                version    integer     PRIMARY KEY,
                name       text        NOT NULL,
                checksum   text        NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            );
            """
        )
        pending = _check(await _applied(conn), available())
        for migration in pending:
            async with conn.transaction():
                try:
                    await conn.execute(migration.sql)
                except asyncpg.PostgresError as exc:
                    raise SchemaError(
                        f"migration {migration.version:04d}_{migration.name} failed: {exc}"
                    ) from exc
                await conn.execute(
                    "INSERT INTO ledgerhub.schema_migrations (version, name, checksum) "
                    "VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
        return pending
    finally:
        await conn.close()  # closing the session releases the advisory lock


async def pending_migrations(conn: Connection) -> list[Migration]:
    """Migrations not yet applied on ``conn``'s database (empty = schema current)."""
    return _check(await _applied(conn), available())
