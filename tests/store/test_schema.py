"""Migrations: ordered, recorded, safe to repeat and to race; a stale schema is refused."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from hub.errors import SchemaError
from hub.store import EventStore
from hub.store.schema import available, migrate
from hub.testing.postgres import Databases

pytestmark = pytest.mark.store


@pytest.fixture
async def empty_dsn(databases: Databases):  # type: ignore[no-untyped-def]
    url = await databases.create(migrated=False)
    yield url
    await databases.drop(url)


RELEASED = {
    1: "88f14e9c768b432640e954870af9c565a0c46d0ebf8c861b92f90497b6fc3120",
    2: "957aa91deaa3197ceee5ab717a8bee1e56034c103a17e2bd647790c159f0bf1e",
    5: "8967d4b60e02fc1ee3570a0f62d8e3b4378c54a41beede2c8a7b4035bdbfed17",
    8: "ab4fb5b452602688ddd85d7cf9b7018ad1a16d5e2a6e759353b6fc574c9991d8",
    11: "8a0e8851295c9aa88947dace3ff48b1e58c442692b80ebbad5995d66ea7b5959",
    12: "115104d60290a20d84e69cf3e78256a0924960d8cba0b28c26a3aa56f1d2de6f",
    13: "c18323eb5078e71401e12c9558c6c3e3047e774c28561022642641cd6f2518f6",
    14: "17872f5b099e5965a06ebcffc9ebfe41c43a0f49c3d147aa1079362bbcce15f6",
    15: "898b022ab3573edc59526db45ae47b77bda3b4008ed2b523cee1b13e7fcc4cb6",
}
"""Migrations that deployed databases have applied, by checksum: ``migrate`` refuses a database
whose applied file changed, so these files are history, never edited (add a migration)."""

_VIEW_OBJECTS = """
SELECT 'relation ' || c.relname AS object FROM pg_class AS c
JOIN pg_namespace AS n ON n.oid = c.relnamespace WHERE n.nspname = 'ledgerhub_views'
UNION ALL
SELECT 'function ' || p.proname FROM pg_proc AS p
JOIN pg_namespace AS n ON n.oid = p.pronamespace WHERE n.nspname = 'ledgerhub_views'
ORDER BY 1
"""


async def _versions(dsn: str) -> list[int]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT version FROM ledgerhub.schema_migrations ORDER BY version")
        return [r["version"] for r in rows]
    finally:
        await conn.close()


async def test_migrate_twice_applies_once(empty_dsn: str) -> None:
    first = await migrate(empty_dsn)
    assert [m.version for m in first] == [m.version for m in available()]
    assert await migrate(empty_dsn) == []
    assert await _versions(empty_dsn) == [m.version for m in available()]


async def test_concurrent_migrations_apply_each_file_once(empty_dsn: str) -> None:
    results = await asyncio.gather(*(migrate(empty_dsn) for _ in range(4)))
    applied = [m.version for result in results for m in result]
    assert sorted(applied) == [m.version for m in available()]
    assert await _versions(empty_dsn) == [m.version for m in available()]


async def test_store_refuses_an_unmigrated_database(empty_dsn: str) -> None:
    with pytest.raises(SchemaError, match="ledgerhub migrate"):
        await EventStore.open(empty_dsn)


async def test_an_edited_migration_is_refused(empty_dsn: str) -> None:
    await migrate(empty_dsn)
    conn = await asyncpg.connect(empty_dsn)
    try:
        await conn.execute(
            "UPDATE ledgerhub.schema_migrations SET checksum = 'x' WHERE version = 1"
        )
    finally:
        await conn.close()
    with pytest.raises(SchemaError, match="changed after it was applied"):
        await migrate(empty_dsn)


async def test_a_database_newer_than_the_code_is_refused(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "INSERT INTO ledgerhub.schema_migrations (version, name, checksum) "
            "VALUES (9999, 'future', 'x')"
        )
    finally:
        await conn.close()
    with pytest.raises(SchemaError, match="9999"):
        await migrate(dsn)
    with pytest.raises(SchemaError, match="9999"):
        await EventStore.open(dsn)


def test_released_migrations_are_never_edited() -> None:
    shipped = {m.version: m.checksum for m in available()}
    assert {version: shipped.get(version) for version in RELEASED} == RELEASED


async def test_the_core_migrations_leave_the_analyst_views_to_the_projections(
    empty_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    released = [m for m in available() if m.version in RELEASED]
    monkeypatch.setattr("hub.store.schema.available", lambda: released)
    await migrate(empty_dsn)  # a database deployed before the views moved to the projections
    monkeypatch.undo()
    conn = await asyncpg.connect(empty_dsn)
    try:
        before = [r["object"] for r in await conn.fetch(_VIEW_OBJECTS)]
        applied = await migrate(empty_dsn)
        after = [r["object"] for r in await conn.fetch(_VIEW_OBJECTS)]
        rights = await conn.fetchrow(
            "SELECT has_schema_privilege('ledgerhub_app', 'ledgerhub_views', 'CREATE') AS app, "
            "has_schema_privilege('ledgerhub_analyst', 'ledgerhub_views', 'USAGE') AS analyst, "
            "has_schema_privilege('ledgerhub_analyst', 'ledgerhub_views', 'CREATE') AS creates"
        )
    finally:
        await conn.close()
    assert {"relation reconciliation_payouts", "function clearing_tieout_at"} <= set(before)
    assert [m.version for m in applied] == [m.version for m in available() if m.version > 15]
    assert after == [], "every analyst view now belongs to a projection, which creates it"
    assert rights is not None
    assert dict(rights) == {"app": True, "analyst": True, "creates": False}
