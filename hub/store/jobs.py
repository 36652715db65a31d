"""Replay and rebuild jobs: queued by an operator, run by the worker holding the lease."""

from __future__ import annotations

from hub.domain.projections import Job, JobKind
from hub.errors import InvalidInput, NotFound
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
    ) -> Job:
        """Queue a job and wake the projection's worker. A rebuild already open is returned."""
        await self._store.require(projection)
        if kind == "rebuild":
            rows = await self._store.fetch(
                f"{_JOB} WHERE projection = $1 AND kind = 'rebuild' "
                "AND state IN ('queued', 'running') ORDER BY id LIMIT 1",
                projection,
            )
            if rows:
                return _job(rows[0])
        else:
            await self._check_range(projection, from_position, to_position)
        rows = await self._store.fetch(
            "INSERT INTO ledgerhub.projection_jobs "
            "(projection, kind, from_position, to_position, send) VALUES ($1, $2, $3, $4, $5) "
            "RETURNING *",
            projection,
            kind,
            from_position,
            to_position,
            send,
        )
        await self._store.wake(projection)
        return _job(rows[0])

    async def _check_range(self, projection: str, start: int | None, end: int | None) -> None:
        active, _ = await self._store.generations(projection)
        reached = active.position if active else 0
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

    async def next_open(self, projection: str) -> Job | None:
        """The oldest queued or running job of ``projection``."""
        row = await self._store.fetchrow(
            f"{_JOB} WHERE projection = $1 AND state IN ('queued', 'running') ORDER BY id LIMIT 1",
            projection,
        )
        return None if row is None else _job(row)

    async def recent(self, limit: int = 20) -> list[Job]:
        """The latest jobs, newest first."""
        rows = await self._store.fetch(f"{_JOB} ORDER BY id DESC LIMIT $1", limit)
        return [_job(row) for row in rows]
