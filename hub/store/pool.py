"""Connection pools for the hub, running as the restricted ``ledgerhub_app`` role."""

from __future__ import annotations

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from hub.config.environment import APP_ROLE
from hub.errors import StoreUnavailable

Connection = asyncpg.Connection | PoolConnectionProxy
"""A connection, whether held directly or borrowed from a pool."""


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    """A pool whose sessions run as ``ledgerhub_app`` (INSERT and SELECT on the log only).

    The role is a startup parameter, so the pool's ``RESET ALL`` on release keeps it.
    """
    try:
        pool = await asyncpg.create_pool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            server_settings={"role": APP_ROLE, "application_name": "ledgerhub"},
        )
    except (OSError, asyncpg.PostgresError) as exc:
        raise StoreUnavailable(f"cannot connect to PostgreSQL: {exc}") from exc
    assert pool is not None
    return pool
