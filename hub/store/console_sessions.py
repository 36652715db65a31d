"""Web console sessions (``ledgerhub.console_sessions``): opened at sign-in, looked up with
their key on every request, closed at sign-out or when they expire.

The cookie holds a random token; the table holds its SHA-256, the id of the key signed in with
(never the key) and the session's CSRF token. ``find`` answers the session together with its
key's current row, so a revoked, expired or rotated-out key ends its sessions at once.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from hub.domain.keys import ApiKey
from hub.errors import LedgerhubError, SchemaError, StoreUnavailable
from hub.store.keys import _COLUMNS, _DB_ERRORS, _key

_KEY_COLUMNS = ", ".join(f"k.{column.strip()}" for column in _COLUMNS.split(","))


@dataclass(frozen=True)
class ConsoleSession:
    """A signed-in console session: its key (as stored now) and its CSRF token."""

    key: ApiKey
    csrf: str
    expires_at: datetime


def token_digest(token: str) -> bytes:
    """The SHA-256 of a session token: the only form in which it is stored."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class ConsoleSessions:
    """The session table on a pool (the hub's role)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def open(self, token: str, key_id: uuid.UUID, csrf: str, expires_at: datetime) -> None:
        """Store a new session for ``token`` (its hash), signed in with key ``key_id``; drop
        the sessions that have expired."""
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                await conn.execute(
                    "DELETE FROM ledgerhub.console_sessions WHERE expires_at <= clock_timestamp()"
                )
                await conn.execute(
                    "INSERT INTO ledgerhub.console_sessions (token_hash, key_id, csrf, expires_at)"
                    " VALUES ($1, $2, $3, $4)",
                    token_digest(token),
                    key_id,
                    csrf,
                    expires_at,
                )
        except _DB_ERRORS as exc:
            raise _error(exc) from exc

    async def find(self, token: str) -> ConsoleSession | None:
        """The live session of ``token`` with its key's current row, or None (unknown or
        expired)."""
        try:
            row = await self._pool.fetchrow(
                f"SELECT {_KEY_COLUMNS}, s.csrf, s.expires_at AS session_expires_at "
                "FROM ledgerhub.console_sessions AS s "
                "JOIN ledgerhub.api_keys AS k ON k.id = s.key_id "
                "WHERE s.token_hash = $1 AND s.expires_at > clock_timestamp()",
                token_digest(token),
            )
        except _DB_ERRORS as exc:
            raise _error(exc) from exc
        if row is None:
            return None
        return ConsoleSession(_key(row), row["csrf"], row["session_expires_at"])

    async def close(self, token: str) -> None:
        """End the session of ``token`` (nothing if there is none)."""
        try:
            await self._pool.execute(
                "DELETE FROM ledgerhub.console_sessions WHERE token_hash = $1",
                token_digest(token),
            )
        except _DB_ERRORS as exc:
            raise _error(exc) from exc


def _error(exc: BaseException) -> LedgerhubError:
    if isinstance(exc, asyncpg.UndefinedTableError | asyncpg.InvalidSchemaNameError):
        return SchemaError(f"the console session table is missing ({exc}): run `ledgerhub migrate`")
    return StoreUnavailable(f"the console session store failed: {type(exc).__name__}: {exc}")
