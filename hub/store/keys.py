"""API key storage: create, look up by hash, list, revoke, rotate (``ledgerhub.api_keys``).

Use is counted without a write per request: ``record_use`` adds to counters in memory and
``flush_usage`` writes them in one statement (``open_hub`` flushes every
``USAGE_FLUSH_SECONDS`` and when it closes), so ``last_used_at`` and ``use_count`` lag by at
most that long, and a process that dies loses at most that much of its count. The client
networks a key is used from (``seen_networks``, for the usage anomalies of ``hub.api.anomalies``)
are gathered and written the same way; ``networks_seen`` answers from what the last lookup of
the key read plus what is waiting to be written, never asking the database.
"""

from __future__ import annotations

import contextlib
import ipaddress
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime, timedelta

import asyncpg

from hub.domain.keys import ApiKey, Network, Rate, Scope
from hub.errors import InvalidInput, LedgerhubError, NotFound, SchemaError, StoreUnavailable
from hub.store.pool import create_pool

_COLUMNS = (
    "id, tenant, scopes, prefix, label, created_at, expires_at, revoked_at, allow_ips, "
    "rate_count, rate_seconds, replaced_by, last_used_at, use_count, seen_networks"
)
_SELECT = f"SELECT {_COLUMNS} FROM ledgerhub.api_keys"
REVOKE_CHANNEL = "ledgerhub_keys"
"""Notified with a key's id when it is revoked or rotated, so caches of key lookups can be
dropped."""
_Conn = asyncpg.Pool | asyncpg.Connection | asyncpg.pool.PoolConnectionProxy
USAGE_FLUSH_SECONDS = 10.0
_MAX_REMEMBERED = 10_000
_MAX_NETWORKS = 256
"""At most this many new networks per key wait for a flush (a key used from everywhere)."""
"""How often a serving process writes the use counts it gathered (``flush_usage``)."""
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
    rate = None
    if row["rate_count"] is not None:
        rate = Rate(row["rate_count"], row["rate_seconds"])
    return ApiKey(
        id=row["id"],
        tenant=row["tenant"],
        scopes=tuple(Scope.parse(scope) for scope in row["scopes"]),
        prefix=row["prefix"],
        label=row["label"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
        allow_ips=tuple(ipaddress.ip_network(net) for net in row["allow_ips"]),
        rate=rate,
        replaced_by=row["replaced_by"],
        last_used_at=row["last_used_at"],
        use_count=row["use_count"],
    )


async def _lookup(conn: _Conn, ident: str, *, lock: bool = False) -> list[asyncpg.Record]:
    """The rows of the keys whose id or prefix is ``ident`` (locked, with ``lock``)."""
    try:
        key_id = uuid.UUID(ident)
    except ValueError:
        key_id = None
    locking = " FOR UPDATE" if lock else ""
    return list(await conn.fetch(f"{_SELECT} WHERE id = $1 OR prefix = $2{locking}", key_id, ident))


class KeyStore:
    """Keys by hash. ``await KeyStore.open(dsn)``, or share a pool with ``KeyStore(pool)``."""

    def __init__(self, pool: asyncpg.Pool, *, owns_pool: bool = False) -> None:
        self._pool = pool
        self._owns_pool = owns_pool
        self._watchers: list[Callable[[], None]] = []
        self._uses: dict[uuid.UUID, tuple[int, datetime]] = {}
        self._new_networks: dict[uuid.UUID, set[str]] = {}
        self._seen: dict[uuid.UUID, frozenset[str]] = {}

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
        key_id: uuid.UUID | None = None,
        digest: bytes,
        prefix: str,
        tenant: str,
        scope: Scope | None = None,
        scopes: Sequence[Scope] = (),
        expires_at: datetime | None = None,
        label: str | None = None,
        allow_ips: Sequence[Network] = (),
        rate: Rate | None = None,
    ) -> ApiKey:
        """Store a new key's hash with its tenant and scopes (``scope`` and ``scopes`` together:
        each given, duplicates dropped), its networks and its rate limit; ``key_id``: its id
        (default: a new one)."""
        wanted = list(dict.fromkeys([*([scope] if scope is not None else []), *scopes]))
        if not wanted:
            raise InvalidInput("a key needs at least one scope")
        try:
            row = await self._pool.fetchrow(
                "INSERT INTO ledgerhub.api_keys (id, tenant, scopes, prefix, key_hash, label, "
                "expires_at, allow_ips, rate_count, rate_seconds) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8::text[]::cidr[], $9, $10) "
                f"RETURNING {_COLUMNS}",
                key_id or uuid.uuid4(),
                tenant,
                [str(s) for s in wanted],
                prefix,
                digest,
                label,
                expires_at,
                [str(net) for net in dict.fromkeys(allow_ips)],
                rate.count if rate else None,
                rate.seconds if rate else None,
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
        if row is None:
            return None
        if len(self._seen) >= _MAX_REMEMBERED:
            self._seen.clear()
        self._seen[row["id"]] = frozenset(str(net) for net in row["seen_networks"])
        return _key(row)

    async def get(self, ident: str) -> ApiKey:
        """The key whose id or prefix is ``ident``; ``NotFound`` unless exactly one is."""
        try:
            rows = await _lookup(self._pool, ident)
        except _DB_ERRORS as exc:
            raise _translate(exc) from exc
        if len(rows) != 1:
            raise NotFound(f"no single key has id or prefix {ident!r}")
        return _key(rows[0])

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
            rows = await _lookup(self._pool, ident)
            if len(rows) != 1:
                return None
            async with self._pool.acquire() as conn, conn.transaction():
                row = await conn.fetchrow(
                    "UPDATE ledgerhub.api_keys SET revoked_at = coalesce(revoked_at, now()) "
                    "WHERE id = $1 "
                    f"RETURNING {_COLUMNS}",
                    rows[0]["id"],
                )
                # tell serving processes to drop cached lookups (delivered on commit)
                await conn.execute("SELECT pg_notify($1, $2)", REVOKE_CHANNEL, str(rows[0]["id"]))
        except _DB_ERRORS as exc:
            raise _translate(exc) from exc
        for watcher in self._watchers:  # this process's own caches, without waiting for NOTIFY
            watcher()
        return None if row is None else _key(row)

    async def rotate(
        self,
        ident: str,
        *,
        digest: bytes,
        prefix: str,
        overlap: timedelta,
        new_id: uuid.UUID | None = None,
    ) -> tuple[ApiKey, ApiKey]:
        """Replace the key whose id or prefix is ``ident`` by a new one (its hash ``digest``)
        with the same tenant, scopes, networks, rate limit, label and expiry; the old key
        stays valid for ``overlap`` (never longer than it would have), then is refused.
        Returns (old, new); ``new_id``: the new key's id (default: a new one). ``NotFound``
        if no single key has that id or prefix;
        ``InvalidInput`` if it is revoked, expired or already rotated.
        """
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                rows = await _lookup(conn, ident, lock=True)
                if len(rows) != 1:
                    raise NotFound(f"no single key has id or prefix {ident!r}")
                old = _key(rows[0])
                now = await conn.fetchval("SELECT now()")
                if old.replaced_by is not None:
                    raise InvalidInput(f"key {old.id} was already rotated to {old.replaced_by}")
                state = old.state(now)
                if state != "active":
                    raise InvalidInput(f"key {old.id} is {state}: create a new key instead")
                new = await conn.fetchrow(
                    "INSERT INTO ledgerhub.api_keys (id, tenant, scopes, prefix, key_hash, label, "
                    "expires_at, allow_ips, rate_count, rate_seconds) "
                    "SELECT $2, tenant, scopes, $3, $4, label, expires_at, allow_ips, rate_count, "
                    f"rate_seconds FROM ledgerhub.api_keys WHERE id = $1 RETURNING {_COLUMNS}",
                    old.id,
                    new_id or uuid.uuid4(),
                    prefix,
                    digest,
                )
                assert new is not None
                retired = await conn.fetchrow(
                    "UPDATE ledgerhub.api_keys SET replaced_by = $2, "
                    "expires_at = least(expires_at, now() + $3::interval) "
                    f"WHERE id = $1 RETURNING {_COLUMNS}",
                    old.id,
                    new["id"],
                    overlap,
                )
                assert retired is not None
                await conn.execute("SELECT pg_notify($1, $2)", REVOKE_CHANNEL, str(old.id))
        except _DB_ERRORS as exc:
            raise _translate(exc) from exc
        for watcher in self._watchers:
            watcher()
        return _key(retired), _key(new)

    def record_use(self, key_id: uuid.UUID, when: datetime, network: str | None = None) -> None:
        """Count one use of a key at ``when`` from client ``network`` (if told), in memory
        until ``flush_usage``."""
        count, _ = self._uses.get(key_id, (0, when))
        self._uses[key_id] = (count + 1, when)
        if network is not None and network not in self._seen.get(key_id, ()):
            pending = self._new_networks.setdefault(key_id, set())
            if len(pending) < _MAX_NETWORKS:
                pending.add(network)

    def networks_seen(self, key_id: uuid.UUID) -> frozenset[str]:
        """The networks the key was seen from: as stored when it was last looked up in this
        process, plus those waiting for ``flush_usage``."""
        return self._seen.get(key_id, frozenset()) | self._new_networks.get(key_id, set())

    async def flush_usage(self) -> int:
        """Write the use counts gathered since the last flush (one statement); the number of
        keys written. Counts that could not be written are kept for the next flush."""
        if not self._uses:
            return 0
        uses, self._uses = self._uses, {}
        networks, self._new_networks = self._new_networks, {}
        ids = list(uses)
        pairs = [(key_id, net) for key_id, nets in networks.items() for net in nets]
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                await conn.execute(
                    "UPDATE ledgerhub.api_keys AS k SET use_count = k.use_count + u.n, "
                    "last_used_at = greatest(k.last_used_at, u.at) "
                    "FROM unnest($1::uuid[], $2::bigint[], $3::timestamptz[]) AS u(id, n, at) "
                    "WHERE k.id = u.id",
                    ids,
                    [uses[i][0] for i in ids],
                    [uses[i][1] for i in ids],
                )
                if pairs:
                    await conn.execute(
                        "UPDATE ledgerhub.api_keys AS k SET seen_networks = ("
                        "SELECT array_agg(DISTINCT net ORDER BY net) "
                        "FROM unnest(k.seen_networks || n.nets) AS net) "
                        "FROM (SELECT id, array_agg(net) AS nets "
                        "FROM unnest($1::uuid[], $2::cidr[]) AS u(id, net) GROUP BY id) AS n "
                        "WHERE k.id = n.id",
                        [key_id for key_id, _ in pairs],
                        [net for _, net in pairs],
                    )
        except _DB_ERRORS as exc:
            for key_id, (count, when) in uses.items():  # keep them for the next try
                more, later = self._uses.get(key_id, (0, when))
                self._uses[key_id] = (count + more, max(when, later))
            for key_id, nets in networks.items():
                self._new_networks.setdefault(key_id, set()).update(nets)
            raise _translate(exc) from exc
        for key_id, nets in networks.items():  # written: they are known from now on
            self._seen[key_id] = self._seen.get(key_id, frozenset()) | nets
        return len(ids)

    @contextlib.asynccontextmanager
    async def revocations(self, on_revoke: Callable[[], None]) -> AsyncIterator[None]:
        """Call ``on_revoke`` whenever any process revokes or rotates a key, while inside this
        block."""

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
