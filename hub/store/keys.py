"""API key storage: create, look up by hash, list, revoke (``ledgerhub.api_keys``)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime

import asyncpg

from hub.domain.keys import ApiKey, Scope
from hub.errors import LedgerhubError, SchemaError, StoreUnavailable
from hub.store.pool import create_pool

_SELECT = (
    "SELECT id, tenant, scope, prefix, label, created_at, expires_at, revoked_at "
    "FROM ledgerhub.api_keys"
)
REVOKE_CHANNEL = "ledgerhub_keys"
"""Notified with a key's id when it is revoked, so caches of key lookups can be dropped."""
_DB_ERRORS = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
    ConnectionError,
)


def _translate(exc: BaseException) -> LedgerhubError:
    if isinstance(exc, asyncpg.UndefinedTableError | asyncpg.InvalidSchemaNameError):
        return SchemaError(f"the key table is missing ({exc}): run `ledgerhub migrate`")
    return StoreUnavailable(f"the key store failed: {type(exc).__name__}: {exc}")


def _key(row: asyncpg.Record) -> ApiKey:
    return ApiKey(
        id=row["id"],
        tenant=row["tenant"],
        scope=Scope.parse(row["scope"]),
        prefix=row["prefix"],
        label=row["label"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
    )


class KeyStore:
    """Keys by hash. ``await KeyStore.open(dsn)``, or share a pool with ``KeyStore(pool)``."""

    def __init__(self, pool: asyncpg.Pool, *, owns_pool: bool = False) -> None:
        self._pool = pool
        self._owns_pool = owns_pool
        self._watchers: list[Callable[[], None]] = []

    @classmethod
    async def open(cls, dsn: str, *, max_connections: int = 4) -> KeyStore:
        """A key store with a pool of its own on ``dsn``."""
        return cls(await create_pool(dsn, max_size=max_connections), owns_pool=True)

    @property
    def pool(self) -> asyncpg.Pool:
        """The pool this store uses (shared with the readiness check)."""
        return self._pool

    async def close(self) -> None:
        """Release the pool if this store opened it."""
        if self._owns_pool:
            await self._pool.close()

    async def create(
        self,
        *,
        digest: bytes,
        prefix: str,
        tenant: str,
        scope: Scope,
        expires_at: datetime | None = None,
        label: str | None = None,
    ) -> ApiKey:
        """Store a new key's hash with its tenant and scope."""
        try:
            row = await self._pool.fetchrow(
                "INSERT INTO ledgerhub.api_keys "
                "(id, tenant, scope, prefix, key_hash, label, expires_at) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7) "
                "RETURNING id, tenant, scope, prefix, label, created_at, expires_at, revoked_at",
                uuid.uuid4(),
                tenant,
                str(scope),
                prefix,
                digest,
                label,
                expires_at,
            )
        except _DB_ERRORS as exc:
            raise _translate(exc) from exc
        assert row is not None
        return _key(row)

    async def find(self, digest: bytes) -> ApiKey | None:
        """The key with this hash, whatever its state, or None."""
        try:
            row = await self._pool.fetchrow(f"{_SELECT} WHERE key_hash = $1", digest)
        except _DB_ERRORS as exc:
            raise _translate(exc) from exc
        return None if row is None else _key(row)

    async def list(self, tenant: str | None = None) -> list[ApiKey]:
        """Every key (of ``tenant``, if given), oldest first."""
        try:
            rows = await self._pool.fetch(
                f"{_SELECT} WHERE $1::text IS NULL OR tenant = $1 ORDER BY created_at, id", tenant
            )
        except _DB_ERRORS as exc:
            raise _translate(exc) from exc
        return [_key(row) for row in rows]

    async def revoke(self, ident: str) -> ApiKey | None:
        """Revoke the key whose id or prefix is ``ident``; None if there is no such key.

        Revoking twice keeps the first revocation time.
        """
        try:
            key_id = uuid.UUID(ident)
        except ValueError:
            key_id = None
        try:
            rows = await self._pool.fetch(f"{_SELECT} WHERE id = $1 OR prefix = $2", key_id, ident)
            if len(rows) != 1:
                return None
            async with self._pool.acquire() as conn, conn.transaction():
                row = await conn.fetchrow(
                    "UPDATE ledgerhub.api_keys SET revoked_at = coalesce(revoked_at, now()) "
                    "WHERE id = $1 "
                    "RETURNING id, tenant, scope, prefix, label, created_at, expires_at, "
                    "revoked_at",
                    rows[0]["id"],
                )
                # tell serving processes to drop cached lookups (delivered on commit)
                await conn.execute("SELECT pg_notify($1, $2)", REVOKE_CHANNEL, str(rows[0]["id"]))
        except _DB_ERRORS as exc:
            raise _translate(exc) from exc
        for watcher in self._watchers:  # this process's own caches, without waiting for NOTIFY
            watcher()
        return None if row is None else _key(row)

    @contextlib.asynccontextmanager
    async def revocations(self, on_revoke: Callable[[], None]) -> AsyncIterator[None]:
        """Call ``on_revoke`` whenever any process revokes a key, while inside this block."""

        def handler(_conn: object, _pid: int, _channel: str, _payload: object) -> None:
            on_revoke()

        try:
            conn = await self._pool.acquire()
            await conn.add_listener(REVOKE_CHANNEL, handler)
        except _DB_ERRORS as exc:
            raise _translate(exc) from exc
        self._watchers.append(on_revoke)
        try:
            yield
        finally:
            self._watchers.remove(on_revoke)
            with contextlib.suppress(*_DB_ERRORS):
                await conn.remove_listener(REVOKE_CHANNEL, handler)
            await self._pool.release(conn)
