"""Projection leases: which worker runs which projection, renewed by heartbeat, fenced by token.

A lease is a row with an expiry. Taking it over is allowed only once it has expired, and bumps
its ``token``; every batch checks the token before it commits (``projections.Batch.fence``).
A killed worker stops renewing, so its leases expire after the time to live and are taken over.
"""

from __future__ import annotations

from hub.domain.projections import Lease
from hub.store.projections import ProjectionStore


class Leases:
    """Lease rows and the roll of live workers, on a ``ProjectionStore``'s pool."""

    def __init__(self, store: ProjectionStore, holder: str, ttl: float) -> None:
        self._store = store
        self.holder = holder
        self.ttl = ttl

    async def heartbeat(self) -> int:
        """Record this worker as alive; return how many workers are alive (itself included)."""
        rows = await self._store.fetch(
            "WITH me AS (INSERT INTO ledgerhub.projection_workers (holder) VALUES ($1) "
            "ON CONFLICT (holder) DO UPDATE SET seen_at = clock_timestamp() RETURNING holder) "
            "SELECT 1 + count(*) AS live FROM ledgerhub.projection_workers "
            "WHERE holder <> $1 AND seen_at > clock_timestamp() - $2 * interval '1 second'",
            self.holder,
            self.ttl,
        )
        return int(rows[0]["live"])

    async def acquire(self, projection: str) -> Lease | None:
        """Take ``projection``'s lease if it is free or expired; None if another holds it."""
        row = await self._store.fetchrow(
            "INSERT INTO ledgerhub.projection_leases AS l "
            "(projection, holder, token, acquired_at, renewed_at, expires_at) "
            "VALUES ($1, $2, 1, clock_timestamp(), clock_timestamp(), "
            "clock_timestamp() + $3 * interval '1 second') "
            "ON CONFLICT (projection) DO UPDATE SET holder = excluded.holder, "
            "token = l.token + 1, acquired_at = excluded.acquired_at, "
            "renewed_at = excluded.renewed_at, expires_at = excluded.expires_at "
            "WHERE l.expires_at <= clock_timestamp() RETURNING token",
            projection,
            self.holder,
            self.ttl,
        )
        return (
            None
            if row is None
            else Lease(projection=projection, holder=self.holder, token=row["token"])
        )

    async def renew(self, leases: list[Lease]) -> set[str]:
        """Extend ``leases``; return the projections still held (a missing one was lost)."""
        if not leases:
            return set()
        rows = await self._store.fetch(
            "UPDATE ledgerhub.projection_leases AS l SET renewed_at = clock_timestamp(), "
            "expires_at = clock_timestamp() + $4 * interval '1 second' "
            "FROM unnest($1::text[], $2::bigint[]) AS h(projection, token) "
            "WHERE l.projection = h.projection AND l.token = h.token AND l.holder = $3 "
            "RETURNING l.projection",
            *_columns(leases),
            self.holder,
            self.ttl,
        )
        return {row["projection"] for row in rows}

    async def release(self, leases: list[Lease]) -> None:
        """Give ``leases`` up so another worker may take them at once."""
        if not leases:
            return
        await self._store.fetch(
            "UPDATE ledgerhub.projection_leases AS l SET expires_at = clock_timestamp() "
            "FROM unnest($1::text[], $2::bigint[]) AS h(projection, token) "
            "WHERE l.projection = h.projection AND l.token = h.token AND l.holder = $3",
            *_columns(leases),
            self.holder,
        )

    async def leave(self) -> None:
        """Remove this worker from the roll of live workers."""
        await self._store.fetch(
            "DELETE FROM ledgerhub.projection_workers WHERE holder = $1", self.holder
        )

    async def live_holder(self, projection: str) -> str | None:
        """Who holds ``projection``'s unexpired lease, if anyone."""
        row = await self._store.fetchrow(
            "SELECT holder FROM ledgerhub.projection_leases "
            "WHERE projection = $1 AND expires_at > clock_timestamp()",
            projection,
        )
        return None if row is None else str(row["holder"])


def _columns(leases: list[Lease]) -> tuple[list[str], list[int]]:
    """``leases`` as the (projection, token) arrays the statements above unnest."""
    return [lease.projection for lease in leases], [lease.token for lease in leases]
