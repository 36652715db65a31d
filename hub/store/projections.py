"""The projection runtime's persistence: checkpoints, generations, fenced batch transactions.

Exactly once, and fencing
-------------------------
A batch's read-model writes and its new checkpoint commit in one transaction (``batch``). Just
before that commit the transaction re-reads the projection's lease row ``FOR SHARE`` and checks
that it still carries this worker's token and has not expired (by the clock, not the
transaction's start). A worker that was paused past its lease's expiry therefore cannot commit
after another has taken over: taking over increments the token, and a takeover that races the
check waits for the row lock until the old transaction has committed or rolled back, and then
reads the checkpoint that transaction left. Every transaction also sets
``idle_in_transaction_session_timeout`` to the lease's time to live, so a frozen worker cannot
hold locks or a snapshot for longer than that.

Read models
-----------
Each generation of a projection has its own tables in schema ``ledgerhub_projections``, created
here from the projection's declared column lists; queries read views that point at the active
generation, and a rebuild swaps the views in the transaction that makes the new generation
active.
"""

from __future__ import annotations

import contextlib
import traceback
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from typing import Any

import asyncpg
import orjson

from hub.domain.events import RecordedEvent
from hub.domain.projections import Generation, Job, Lease, ParkedEvent, ProjectionStatus
from hub.errors import ConfigError, LeaseLost, NotFound
from hub.store.events import (
    _DB_ERRORS,
    _SELECT,
    NOTIFY_CHANNEL,
    EventStore,
    _recorded,
    _translate,
)
from hub.store.pool import Connection

READ_MODEL_SCHEMA = "ledgerhub_projections"
"""Where projections' read-model tables, and the views queries use, live."""

CONTROL_CHANNEL = "ledgerhub_control"
"""Notified with a projection's name when an operator queues work for it (job, parked retry)."""

_GENERATION = (
    "SELECT projection, generation, version, position, tables::text AS tables, state "
    "FROM ledgerhub.projection_generations"
)
_JOB = "SELECT * FROM ledgerhub.projection_jobs"
_PARKED = "SELECT * FROM ledgerhub.parked_events"


def view_name(projection: str, table: str) -> str:
    """The quoted view that queries read for ``projection``'s ``table``."""
    return f'{READ_MODEL_SCHEMA}."{projection}__{table}"'


def generation_tables(projection: str, tables: Iterable[str], generation: int) -> dict[str, str]:
    """Logical table -> quoted physical table of ``projection``'s ``generation``."""
    return {
        table: f'{READ_MODEL_SCHEMA}."{projection}__{table}__g{generation}"' for table in tables
    }


def _generation(row: asyncpg.Record) -> Generation:
    return Generation(**{**dict(row), "tables": orjson.loads(row["tables"])})


def _job(row: asyncpg.Record) -> Job:
    return Job(**dict(row))


def _parked(row: asyncpg.Record) -> ParkedEvent:
    return ParkedEvent(**dict(row))


class Batch:
    """One fenced transaction of a projection's runner; see the module docstring."""

    def __init__(self, conn: Connection, lease: Lease) -> None:
        self.conn = conn
        self.lease = lease

    async def fence(self) -> None:
        """Raise ``LeaseLost`` unless this worker still holds the lease (locks the row)."""
        held = await self.conn.fetchval(
            "SELECT true FROM ledgerhub.projection_leases WHERE projection = $1 AND holder = $2 "
            "AND token = $3 AND expires_at > clock_timestamp() FOR SHARE",
            self.lease.projection,
            self.lease.holder,
            self.lease.token,
        )
        if not held:
            raise LeaseLost(f"lost the lease of projection {self.lease.projection!r}")

    async def advance(self, generation: int, position: int) -> None:
        """Move ``generation``'s checkpoint to ``position``."""
        await self.conn.execute(
            "UPDATE ledgerhub.projection_generations SET position = $3, updated_at = now() "
            "WHERE projection = $1 AND generation = $2",
            self.lease.projection,
            generation,
            position,
        )

    async def create_generation(
        self, version: int, columns: Mapping[str, str], generation: int, *, active: bool
    ) -> Generation:
        """Create ``generation``'s empty tables (logical name -> column list) and its checkpoint
        at 0, for this lease's projection at ``version`` (and point the views at it if active)."""
        name = self.lease.projection
        tables = generation_tables(name, columns, generation)
        for logical, physical in tables.items():
            await self.conn.execute(f"DROP TABLE IF EXISTS {physical}")
            try:
                await self.conn.execute(f"CREATE TABLE {physical} ({columns[logical]})")
            except asyncpg.SyntaxOrAccessError as exc:
                raise ConfigError(
                    f"projection {name!r}: table {logical!r} cannot be created: {exc}"
                ) from exc
        row = await self.conn.fetchrow(
            "INSERT INTO ledgerhub.projection_generations "
            "(projection, generation, version, tables, state) VALUES ($1, $2, $3, $4::jsonb, $5) "
            "ON CONFLICT (projection, generation) DO UPDATE SET version = excluded.version, "
            "position = 0, tables = excluded.tables, state = excluded.state, updated_at = now() "
            "RETURNING projection, generation, version, position, tables::text AS tables, state",
            name,
            generation,
            version,
            orjson.dumps(tables).decode(),
            "active" if active else "building",
        )
        assert row is not None
        if active:
            await self._point_views(name, tables)
            await self.conn.execute(
                "UPDATE ledgerhub.projections SET active_generation = $2 WHERE name = $1",
                name,
                generation,
            )
        return _generation(row)

    async def swap(self, old: Generation, new: Generation) -> None:
        """Make ``new`` the active generation: views, states, old tables dropped."""
        await self._point_views(new.projection, new.tables)
        await self.conn.execute(
            "UPDATE ledgerhub.projection_generations SET state = CASE generation "
            "WHEN $2 THEN 'active' ELSE 'retired' END, updated_at = now() "
            "WHERE projection = $1 AND generation IN ($2, $3)",
            new.projection,
            new.generation,
            old.generation,
        )
        await self.conn.execute(
            "UPDATE ledgerhub.projections SET active_generation = $2 WHERE name = $1",
            new.projection,
            new.generation,
        )
        await self.conn.execute(
            "UPDATE ledgerhub.parked_events SET status = 'superseded', resolved_at = now() "
            "WHERE projection = $1 AND generation = $2 AND status IN ('parked', 'retry')",
            old.projection,
            old.generation,
        )
        for physical in old.tables.values():
            if physical not in new.tables.values():
                await self.conn.execute(f"DROP TABLE IF EXISTS {physical}")

    async def _point_views(self, projection: str, tables: dict[str, str]) -> None:
        for logical, physical in tables.items():
            view = view_name(projection, logical)
            # Dropped and created (not replaced) because a new version may change the columns.
            await self.conn.execute(f"DROP VIEW IF EXISTS {view}")
            await self.conn.execute(f"CREATE VIEW {view} AS SELECT * FROM {physical}")

    async def park(
        self, generation: int, event: RecordedEvent, error: BaseException, attempts: int
    ) -> None:
        """Record (or update) ``event`` as parked for this projection's ``generation``."""
        await self.conn.execute(
            "INSERT INTO ledgerhub.parked_events AS p (projection, generation, position, "
            "event_type, error_type, message, traceback, attempts, status) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'parked') "
            "ON CONFLICT (projection, generation, position) DO UPDATE SET "
            "error_type = excluded.error_type, message = excluded.message, "
            "traceback = excluded.traceback, attempts = p.attempts + excluded.attempts, "
            "last_seen = now(), resolved_at = NULL, "
            "status = CASE p.status WHEN 'skipped' THEN 'skipped' ELSE 'parked' END",
            self.lease.projection,
            generation,
            event.position,
            event.type,
            f"{type(error).__module__}.{type(error).__qualname__}",
            str(error) or type(error).__name__,
            "".join(traceback.format_exception(error)),
            attempts,
        )

    async def resolve_parked(self, parked_id: int) -> None:
        """Mark a parked event as applied."""
        await self.conn.execute(
            "UPDATE ledgerhub.parked_events SET status = 'resolved', resolved_at = now(), "
            "last_seen = now() WHERE id = $1",
            parked_id,
        )

    async def start_job(self, job: Job, *, total: int, generation: int | None) -> None:
        """Mark ``job`` as running on this worker."""
        await self.conn.execute(
            "UPDATE ledgerhub.projection_jobs SET state = 'running', holder = $2, total = $3, "
            "generation = coalesce($4, generation), started_at = coalesce(started_at, now()) "
            "WHERE id = $1",
            job.id,
            self.lease.holder,
            total,
            generation,
        )

    async def job_progress(self, job: Job, *, cursor: int, done: int, total: int) -> None:
        """Record how far ``job`` got (and who runs it now), in the transaction of the work it
        describes."""
        await self.conn.execute(
            "UPDATE ledgerhub.projection_jobs SET cursor = $2, done = $3, total = $4, "
            "holder = $5 WHERE id = $1",
            job.id,
            cursor,
            done,
            total,
            self.lease.holder,
        )

    async def finish_job(self, job: Job, error: str | None = None) -> None:
        """Mark ``job`` done, or failed with ``error``."""
        await self.conn.execute(
            "UPDATE ledgerhub.projection_jobs SET state = $2, error = $3, finished_at = now() "
            "WHERE id = $1",
            job.id,
            "failed" if error else "done",
            error,
        )


class ProjectionStore:
    """The runtime's tables, and reading the log the way projections need it.

    Use ``await ProjectionStore.open(dsn)`` and ``await store.close()``, or ``async with``.
    """

    def __init__(
        self, pool: asyncpg.Pool, *, owns_pool: bool = False, lease_ttl: float = 10
    ) -> None:
        self.pool = pool
        self._owns_pool = owns_pool
        self._idle_timeout_ms = max(1000, int(lease_ttl * 1000))

    @classmethod
    async def open(
        cls, dsn: str, *, max_connections: int = 10, lease_ttl: float = 10
    ) -> ProjectionStore:
        """Connect to the database at ``dsn`` as the hub's role; ``SchemaError`` if it needs
        ``ledgerhub migrate`` (the same check, and the same pool, as ``EventStore.open``)."""
        events = await EventStore.open(dsn, max_connections=max_connections)
        return cls(events._pool, owns_pool=True, lease_ttl=lease_ttl)

    @classmethod
    def over(cls, events: EventStore, *, lease_ttl: float = 10) -> ProjectionStore:
        """A store sharing ``events``' pool (closing it leaves the pool to ``events``)."""
        return cls(events._pool, lease_ttl=lease_ttl)

    async def __aenter__(self) -> ProjectionStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._owns_pool:
            await self.pool.close()

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        """Run a query, translating database errors (for this package's table modules)."""
        try:
            return await self.pool.fetch(sql, *args)
        except _DB_ERRORS as exc:
            raise _translate(exc) from exc

    async def fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None

    # ------------------------------------------------------------------ batches

    @contextlib.asynccontextmanager
    async def batch(self, lease: Lease) -> AsyncIterator[Batch]:
        """A transaction for one batch; commits only if ``lease`` still holds (``LeaseLost``)."""
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                await conn.execute(
                    f"SET LOCAL idle_in_transaction_session_timeout = {self._idle_timeout_ms}"
                )
                batch = Batch(conn, lease)
                yield batch
                await batch.fence()
        except _DB_ERRORS as exc:
            raise _translate(exc) from exc

    # ------------------------------------------------------------------ reading the log

    async def head(self) -> int:
        """The position of the last committed event."""
        rows = await self.fetch("SELECT coalesce(max(position), 0) AS head FROM ledgerhub.events")
        return int(rows[0]["head"])

    async def read(
        self, after: int, upto: int, *, types: Sequence[str] | None, limit: int
    ) -> tuple[list[RecordedEvent], int]:
        """Events in ``(after, upto]`` of ``types`` (None = all), and the position they cover.

        The covered position is ``upto`` when fewer than ``limit`` events came back (so a
        checkpoint may move past events of other types), else the last event's position.
        """
        rows = await self.fetch(
            f"{_SELECT} WHERE position > $1 AND position <= $2 "
            "AND ($3::text[] IS NULL OR type = ANY($3::text[])) ORDER BY position LIMIT $4",
            after,
            upto,
            None if types is None else list(types),
            limit,
        )
        events = [_recorded(row) for row in rows]
        covered = events[-1].position if len(events) >= limit else upto
        return events, covered

    async def read_one(self, position: int) -> RecordedEvent:
        """The event at ``position``."""
        rows = await self.fetch(f"{_SELECT} WHERE position = $1", position)
        if not rows:
            raise NotFound(f"no event at position {position}")
        return _recorded(rows[0])

    # ------------------------------------------------------------------ projections

    async def register(self, name: str, *, side_effects: bool) -> None:
        """Make projection ``name`` known (idempotent; its first runner creates its tables)."""
        await self.fetch(
            "INSERT INTO ledgerhub.projections (name, side_effects) VALUES ($1, $2) "
            "ON CONFLICT (name) DO UPDATE SET side_effects = excluded.side_effects",
            name,
            side_effects,
        )

    async def names(self) -> list[str]:
        """Every registered projection's name."""
        rows = await self.fetch("SELECT name FROM ledgerhub.projections ORDER BY name")
        return [row["name"] for row in rows]

    async def require(self, name: str) -> None:
        """Raise ``NotFound`` unless ``name`` is a registered projection."""
        if name not in await self.names():
            raise NotFound(f"no projection named {name!r} (has a worker run it yet?)")

    async def generations(self, name: str) -> tuple[Generation | None, Generation | None]:
        """``name``'s active generation and the one being built, if any."""
        rows = await self.fetch(
            f"{_GENERATION} WHERE projection = $1 AND state IN ('active', 'building') "
            "ORDER BY generation",
            name,
        )
        found = {row["state"]: _generation(row) for row in rows}
        return found.get("active"), found.get("building")

    async def record_error(self, name: str, error: str | None) -> None:
        """Note (or clear, with None) the error a projection's runner is backing off from."""
        await self.fetch(
            "UPDATE ledgerhub.projections SET last_error = $2, "
            "last_error_at = CASE WHEN $2::text IS NULL THEN NULL ELSE now() END WHERE name = $1",
            name,
            error,
        )

    async def status(self) -> list[ProjectionStatus]:
        """Every projection's position, lag, parked count, lease holder and state."""
        rows = await self.fetch(
            """
            WITH h AS (SELECT coalesce(max(position), 0) AS head FROM ledgerhub.events)
            SELECT p.name, p.side_effects, p.last_error, p.active_generation AS generation,
                   g.version, coalesce(g.position, 0) AS position, h.head,
                   extract(epoch FROM clock_timestamp() - n.recorded_at)::float8 AS lag_seconds,
                   (SELECT count(*) FROM ledgerhub.parked_events AS x
                     WHERE x.projection = p.name AND x.generation = p.active_generation
                       AND x.status IN ('parked', 'retry')) AS parked,
                   l.holder, l.expires_at, (l.expires_at > clock_timestamp()) AS leased,
                   (SELECT min(j.id) FROM ledgerhub.projection_jobs AS j
                     WHERE j.projection = p.name AND j.kind = 'rebuild'
                       AND j.state IN ('queued', 'running')) AS rebuild_job
            FROM ledgerhub.projections AS p CROSS JOIN h
            LEFT JOIN ledgerhub.projection_generations AS g
                   ON g.projection = p.name AND g.generation = p.active_generation
            LEFT JOIN ledgerhub.events AS n ON n.position = coalesce(g.position, 0) + 1
            LEFT JOIN ledgerhub.projection_leases AS l ON l.projection = p.name
            ORDER BY p.name
            """
        )
        return [_status(row) for row in rows]

    # ------------------------------------------------------------------ notifications

    @contextlib.asynccontextmanager
    async def listen(self, on_notify: Callable[[str, str], None]) -> AsyncIterator[Connection]:
        """Call ``on_notify(channel, payload)`` for new events and operator requests.

        Yields the listening connection; when it is closed, leave and enter again.
        """

        def callback(_conn: Connection, _pid: int, channel: str, payload: object) -> None:
            on_notify(channel, str(payload))

        try:
            conn = await self.pool.acquire()
        except _DB_ERRORS as exc:
            raise _translate(exc) from exc
        try:
            try:
                for channel in (NOTIFY_CHANNEL, CONTROL_CHANNEL):
                    await conn.add_listener(channel, callback)
            except _DB_ERRORS as exc:
                raise _translate(exc) from exc
            yield conn
        finally:
            with contextlib.suppress(*_DB_ERRORS):
                for channel in (NOTIFY_CHANNEL, CONTROL_CHANNEL):
                    await conn.remove_listener(channel, callback)
            with contextlib.suppress(*_DB_ERRORS):
                await self.pool.release(conn)

    async def wake(self, name: str) -> None:
        """Tell the worker running ``name`` that an operator queued work for it."""
        await self.fetch("SELECT pg_notify($1, $2)", CONTROL_CHANNEL, name)


def _status(row: asyncpg.Record) -> ProjectionStatus:
    lag = max(0, row["head"] - row["position"])
    if not row["leased"]:
        state = "stopped"
    elif row["rebuild_job"] is not None:
        state = "rebuilding"
    elif row["last_error"] is not None:
        state = "failing"
    else:
        state = "running"
    return ProjectionStatus(
        name=row["name"],
        state=state,
        version=row["version"],
        generation=row["generation"],
        position=row["position"],
        head=row["head"],
        lag_events=lag,
        lag_seconds=max(0.0, row["lag_seconds"] or 0.0) if lag else 0.0,
        parked=row["parked"],
        holder=row["holder"] if row["leased"] else None,
        lease_expires_at=row["expires_at"],
        side_effects=row["side_effects"],
        last_error=row["last_error"],
        rebuild_job=row["rebuild_job"],
    )
