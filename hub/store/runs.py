"""The runs log (DESIGN "Runs"): one row per pull, import or sync run.

``records`` counts what the run added (events appended by a pull or an import, duplicates not
counted; documents written by a sync), ``errors`` the calls that failed (retried or not),
``api_calls`` every call made to the spoke or target, ``error`` why a failed run stopped.

A run a person started is written when it starts (``start``, status ``running``) and finished
with ``finish``; a scheduled run that found nothing to do writes no row, so scheduled runs are
written once they are over (``record``), and only when they added something or failed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import asyncpg
from pydantic import BaseModel, ConfigDict

from hub.store.events import _DB_ERRORS, EventStore, _translate

RunKind = Literal["pull", "import", "sync"]
RunStatus = Literal["running", "succeeded", "failed"]


class Run(BaseModel):
    """One row of the runs log."""

    model_config = ConfigDict(frozen=True)

    id: int
    kind: RunKind
    tenant: str
    connection: str | None
    started_at: datetime
    ended_at: datetime | None
    status: RunStatus
    records: int
    errors: int
    api_calls: int
    error: str | None


class RunTally(BaseModel):
    """What a run did, as it ends."""

    status: RunStatus
    records: int = 0
    errors: int = 0
    api_calls: int = 0
    error: str | None = None


_COLUMNS = (
    "id, kind, tenant, connection, started_at, ended_at, status, records, errors, api_calls, error"
)


class RunLog:
    """The ``ledgerhub.runs`` table on a pool (the hub's role)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @classmethod
    def over(cls, events: EventStore) -> RunLog:
        """The runs log on ``events``' pool (which stays ``events``' to close)."""
        return cls(events._pool)

    async def start(self, kind: RunKind, tenant: str, connection: str | None) -> int:
        """A new ``running`` row; its id."""
        value: int = await self._fetchval(
            "INSERT INTO ledgerhub.runs (kind, tenant, connection) VALUES ($1, $2, $3) "
            "RETURNING id",
            kind,
            tenant,
            connection,
        )
        return value

    async def finish(self, run_id: int, tally: RunTally) -> None:
        """End run ``run_id`` with ``tally`` (its ``ended_at`` is now)."""
        await self._fetchval(
            "UPDATE ledgerhub.runs SET ended_at = clock_timestamp(), status = $2, records = $3, "
            "errors = $4, api_calls = $5, error = $6 WHERE id = $1 RETURNING id",
            run_id,
            tally.status,
            tally.records,
            tally.errors,
            tally.api_calls,
            tally.error,
        )

    async def abandon(self, kind: RunKind, connection: str, keep: int | None) -> int:
        """Mark ``connection``'s ``running`` runs of ``kind`` (but ``keep``) failed: call it
        holding the connection's lease, when no other run of it can be alive (their process
        died). How many there were."""
        value: int = await self._fetchval(
            "WITH ended AS (UPDATE ledgerhub.runs SET status = 'failed', "
            "ended_at = clock_timestamp(), error = 'the process running it ended before it did' "
            "WHERE kind = $1 AND connection = $2 AND status = 'running' "
            "AND id IS DISTINCT FROM $3 RETURNING 1) SELECT count(*) FROM ended",
            kind,
            connection,
            keep,
        )
        return value

    async def record(
        self,
        kind: RunKind,
        tenant: str,
        connection: str | None,
        started_at: datetime,
        tally: RunTally,
    ) -> int:
        """A finished run written in one go (a scheduled run that did something); its id."""
        value: int = await self._fetchval(
            "INSERT INTO ledgerhub.runs (kind, tenant, connection, started_at, ended_at, status, "
            "records, errors, api_calls, error) "
            "VALUES ($1, $2, $3, $4, clock_timestamp(), $5, $6, $7, $8, $9) RETURNING id",
            kind,
            tenant,
            connection,
            started_at,
            tally.status,
            tally.records,
            tally.errors,
            tally.api_calls,
            tally.error,
        )
        return value

    async def recent(
        self,
        *,
        kind: RunKind | None = None,
        connection: str | None = None,
        limit: int = 50,
        before: int | None = None,
        tenant: str | None = None,
    ) -> list[Run]:
        """The newest runs first, optionally of one kind, connection or tenant, with
        ``id < before``."""
        rows = await self._fetch(
            f"SELECT {_COLUMNS} FROM ledgerhub.runs WHERE ($1::text IS NULL OR kind = $1) "
            "AND ($2::text IS NULL OR connection = $2) AND ($3::bigint IS NULL OR id < $3) "
            "AND ($5::text IS NULL OR tenant = $5) ORDER BY id DESC LIMIT $4",
            kind,
            connection,
            before,
            limit,
            tenant,
        )
        return [Run.model_validate(dict(row)) for row in rows]

    async def get(self, run_id: int) -> Run | None:
        """Run ``run_id``, or None."""
        rows = await self._fetch(f"SELECT {_COLUMNS} FROM ledgerhub.runs WHERE id = $1", run_id)
        return Run.model_validate(dict(rows[0])) if rows else None

    async def _fetchval(self, sql: str, *args: object) -> Any:
        try:
            return await self._pool.fetchval(sql, *args)
        except _DB_ERRORS as exc:
            raise _translate(exc) from exc

    async def _fetch(self, sql: str, *args: object) -> list[asyncpg.Record]:
        try:
            return await self._pool.fetch(sql, *args)
        except _DB_ERRORS as exc:
            raise _translate(exc) from exc
