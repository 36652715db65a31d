"""Pull state: each connection's cursor per stream, written with the events it covers.

A pull holds its connection's lease for as long as it runs: a session advisory lock
(``pg_try_advisory_lock(PULL_LOCK, hashtext(connection))``) on a connection of its own
(``PullStore.lease``), so one process pulls a connection at a time and a killed process's lease
goes with its database session. Every page is committed on that same session
(``PullSession.commit_page``): the events are appended exactly as ``hub.store.events`` appends
a request (the log's advisory lock, the head read after it, the same duplicate checks, hash
chain and ``COPY``, and the same ``NOTIFY``) and the stream's cursor is upserted in the same
transaction. So a cursor never runs ahead of the events it covers, and a pull that dies anywhere
resumes from its last committed page; a re-fetched page's events are duplicates. Committing on
the lease's own session also fences it: once the session (and so the lease) is gone, nothing
more commits.

``pull_schedule`` records when each connection was last pulled, so workers sharing a schedule
pull each connection once per period (``last_pulled``, read under the lease).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import asyncpg
import orjson

from hub import telemetry
from hub.domain.events import AppendResult, NewEvent
from hub.errors import LeaseLost, LedgerhubError
from hub.store.events import (
    _DB_ERRORS,
    _bodies,
    _locked_state,
    _normalised,
    _Payloads,
    _serialise,
    _stage,
    _translate,
    _write_rows,
)
from hub.store.pool import Connection

PULL_LOCK = 0x4C48_5055  # "LHPU": with hashtext(connection), one pull per connection


@dataclass(frozen=True)
class Cursor:
    """A stream's stored state."""

    connection: str
    stream: str
    tenant: str
    state: dict[str, Any]
    updated_at: datetime


@dataclass(frozen=True)
class LastPull:
    """When a connection was last pulled, and how that ended."""

    connection: str
    tenant: str
    pulled_at: datetime
    status: Literal["succeeded", "failed"]


class PullSession:
    """A held pull lease: commit pages on it (see the module docstring)."""

    def __init__(self, conn: Connection, connection: str, tenant: str) -> None:
        self._conn = conn
        self.connection = connection
        self.tenant = tenant

    async def commit_page(
        self, stream: str, events: Sequence[NewEvent], cursor: dict[str, Any]
    ) -> list[AppendResult]:
        """Append ``events`` (all or nothing; duplicates answer ``duplicate``) and store
        ``cursor`` as ``stream``'s state, in one transaction; the results in order.

        ``LeaseLost`` if the lease's session is gone (nothing was committed, or the commit's
        fate is unknown: the next pull re-fetches and the duplicates tell).
        """
        events = telemetry.traced(events)
        try:
            async with self._conn.transaction():
                results = await _append(self._conn, events) if events else []
                await self._conn.execute(
                    "INSERT INTO ledgerhub.pull_cursors (connection, stream, tenant, state) "
                    "VALUES ($1, $2, $3, $4::jsonb) ON CONFLICT (connection, stream) DO UPDATE "
                    "SET state = excluded.state, tenant = excluded.tenant, "
                    "updated_at = clock_timestamp()",
                    self.connection,
                    stream,
                    self.tenant,
                    orjson.dumps(cursor).decode(),
                )
        except (asyncpg.InterfaceError, asyncpg.InternalClientError, OSError) as exc:
            raise LeaseLost(f"the pull lease of {self.connection} was lost: {exc}") from exc
        except _DB_ERRORS as exc:
            raise _translate(exc) from exc
        telemetry.events.results(
            (event.tenant, event.source, result.status)
            for event, result in zip(events, results, strict=True)
        )
        return results

    async def mark_pulled(self, status: Literal["succeeded", "failed"]) -> None:
        """Record that the connection was pulled just now (for the schedule)."""
        try:
            await self._conn.execute(
                "INSERT INTO ledgerhub.pull_schedule (connection, tenant, pulled_at, status) "
                "VALUES ($1, $2, clock_timestamp(), $3) ON CONFLICT (connection) DO UPDATE "
                "SET tenant = excluded.tenant, pulled_at = excluded.pulled_at, "
                "status = excluded.status",
                self.connection,
                self.tenant,
                status,
            )
        except _DB_ERRORS as exc:
            raise _translate(exc) from exc


async def _append(conn: Connection, events: Sequence[NewEvent]) -> list[AppendResult]:
    """``events`` appended as one request inside the caller's transaction, the way
    ``hub.store.events.EventStore`` commits a group (its helpers, its lock, its checks)."""
    payloads = _serialise(events)
    if not isinstance(payloads, _Payloads):
        raise payloads
    normalised = await _normalised(conn, [payloads])
    bodies = _bodies(events, normalised)
    state = await _locked_state(conn, events)
    outcome = _stage(events, normalised, bodies, state)
    if isinstance(outcome, LedgerhubError):
        raise outcome
    await _write_rows(conn, state)
    return outcome


class PullStore:
    """Cursors, leases and the schedule of pulls, on a pool (the hub's role)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @contextlib.asynccontextmanager
    async def lease(self, connection: str, tenant: str) -> AsyncIterator[PullSession | None]:
        """Hold ``connection``'s pull lease for the block: a ``PullSession``, or None when
        another process is pulling it. The lease ends with the block (or the session)."""
        try:
            conn = await self._pool.acquire()
        except _DB_ERRORS as exc:
            raise _translate(exc) from exc
        try:
            try:
                held = await conn.fetchval(
                    "SELECT pg_try_advisory_lock($1, hashtext($2))", PULL_LOCK, connection
                )
            except _DB_ERRORS as exc:
                raise _translate(exc) from exc
            if not held:
                yield None
                return
            try:
                yield PullSession(conn, connection, tenant)
            finally:
                with contextlib.suppress(*_DB_ERRORS):
                    await conn.execute(
                        "SELECT pg_advisory_unlock($1, hashtext($2))", PULL_LOCK, connection
                    )
        finally:
            with contextlib.suppress(*_DB_ERRORS):
                await self._pool.release(conn)

    async def cursors(self, connection: str | None = None) -> list[Cursor]:
        """Every stored cursor (of one connection), by connection and stream."""
        rows = await self._fetch(
            "SELECT connection, stream, tenant, state::text AS state, updated_at "
            "FROM ledgerhub.pull_cursors WHERE $1::text IS NULL OR connection = $1 "
            "ORDER BY connection, stream",
            connection,
        )
        return [
            Cursor(
                connection=r["connection"],
                stream=r["stream"],
                tenant=r["tenant"],
                state=orjson.loads(r["state"]),
                updated_at=r["updated_at"],
            )
            for r in rows
        ]

    async def last_pulled(self, connection: str) -> LastPull | None:
        """When ``connection`` was last pulled (None: never)."""
        rows = await self._fetch(
            "SELECT connection, tenant, pulled_at, status FROM ledgerhub.pull_schedule "
            "WHERE connection = $1",
            connection,
        )
        return (
            None
            if not rows
            else LastPull(
                connection=rows[0]["connection"],
                tenant=rows[0]["tenant"],
                pulled_at=rows[0]["pulled_at"],
                status=rows[0]["status"],
            )
        )

    async def now(self) -> datetime:
        """The database's clock (the schedule is judged by it, as every worker shares it)."""
        rows = await self._fetch("SELECT clock_timestamp() AS now")
        now: datetime = rows[0]["now"]
        return now

    async def _fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        try:
            return await self._pool.fetch(sql, *args)
        except _DB_ERRORS as exc:
            raise _translate(exc) from exc
