"""Parked events: listed, retried (by the worker holding the lease of the partition that
parked it) or skipped by an operator."""

from __future__ import annotations

from collections.abc import Sequence

from hub.domain.projections import OPEN_PARKED, ParkedEvent, ParkedStatus
from hub.errors import InvalidInput, NotFound
from hub.store.projections import _PARKED, ProjectionStore, _parked


class Parked:
    """The ``parked_events`` table on a ``ProjectionStore``'s pool."""

    def __init__(self, store: ProjectionStore) -> None:
        self._store = store

    async def find(
        self,
        *,
        projection: str | None = None,
        statuses: Sequence[ParkedStatus] = OPEN_PARKED,
        tenant: str | None = None,
        after_id: int = 0,
        limit: int = 100,
    ) -> list[ParkedEvent]:
        """Parked events of active generations, oldest first, optionally of one projection or
        of events of one tenant."""
        rows = await self._store.fetch(
            f"{_PARKED} AS x WHERE ($1::text IS NULL OR projection = $1) "
            "AND status = ANY($2::text[]) AND id > $3 "
            "AND generation = (SELECT active_generation FROM ledgerhub.projections "
            "WHERE name = x.projection) "
            "AND ($5::text IS NULL OR EXISTS (SELECT 1 FROM ledgerhub.events AS e "
            "WHERE e.position = x.position AND e.tenant = $5)) ORDER BY id LIMIT $4",
            projection,
            list(statuses),
            after_id,
            limit,
            tenant,
        )
        return [_parked(row) for row in rows]

    async def get(self, parked_id: int) -> ParkedEvent:
        """The parked event ``parked_id``; ``NotFound`` if there is none."""
        row = await self._store.fetchrow(f"{_PARKED} WHERE id = $1", parked_id)
        if row is None:
            raise NotFound(f"no parked event {parked_id}")
        return _parked(row)

    async def _move(
        self, parked_id: int, to: ParkedStatus, allowed: tuple[str, ...]
    ) -> ParkedEvent:
        current = await self.get(parked_id)
        row = await self._store.fetchrow(
            "UPDATE ledgerhub.parked_events SET status = $2 WHERE id = $1 "
            "AND status = ANY($3::text[]) RETURNING *",
            parked_id,
            to,
            list(allowed),
        )
        if row is None:
            raise InvalidInput(f"parked event {parked_id} is {current.status}: cannot {to} it")
        return _parked(row)

    async def request_retry(self, parked_id: int) -> ParkedEvent:
        """Ask the projection's worker to apply the event again."""
        parked = await self._move(parked_id, "retry", ("parked", "retry", "skipped"))
        await self._store.wake(parked.projection)
        return parked

    async def skip(self, parked_id: int) -> ParkedEvent:
        """Give up on the event: the projection will not apply it."""
        return await self._move(parked_id, "skipped", ("parked", "retry", "skipped"))

    async def due(self, projection: str, generation: int, partition: int = 0) -> list[ParkedEvent]:
        """Events an operator asked to retry for ``partition`` of ``projection``'s
        ``generation``."""
        rows = await self._store.fetch(
            f"{_PARKED} WHERE projection = $1 AND generation = $2 AND partition = $3 "
            "AND status = 'retry' ORDER BY id",
            projection,
            generation,
            partition,
        )
        return [_parked(row) for row in rows]
