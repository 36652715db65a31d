"""Replay and rebuild jobs: queued by an operator, run by the workers holding the leases.

With K partitions, each partition's runner does its part of a job: a replay re-applies the
range's events of its tenants (its progress is a ``projection_job_partitions`` row; the job is
done when every partition it covers has reached the end, or only the one it names: ``partition``),
and a rebuild builds its partition of the new generation (the job is done at the swap, once
every partition has caught up). A projection has at most one open rebuild (a unique index).
"""

from __future__ import annotations

from hub.domain.projections import Job, JobKind
from hub.errors import InvalidInput, NotFound, StoreUnavailable
from hub.store.projections import _JOB, ProjectionStore, _job


class Jobs:
    """The ``projection_jobs`` table on a ``ProjectionStore``'s pool."""

    def __init__(self, store: ProjectionStore) -> None:
        self._store = store

    async def enqueue(
        self,
        projection: str,
        kind: JobKind,
        *,
        from_position: int | None = None,
        to_position: int | None = None,
        send: bool = False,
        partition: int | None = None,
    ) -> Job:
        """Queue a job and wake the projection's workers. A rebuild already open is returned.

        A replay covers every partition of the projection's active generation, or only
        ``partition``."""
        await self._store.require(projection)
        partitions = await self._store.partition_count(projection)
        if kind == "rebuild":
            partition = None  # its K is the one it builds, set when it starts
        else:
            await self._check_range(projection, from_position, to_position, partition)
        for _ in range(3):  # a rebuild that another caller opened, or finished, meanwhile
            rows = await self._store.fetch(
                "INSERT INTO ledgerhub.projection_jobs "
                "(projection, kind, from_position, to_position, send, partition, partitions) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (projection) "
                "WHERE kind = 'rebuild' AND state IN ('queued', 'running') DO NOTHING "
                "RETURNING *",
                projection,
                kind,
                from_position,
                to_position,
                send,
                partition,
                partitions,
            )
            if not rows:
                rows = await self._store.fetch(
                    f"{_JOB} WHERE projection = $1 AND kind = 'rebuild' "
                    "AND state IN ('queued', 'running') ORDER BY id LIMIT 1",
                    projection,
                )
                if rows:
                    return _job(rows[0])
                continue
            await self._store.wake(projection)
            return _job(rows[0])
        raise StoreUnavailable(f"projection {projection!r}: could not queue a rebuild (try again)")

    async def _check_range(
        self, projection: str, start: int | None, end: int | None, partition: int | None
    ) -> None:
        partitions = await self._store.partition_count(projection)
        if partition is not None and not 0 <= partition < partitions:
            raise InvalidInput(
                f"projection {projection!r} runs as {partitions} partition(s): "
                f"no partition {partition}",
                errors=[{"index": None, "field": "partition", "message": f"0 to {partitions - 1}"}],
            )
        reached = await self._store.reached(projection, partition)
        if start is None or end is None or start < 1 or end < start:
            raise InvalidInput(
                f"a replay needs 1 <= from <= to, got from={start} to={end}",
                errors=[{"index": None, "field": "from", "message": "need 1 <= from <= to"}],
            )
        if end > reached:
            raise InvalidInput(
                f"projection {projection!r} has only reached position {reached}: replay up to "
                "there (later events are applied live anyway)",
                errors=[{"index": None, "field": "to", "message": f"at most {reached}"}],
            )

    async def get(self, job_id: int) -> Job:
        """The job ``job_id``; ``NotFound`` if there is none."""
        row = await self._store.fetchrow(f"{_JOB} WHERE id = $1", job_id)
        if row is None:
            raise NotFound(f"no job {job_id}")
        return _job(row)

    async def next_open(self, projection: str, partition: int = 0) -> Job | None:
        """The oldest queued or running job of ``projection`` that ``partition`` still has a
        part in (a replay it has finished, or of another partition, is not)."""
        row = await self._store.fetchrow(
            f"{_JOB} AS j WHERE projection = $1 AND state IN ('queued', 'running') "
            "AND (j.partition IS NULL OR j.partition = $2) "
            "AND (j.kind = 'rebuild' OR $2 < j.partitions) "
            "AND NOT EXISTS (SELECT 1 FROM ledgerhub.projection_job_partitions AS x "
            "WHERE x.job = j.id AND x.partition = $2 AND x.finished) ORDER BY id LIMIT 1",
            projection,
            partition,
        )
        return None if row is None else _job(row)

    async def cursor(self, job: Job, partition: int) -> int | None:
        """How far ``partition`` has replayed ``job`` (None: not started)."""
        row = await self._store.fetchrow(
            "SELECT cursor FROM ledgerhub.projection_job_partitions "
            "WHERE job = $1 AND partition = $2",
            job.id,
            partition,
        )
        return None if row is None else int(row["cursor"])

    async def recent(self, limit: int = 20) -> list[Job]:
        """The latest jobs, newest first."""
        rows = await self._store.fetch(f"{_JOB} ORDER BY id DESC LIMIT $1", limit)
        return [_job(row) for row in rows]
