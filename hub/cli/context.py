"""What every command needs: settings, the database, the store."""

from __future__ import annotations

from hub.config import Settings
from hub.store import EventStore
from hub.store.provision import resolve_dsn


async def database_dsn() -> str:
    """The DSN for this process: ``LEDGERHUB_DSN`` or the embedded server (started if needed)."""
    return await resolve_dsn(Settings.from_env())


async def open_store() -> EventStore:
    """The event store, failing with a clear error if ``ledgerhub migrate`` is needed."""
    return await EventStore.open(await database_dsn())
