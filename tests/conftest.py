"""Shared fixtures: a real PostgreSQL server, a fresh migrated database per test, an EventStore."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from hub.store import EventStore
from tests.pg import Databases, server


@pytest.fixture(scope="session")
def databases() -> Iterator[Databases]:
    with server() as (admin_dsn, how):
        dbs = Databases(admin_dsn)
        asyncio.run(dbs.prepare())
        print(f"\ntests use PostgreSQL from {how}")
        try:
            yield dbs
        finally:
            dbs.drop_all()


@pytest.fixture
async def dsn(databases: Databases) -> AsyncIterator[str]:
    """A fresh, migrated database of this test's own (admin DSN)."""
    url = await databases.create()
    yield url
    await databases.drop(url)


@pytest.fixture
async def store(dsn: str) -> AsyncIterator[EventStore]:
    """The event store on this test's database, running as the hub's restricted role."""
    async with await EventStore.open(dsn) as s:
        yield s
