"""The pytest plugin (entry point ``pytest11``: ``ledgerhub``): PostgreSQL fixtures for tests of
the hub and of its plugins. Installed with ledgerhub, it is active in every pytest run.

- ``databases`` (session): the server (``LEDGERHUB_TEST_DSN``, else a testcontainers PostgreSQL
  when Docker answers, else the embedded one) and a template database migrated once;
- ``dsn``: a fresh, migrated database of the test's own (its admin DSN), dropped afterwards;
- ``store``: the ``EventStore`` on that database, as the hub's restricted role.

``dsn`` and ``store`` are asyncio fixtures: they need pytest-asyncio (strict or auto mode).
Without it they fail with that message, and the plugin stays out of the way of other projects'
test runs in the same environment.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from hub.store import EventStore
from hub.testing.postgres import Databases, server


@pytest.fixture(scope="session")
def databases() -> Iterator[Databases]:
    """The tests' PostgreSQL server, with a migrated template to clone databases from."""
    with server() as (admin_dsn, how):
        dbs = Databases(admin_dsn)
        asyncio.run(dbs.prepare())
        print(f"\ntests use PostgreSQL from {how}")
        try:
            yield dbs
        finally:
            dbs.drop_all()


try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - only where pytest-asyncio is not installed
    _MISSING = (
        "hub.testing's dsn and store fixtures need pytest-asyncio (pip install pytest-asyncio)"
    )

    @pytest.fixture(name="dsn")
    def _no_dsn() -> str:
        pytest.fail(_MISSING)

    @pytest.fixture(name="store")
    def _no_store() -> EventStore:
        pytest.fail(_MISSING)

else:

    @pytest_asyncio.fixture
    async def dsn(databases: Databases) -> AsyncIterator[str]:
        """A fresh, migrated database of this test's own (admin DSN)."""
        url = await databases.create()
        yield url
        await databases.drop(url)

    @pytest_asyncio.fixture
    async def store(dsn: str) -> AsyncIterator[EventStore]:
        """The event store on this test's database, running as the hub's restricted role."""
        async with await EventStore.open(dsn) as s:
            yield s
