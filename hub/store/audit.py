"""Reading the audit trail back from the log (``hub.domain.audit``): newest first."""

from __future__ import annotations

from collections.abc import Sequence

from hub.domain.events import RecordedEvent
from hub.store.events import _SELECT, _recorded
from hub.store.projections import ProjectionStore


class AuditLog:
    """The audit events of the log (and whatever else ``kinds`` names)."""

    def __init__(self, store: ProjectionStore) -> None:
        self._store = store

    async def latest(
        self,
        kinds: Sequence[tuple[str, str]],
        *,
        limit: int = 50,
        before: int | None = None,
        tenant: str | None = None,
    ) -> list[RecordedEvent]:
        """Up to ``limit`` events whose (source, type) is one of ``kinds``, newest first,
        below position ``before`` if given, of ``tenant`` if given (a backward walk of the
        position index: cheap while the trail's events are among the recent ones)."""
        sources = [source for source, _ in kinds]
        types = [kind for _, kind in kinds]
        rows = await self._store.fetch(
            f"{_SELECT} WHERE (source, type) IN "
            "(SELECT s, t FROM unnest($1::text[], $2::text[]) AS k(s, t)) "
            "AND ($3::bigint IS NULL OR position < $3) AND ($4::text IS NULL OR tenant = $4) "
            "ORDER BY position DESC LIMIT $5",
            sources,
            types,
            before,
            tenant,
            limit,
        )
        return [_recorded(row) for row in rows]
