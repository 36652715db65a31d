"""Migrations: ordered, recorded, safe to repeat and to race; a stale schema is refused."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from hub.errors import SchemaError
from hub.store import EventStore
from hub.store.schema import available, migrate
from tests.pg import Databases

pytestmark = pytest.mark.store


@pytest.fixture
async def empty_dsn(databases: Databases):  # type: ignore[no-untyped-def]
    url = await databases.create(migrated=False)
    yield url
    await databases.drop(url)


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
