"""Projection leases: which worker runs which projection partition, renewed by heartbeat, fenced
by token.

A lease is a row per (projection, partition) with an expiry; a projection run as K partitions
has K leases (one, partition 0, when K = 1), so K workers can share its work. Taking a lease
over is allowed only once it has expired, and bumps its ``token``; every batch checks the token
before it commits (``projections.Batch.fence``). A killed worker stops renewing, so its leases
expire after the time to live and are taken over.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hub.domain.projections import Lease
from hub.store.projections import ProjectionStore


class Leases:
    """Lease rows and the roll of live workers, on a ``ProjectionStore``'s pool."""

    def __init__(self, store: ProjectionStore, holder: str, ttl: float) -> None:
        self._store = store
        self.holder = holder
        self.ttl = ttl

    async def heartbeat(self, projections: Mapping[str, int] | None = None) -> int:
        """Record this worker as alive, running ``projections`` (name -> partitions, stored as
        ``name=K``); return how many workers are alive (itself included)."""
        rows = await self._store.fetch(
            "WITH me AS (INSERT INTO ledgerhub.projection_workers (holder, projections) "
            "VALUES ($1, $3) ON CONFLICT (holder) DO UPDATE SET seen_at = clock_timestamp(), "
            "projections = excluded.projections RETURNING holder) "
            "SELECT 1 + count(*) AS live FROM ledgerhub.projection_workers "
            "WHERE holder <> $1 AND seen_at > clock_timestamp() - $2 * interval '1 second'",
            self.holder,
            self.ttl,
            _runs(projections or {}),
        )
        return int(rows[0]["live"])

    async def holdings(self, projections: Mapping[str, int]) -> dict[str, dict[str, int]]:
        """Projection -> live worker that runs it with the same K -> how many of its
        partitions' leases that worker holds (0 included), for each of ``projections`` (name
        -> K)."""
        rows = await self._store.fetch(
            "SELECT x.projection, w.holder, (SELECT count(*) FROM ledgerhub.projection_leases "
            "AS l WHERE l.projection = x.projection AND l.holder = w.holder "
            "AND l.expires_at > clock_timestamp()) AS held "
            "FROM unnest($1::text[], $3::text[]) AS x(projection, runs) "
            "JOIN ledgerhub.projection_workers AS w ON x.runs = ANY(w.projections) "
            "AND w.seen_at > clock_timestamp() - $2 * interval '1 second'",
            list(projections),
            self.ttl,
            _runs(projections),
        )
        found: dict[str, dict[str, int]] = {name: {} for name in projections}
        for row in rows:
            found[row["projection"]][row["holder"]] = int(row["held"])
        return found

    async def acquire(self, projection: str, partition: int = 0) -> Lease | None:
        """Take the lease of ``projection``'s ``partition`` if it is free or expired; None if
        another holds it."""
        row = await self._store.fetchrow(
            "INSERT INTO ledgerhub.projection_leases AS l "
            "(projection, partition, holder, token, acquired_at, renewed_at, expires_at) "
            "VALUES ($1, $4, $2, 1, clock_timestamp(), clock_timestamp(), "
            "clock_timestamp() + $3 * interval '1 second') "
            "ON CONFLICT (projection, partition) DO UPDATE SET holder = excluded.holder, "
            "token = l.token + 1, acquired_at = excluded.acquired_at, "
            "renewed_at = excluded.renewed_at, expires_at = excluded.expires_at "
            "WHERE l.expires_at <= clock_timestamp() RETURNING token",
            projection,
            self.holder,
            self.ttl,
            partition,
        )
        return (
            None
            if row is None
            else Lease(
                projection=projection, holder=self.holder, token=row["token"], partition=partition
            )
        )

    async def renew(self, leases: Sequence[Lease]) -> set[tuple[str, int]]:
        """Extend ``leases``; return the (projection, partition) pairs still held (a missing
        one was lost)."""
        if not leases:
            return set()
        rows = await self._store.fetch(
            "UPDATE ledgerhub.projection_leases AS l SET renewed_at = clock_timestamp(), "
            "expires_at = clock_timestamp() + $5 * interval '1 second' "
            "FROM unnest($1::text[], $2::int[], $3::bigint[]) AS h(projection, partition, token) "
            "WHERE l.projection = h.projection AND l.partition = h.partition "
            "AND l.token = h.token AND l.holder = $4 RETURNING l.projection, l.partition",
            *_columns(leases),
            self.holder,
            self.ttl,
        )
        return {(row["projection"], row["partition"]) for row in rows}

    async def release(self, leases: Sequence[Lease]) -> None:
        """Give ``leases`` up so another worker may take them at once."""
        if not leases:
            return
        await self._store.fetch(
            "UPDATE ledgerhub.projection_leases AS l SET expires_at = clock_timestamp() "
            "FROM unnest($1::text[], $2::int[], $3::bigint[]) AS h(projection, partition, token) "
            "WHERE l.projection = h.projection AND l.partition = h.partition "
            "AND l.token = h.token AND l.holder = $4",
            *_columns(leases),
            self.holder,
        )

    async def disagreements(self, projections: Mapping[str, int]) -> dict[str, tuple[str, int]]:
        """Projection -> (another live worker, the K it runs it as) for each of ``projections``
        (name -> K) that another live worker runs as another number of partitions."""
        rows = await self._store.fetch(
            "SELECT DISTINCT ON (name) split_part(r, '=', 1) AS name, "
            "split_part(r, '=', 2)::int AS partitions, w.holder "
            "FROM ledgerhub.projection_workers AS w CROSS JOIN unnest(w.projections) AS r "
            "WHERE w.holder <> $1 AND w.seen_at > clock_timestamp() - $2 * interval '1 second' "
            "AND split_part(r, '=', 1) = ANY($3::text[]) AND r <> ALL($4::text[]) "
            "ORDER BY name, w.holder",
            self.holder,
            self.ttl,
            list(projections),
            _runs(projections),
        )
        return {row["name"]: (row["holder"], int(row["partitions"])) for row in rows}

    async def leave(self) -> None:
        """Remove this worker from the roll of live workers."""
        await self._store.fetch(
            "DELETE FROM ledgerhub.projection_workers WHERE holder = $1", self.holder
        )

    async def live_holder(self, projection: str, partition: int = 0) -> str | None:
        """Who holds the unexpired lease of ``projection``'s ``partition``, if anyone."""
        row = await self._store.fetchrow(
            "SELECT holder FROM ledgerhub.projection_leases "
            "WHERE projection = $1 AND partition = $2 AND expires_at > clock_timestamp()",
            projection,
            partition,
        )
        return None if row is None else str(row["holder"])

    async def live_holders(self, projection: str, partitions: int) -> dict[int, str]:
        """Partition -> holder of each unexpired lease among ``projection``'s first
        ``partitions`` partitions."""
        rows = await self._store.fetch(
            "SELECT partition, holder FROM ledgerhub.projection_leases "
            "WHERE projection = $1 AND partition < $2 AND expires_at > clock_timestamp()",
            projection,
            partitions,
        )
        return {int(row["partition"]): str(row["holder"]) for row in rows}


def _runs(projections: Mapping[str, int]) -> list[str]:
    """``projections`` (name -> K) as the ``name=K`` strings a worker's row lists."""
    return [f"{name}={partitions}" for name, partitions in projections.items()]


def _columns(leases: Sequence[Lease]) -> tuple[list[str], list[int], list[int]]:
    """``leases`` as the (projection, partition, token) arrays the statements above unnest."""
    return (
        [lease.projection for lease in leases],
        [lease.partition for lease in leases],
        [lease.token for lease in leases],
    )
