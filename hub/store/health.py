"""Readiness: is the database reachable and its schema current?"""

from __future__ import annotations

import asyncpg

from hub.errors import LedgerhubError
from hub.store.schema import pending_migrations


async def readiness_problem(pool: asyncpg.Pool) -> str | None:
    """None when the database answers and every migration is applied, else what is wrong."""
    try:
        async with pool.acquire() as conn:
            pending = await pending_migrations(conn)
    except (
        asyncpg.PostgresError,
        asyncpg.InterfaceError,
        asyncpg.InternalClientError,
        OSError,
        ConnectionError,
    ) as exc:
        return f"database unreachable: {type(exc).__name__}"
    except LedgerhubError as exc:
        return str(exc)
    if pending:
        return f"{len(pending)} migration(s) pending: run `ledgerhub migrate`"
    return None
