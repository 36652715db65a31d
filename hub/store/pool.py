"""Connection pools for the hub, running as the restricted ``ledgerhub_app`` role."""

from __future__ import annotations

import logging

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from hub.config.environment import APP_ROLE
from hub.errors import StoreUnavailable

log = logging.getLogger(__name__)

Connection = asyncpg.Connection | PoolConnectionProxy
"""A connection, whether held directly or borrowed from a pool."""


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    """A pool whose sessions run as ``ledgerhub_app`` (INSERT and SELECT on the log only).

    The role is a startup parameter, so the pool's ``RESET ALL`` on release keeps it.
    A connection that cannot be reset on release is closed there (``_reset``), never failing
    the caller whose work on it is done.
    """
    try:
        pool = await asyncpg.create_pool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            server_settings={"role": APP_ROLE, "application_name": "ledgerhub"},
            reset=_reset,
        )
    except (OSError, asyncpg.PostgresError) as exc:
        raise StoreUnavailable(f"cannot connect to PostgreSQL: {exc}") from exc
    assert pool is not None
    return pool


async def _reset(conn: asyncpg.Connection) -> None:
    """asyncpg's own reset on release (``get_reset_query()``: unlock advisory locks, close
    cursors, ``UNLISTEN *``, ``RESET ALL``), but a connection that fails it is terminated here
    instead of raising out of ``release``.

    The case this is for: PostgreSQL ends an idle session (``pg_ctl stop``, a restart, a failover
    or ``pg_terminate_backend`` send FATAL ``57P01``) just after the caller's last statement.
    asyncpg reads that unsolicited error, and the reset query then fails with
    ``InternalClientError: cannot switch to state 15; another operation (2) is in progress``
    (MagicStack/asyncpg#784) before the closed socket is noticed. asyncpg terminates the
    connection and re-raises from ``release``, that is out of ``async with pool.acquire()``:
    an append whose transaction had committed then answered 500 instead of its results. The
    caller's work is finished by then (committed, or failed with its own error), so the reset
    failing means only that this connection is not reused: the pool opens a new one.
    """
    query = conn.get_reset_query()
    if not query:
        return
    try:
        await conn.execute(query)
    except Exception as exc:  # whatever it was, the session is unusable: drop it, not the caller
        log.info("dropping a pooled connection that could not be reset: %r", exc)
        conn.terminate()
