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

Partitions
----------
A projection may run as K partitions (``Projection.partitions``, or ``LEDGERHUB_PARTITIONS``
in ``hub.runtime.settings``). Partition ``p`` of K applies the events whose tenant falls in the
p-th of K equal ranges of ``tenant_hash`` (``ledgerhub.tenant_hash`` in SQL, the first 32 bits
of the MD5 of the tenant's name: the same in every process, Python and PostgreSQL version), in
position order, so each tenant's events are applied in order by one partition at a time. Each
partition has its own lease (``projection_leases`` row), its own checkpoint (a
``projection_generations`` row per partition, each carrying the generation's K) and its own
parked events; their batches commit independently, each fenced by its own lease. The read-model
tables are the generation's, shared by its partitions: a partitioned projection must keep each
tenant's rows apart (or tolerate concurrent writers: a deadlock between two partitions' batches
is rolled back and retried like any database error). K = 1 is partition 0 of 1: what every
projection was before, with the same tables, checkpoint row and lease row.

Reading a partition (``read``) walks the log by position from the checkpoint (the primary key)
and keeps the events of its tenants (``ledgerhub.tenant_partition(tenant, K) = p``, one MD5 of
a short name per row looked at): each partition reads the log once over its life, and a batch
reads as far as it takes to find ``limit`` of its events, so K partitions look at K times the
rows one would, and send each event to one of them. Measured (``EXPLAIN ANALYZE``, 400,000
events of 40 tenants, PostgreSQL 15, a loaded 2-core machine): a batch of 1,000 events of
partition 1 of 4 looks at 4,000 rows in 14 ms on the server, against 2.3 ms for 1,000 events
unfiltered; the filter costs about 2 µs a row. Rejected: an expression index on ``(position,
ledgerhub.tenant_hash(tenant))`` read 1,000 of 4,000 in 2.5-2.9 ms, but made every append in
every deployment 5-11 µs an event dearer (0.63-0.91 s against 0.25-0.37 s per 50,000 rows),
K = 1 included; a cheaper built-in hash (``hashtextextended``, 0.05 µs a row) is not promised
to be the same across PostgreSQL versions and platforms. K = 1 reads exactly as before.

K belongs to a generation: changing it builds a new generation (a rebuild, as for a new
``version``) whose K partitions each build their part; it is swapped in by the transaction that
finds every partition of it caught up (``Batch.caught_up``, ``Batch.swap``).

Analyst views
-------------
A projection may also declare views for analysts (``View``), in schema ``ledgerhub_views``. They
are applied to the generation that becomes active, in the same transaction (the first
generation's creation, or the swap of a rebuilt one), so analysts read the old generation
through the old views until the new one is complete. The hub's role owns them and grants
``ledgerhub_analyst`` SELECT (views) and EXECUTE (their functions), so that role reads them and
nothing else. ``ledgerhub.projection_views`` records what each projection's views consist of, and
a checksum of their definitions: applying unchanged definitions again does nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import traceback
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson

from hub.domain.events import RecordedEvent
from hub.domain.projections import (
    Generation,
    Job,
    Lease,
    ParkedEvent,
    PartitionStatus,
    ProjectionState,
    ProjectionStatus,
)
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

_GENERATION_COLUMNS = (
    "projection, generation, version, position, tables::text AS tables, state, partition, "
    "partitions"
)
_GENERATION = f"SELECT {_GENERATION_COLUMNS} FROM ledgerhub.projection_generations"
_JOB = "SELECT * FROM ledgerhub.projection_jobs"
_PARKED = "SELECT * FROM ledgerhub.parked_events"
_TYPED_WINDOW = 4
"""A read of only some types looks at this many times ``limit`` positions (``read``)."""


MAX_PARTITIONS = 256
"""The most partitions a projection may run as (migration 0018's CHECK)."""


def tenant_hash(tenant: str) -> int:
    """The tenant's hash: the first 32 bits of the MD5 of its UTF-8 name, as
    ``ledgerhub.tenant_hash`` computes it (stable across processes and versions)."""
    return int.from_bytes(hashlib.md5(tenant.encode()).digest()[:4], "big")  # noqa: S324


def tenant_partition(tenant: str, partitions: int) -> int:
    """The partition of ``partitions`` that ``tenant``'s events belong to: the p-th of K equal
    ranges of the hash, as ``ledgerhub.tenant_partition`` computes it."""
    return tenant_hash(tenant) * partitions >> 32


def view_name(projection: str, table: str) -> str:
    """The quoted view that queries read for ``projection``'s ``table``."""
    return f'{READ_MODEL_SCHEMA}."{projection}__{table}"'


def generation_tables(projection: str, tables: Iterable[str], generation: int) -> dict[str, str]:
    """Logical table -> quoted physical table of ``projection``'s ``generation``."""
    return {
        table: f'{READ_MODEL_SCHEMA}."{projection}__{table}__g{generation}"' for table in tables
    }


VIEWS_SCHEMA = "ledgerhub_views"
"""Where projections' analyst views (``View``) live."""

ANALYST_ROLE = "ledgerhub_analyst"
"""The role analysts are granted (migration 0011): it reads the analyst views and nothing else."""

AS_OF = "as_of"
"""The placeholder of a dated view's day."""

_VIEW_NAME = re.compile(r"^[a-z][a-z0-9_]{0,55}$")
_PLACEHOLDER = re.compile(r"\{([a-z][a-z0-9_]*)(?::([a-z][a-z0-9_]*))?\}")
_BODY = "$ledgerhub_view$"
_QUERY = "$ledgerhub_query$"
_INCOMPATIBLE = (asyncpg.SyntaxOrAccessError, asyncpg.DependentObjectsStillExistError)
"""What PostgreSQL answers when a view cannot be replaced in place, or created at all."""


@dataclass(frozen=True)
class View:
    """An analyst view ``ledgerhub_views.<name>`` that a projection declares over its tables.

    ``select`` is one SELECT whose placeholders are filled in for the generation the view is
    applied to:

    - ``{table}``: this projection's ``table`` of that generation (``FROM {payouts} AS p``);
    - ``{as_of}``: the day statuses are evaluated on. The view reads it as NULL (so the SELECT
      says what NULL means, typically today in the row's time zone), and a function
      ``<name>_at(as_of date)`` returns the view's rows for another day;
    - ``{projection:table}``: another projection's table, as that projection's active generation
      shows it. That projection's swap must not depend on this view, so such a view is read
      through a function that names the table only when it runs: it needs ``columns``, and it
      has no rows while that projection has not been built.

    Every column needs a name (``AS status``). A view may read the views declared before it
    (``ledgerhub_views.<other>_at({as_of})``). ``comment`` tells analysts what a row is.
    ``columns`` (only for a view that reads another projection): its columns with their
    types, as in ``RETURNS TABLE (...)``.

    The columns are the analysts' contract: keep their names, types and order from one version
    to the next (add new ones at the end). The swap replaces the views in place; when columns
    changed, it drops them and creates them anew, which fails (and so does the swap) while an
    object outside ledgerhub depends on them.
    """

    select: str
    comment: str = ""
    columns: str | None = None


@dataclass(frozen=True)
class RenderedView:
    """A ``View`` for one generation: the statements that create (or replace) it, in order,
    and the objects it consists of, in the order to drop them."""

    create: tuple[str, ...]
    objects: tuple[str, ...]

    @property
    def checksum(self) -> str:
        return hashlib.sha256("\n;\n".join(self.create).encode()).hexdigest()


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _fill(
    projection: str, where: str, select: str, tables: Mapping[str, str], as_of: str
) -> tuple[str, list[str], bool]:
    """``select`` with its placeholders filled in (``{as_of}`` as ``as_of``); the other
    projections' views it reads; whether it reads ``{as_of}``."""
    foreign: list[str] = []
    dated = False

    def replace(match: re.Match[str]) -> str:
        nonlocal dated
        first, second = match[1], match[2]
        if second is not None:
            if first == projection:
                raise ConfigError(f"{where}: {match[0]}: name its own tables as {{{second}}}")
            found = view_name(first, second)
            if found not in foreign:
                foreign.append(found)
            return found
        if first == AS_OF:
            dated = True
            return as_of
        if first not in tables:
            raise ConfigError(
                f"{where}: {match[0]} is neither {{as_of}} nor one of its tables "
                f"({', '.join(sorted(tables)) or 'none'})"
            )
        return tables[first]

    return _PLACEHOLDER.sub(replace, select), foreign, dated


def render_view(projection: str, name: str, view: View, tables: Mapping[str, str]) -> RenderedView:
    """``view`` over ``tables`` (logical name -> a generation's quoted table); ``ConfigError``
    if it is not a valid declaration."""
    where = f"projection {projection!r}: view {name!r}"
    if not _VIEW_NAME.match(name):
        raise ConfigError(
            f"{where}: a view's name must match [a-z][a-z0-9_]* (56 characters at most)"
        )
    if _BODY in view.select or _QUERY in view.select:
        raise ConfigError(f"{where}: the SELECT may not contain {_BODY} or {_QUERY}")
    qualified = f"{VIEWS_SCHEMA}.{name}"
    plain, foreign, dated = _fill(projection, where, view.select, tables, "NULL::date")
    with_day, _, _ = _fill(projection, where, view.select, tables, "$1")
    comment = "NULL" if not view.comment else _literal(view.comment)
    view_grants = (
        f"COMMENT ON VIEW {qualified} IS {comment}",
        f"GRANT SELECT ON {qualified} TO {ANALYST_ROLE}",
    )
    if not foreign:
        if view.columns is not None:
            raise ConfigError(
                f"{where}: only a view that reads another projection declares columns"
            )
        if not dated:
            return RenderedView(
                (f"CREATE OR REPLACE VIEW {qualified} AS {plain}", *view_grants),
                (f"VIEW {qualified}",),
            )
        function = f"{qualified}_at"
        return RenderedView(
            (
                f"CREATE OR REPLACE VIEW {qualified} AS {plain}",
                f"CREATE OR REPLACE FUNCTION {function}(as_of date) RETURNS SETOF {qualified} "
                "LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp "
                f"AS {_BODY}{with_day}{_BODY}",
                *_function_grants(f"{function}(date)"),
                *view_grants,
            ),
            (f"FUNCTION {function}(date)", f"VIEW {qualified}"),
        )
    if view.columns is None:
        raise ConfigError(
            f"{where}: a view that reads another projection ({', '.join(foreign)}) declares "
            "its columns"
        )
    function, parameter, using = (
        (f"{qualified}_at", "as_of date", " USING as_of")
        if dated
        else (f"{qualified}_rows", "", "")
    )
    signature = f"{function}({'date' if dated else ''})"
    built = " OR ".join(f"to_regclass({_literal(table)}) IS NULL" for table in foreign)
    body = (
        f"BEGIN IF {built} THEN RETURN; END IF; "
        f"RETURN QUERY EXECUTE {_QUERY}{with_day}{_QUERY}{using}; END"
    )
    return RenderedView(
        (
            f"CREATE OR REPLACE FUNCTION {function}({parameter}) RETURNS TABLE ({view.columns}) "
            "LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp "
            f"AS {_BODY}{body}{_BODY}",
            *_function_grants(signature),
            f"CREATE OR REPLACE VIEW {qualified} AS SELECT * FROM "
            f"{function}({'NULL' if dated else ''})",
            *view_grants,
        ),
        (f"VIEW {qualified}", f"FUNCTION {signature}"),
    )


def _function_grants(signature: str) -> tuple[str, str]:
    # A SECURITY DEFINER function reads as the hub's role: nobody but the analysts may call it.
    return (
        f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC",
        f"GRANT EXECUTE ON FUNCTION {signature} TO {ANALYST_ROLE}",
    )


def render_views(
    projection: str, views: Mapping[str, View], tables: Mapping[str, str]
) -> dict[str, RenderedView]:
    """Every one of ``views`` over ``tables``, in declaration order (the order they are
    created in)."""
    return {name: render_view(projection, name, view, tables) for name, view in views.items()}


def _generation(row: asyncpg.Record) -> Generation:
    return Generation(**{**dict(row), "tables": orjson.loads(row["tables"])})


_GENERATIONS = (
    f"SELECT DISTINCT ON (state) {_GENERATION_COLUMNS} FROM ledgerhub.projection_generations "
    "WHERE projection = $1 AND state IN ('active', 'building') "
    "ORDER BY state, partition = $2 DESC, partition"
)
"""A projection's active and building generations: the checkpoint of partition $2 of each, or,
in a generation of fewer partitions, the checkpoint of its partition 0."""


def _pick(rows: Sequence[asyncpg.Record]) -> tuple[Generation | None, Generation | None]:
    found = {row["state"]: _generation(row) for row in rows}
    return found.get("active"), found.get("building")


def _named(lease: Lease) -> str:
    """The projection of ``lease`` (and its partition, if there are several) for messages."""
    return repr(lease.projection) + (f" partition {lease.partition}" if lease.partition else "")


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
            "AND token = $3 AND partition = $4 AND expires_at > clock_timestamp() FOR SHARE",
            self.lease.projection,
            self.lease.holder,
            self.lease.token,
            self.lease.partition,
        )
        if not held:
            raise LeaseLost(f"lost the lease of projection {_named(self.lease)}")

    async def analyze(self, tables: Iterable[str]) -> None:
        """Refresh the planner's statistics of ``tables`` (a generation's read-model tables),
        from a sample of 3,000 rows (``default_statistics_target`` 10 in this transaction):
        enough for the plans of a batch's statements, which the runner wants after its tables
        grew from nothing, and half the time of the default's 30,000 (0.19 s against 0.34 s
        over a 25,000-event accounting rebuild). Autovacuum's next ANALYZE, as the tables
        change on, uses the server's target."""
        await self.conn.execute("SET LOCAL default_statistics_target = 10")
        for table in tables:
            await self.conn.execute(f"ANALYZE {table}")

    async def advance(self, generation: int, position: int) -> None:
        """Move this lease's partition's checkpoint in ``generation`` to ``position``."""
        await self.conn.execute(
            "UPDATE ledgerhub.projection_generations SET position = $3, updated_at = now() "
            "WHERE projection = $1 AND generation = $2 AND partition = $4",
            self.lease.projection,
            generation,
            position,
            self.lease.partition,
        )

    async def lock_projection(self) -> None:
        """Lock the projection's row until this transaction ends: its partitions' runners
        create its first generation one at a time."""
        await self.conn.execute(
            "SELECT 1 FROM ledgerhub.projections WHERE name = $1 FOR UPDATE",
            self.lease.projection,
        )

    async def lock_job(self, job: Job) -> Job:
        """``job`` as it is now, its row locked until this transaction ends.

        Every transaction that changes a job locks its row first, before any checkpoint row,
        so that K partitions' batches and the swap never wait for each other in a cycle."""
        row = await self.conn.fetchrow(f"{_JOB} WHERE id = $1 FOR UPDATE", job.id)
        assert row is not None, f"job {job.id} vanished"
        return _job(row)

    async def generations(self) -> tuple[Generation | None, Generation | None]:
        """``ProjectionStore.generations`` for this lease's partition, in this transaction."""
        rows = await self.conn.fetch(_GENERATIONS, self.lease.projection, self.lease.partition)
        return _pick(rows)

    async def create_generation(
        self,
        version: int,
        columns: Mapping[str, str],
        generation: int,
        *,
        active: bool,
        views: Mapping[str, View] | None = None,
        partitions: int = 1,
    ) -> Generation:
        """Create ``generation``'s empty tables (logical name -> column list) and the
        checkpoints of its ``partitions`` at 0, for this lease's projection at ``version`` (and,
        if active, point the views at it and apply the analyst ``views`` to it); return the
        checkpoint of this lease's partition."""
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
        await self.conn.execute(
            "DELETE FROM ledgerhub.projection_generations WHERE projection = $1 "
            "AND generation = $2 AND partition >= $3",
            name,
            generation,
            partitions,
        )
        rows = await self.conn.fetch(
            "INSERT INTO ledgerhub.projection_generations "
            "(projection, generation, version, tables, state, partition, partitions) "
            "SELECT $1, $2, $3, $4::jsonb, $5, p, $6 FROM generate_series(0, $6 - 1) AS p "
            "ON CONFLICT (projection, generation, partition) DO UPDATE SET "
            "version = excluded.version, position = 0, tables = excluded.tables, "
            "state = excluded.state, partitions = excluded.partitions, updated_at = now() "
            f"RETURNING {_GENERATION_COLUMNS}",
            name,
            generation,
            version,
            orjson.dumps(tables).decode(),
            "active" if active else "building",
            partitions,
        )
        row = next(r for r in rows if r["partition"] == min(self.lease.partition, partitions - 1))
        if active:
            await self._point_views(name, tables)
            await self.apply_views(generation, tables, views or {})
            await self.conn.execute(
                "UPDATE ledgerhub.projections SET active_generation = $2 WHERE name = $1",
                name,
                generation,
            )
        return _generation(row)

    async def swap(
        self, old: Generation, new: Generation, *, views: Mapping[str, View] | None = None
    ) -> None:
        """Make ``new`` the active generation: views (the analyst ``views`` too), states (of
        every partition of both), old tables dropped.

        Locks in the order readers take them (views, then tables), and waits for the other
        partitions' live batches still writing the old tables (an ``ACCESS EXCLUSIVE`` lock on
        them) before it touches their checkpoints, which those batches move last."""
        await self._point_views(new.projection, new.tables)
        await self.apply_views(new.generation, new.tables, views or {})
        for physical in old.tables.values():
            if physical not in new.tables.values():
                await self.conn.execute(f"LOCK TABLE {physical} IN ACCESS EXCLUSIVE MODE")
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

    async def apply_views(
        self, generation: int, tables: Mapping[str, str], views: Mapping[str, View]
    ) -> None:
        """Make ``ledgerhub_views`` hold this projection's analyst ``views`` over ``tables``
        (``generation``'s), in place of its earlier ones; nothing to do if they are applied
        already. ``ConfigError`` if a view cannot be created."""
        name = self.lease.projection
        rendered = render_views(name, views, tables)
        rows = await self.conn.fetch(
            "SELECT name, projection, checksum, objects FROM ledgerhub.projection_views "
            "WHERE projection = $1 OR name = ANY($2::text[]) ORDER BY ordinal",
            name,
            list(rendered),
        )
        for row in rows:
            if row["projection"] != name:
                raise ConfigError(
                    f"projection {name!r}: view {row['name']!r} is projection "
                    f"{row['projection']!r}'s"
                )
        if [(r["name"], r["checksum"]) for r in rows] == [
            (view, r.checksum) for view, r in rendered.items()
        ]:
            return
        try:
            async with self.conn.transaction():  # a savepoint: replace them in place
                await self._create_views(rendered)
                for row in reversed(rows):
                    if row["name"] not in rendered:
                        await self._drop_view(row["objects"])
        except _INCOMPATIBLE:
            # A view's columns (or its kind) changed: drop them all and create them anew.
            try:
                async with self.conn.transaction():
                    for row in reversed(rows):
                        await self._drop_view(row["objects"])
                    await self._create_views(rendered)
            except _INCOMPATIBLE as exc:
                detail = f" ({exc.detail})" if exc.detail else ""
                raise ConfigError(
                    f"projection {name!r}: its views cannot be applied: {exc.message}{detail}"
                ) from exc
        await self.conn.execute(
            "DELETE FROM ledgerhub.projection_views WHERE projection = $1", name
        )
        await self.conn.executemany(
            "INSERT INTO ledgerhub.projection_views "
            "(name, projection, generation, ordinal, checksum, objects) "
            "VALUES ($1, $2, $3, $4, $5, $6)",
            [
                (view, name, generation, ordinal, r.checksum, list(r.objects))
                for ordinal, (view, r) in enumerate(rendered.items())
            ],
        )

    async def _create_views(self, rendered: Mapping[str, RenderedView]) -> None:
        for view in rendered.values():
            for statement in view.create:
                await self.conn.execute(statement)

    async def _drop_view(self, objects: Sequence[str]) -> None:
        for found in objects:
            kind, _, what = found.partition(" ")
            await self.conn.execute(f"DROP {kind} IF EXISTS {what}")

    async def park(
        self, generation: int, event: RecordedEvent, error: BaseException, attempts: int
    ) -> None:
        """Record (or update) ``event`` as parked for this projection's ``generation``."""
        await self.conn.execute(
            "INSERT INTO ledgerhub.parked_events AS p (projection, generation, position, "
            "event_type, error_type, message, traceback, attempts, status, partition) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'parked', $9) "
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
            self.lease.partition,
        )

    async def resolve_parked(self, parked_id: int) -> None:
        """Mark a parked event as applied."""
        await self.conn.execute(
            "UPDATE ledgerhub.parked_events SET status = 'resolved', resolved_at = now(), "
            "last_seen = now() WHERE id = $1",
            parked_id,
        )

    async def start_job(
        self, job: Job, *, total: int, generation: int | None, partitions: int | None = None
    ) -> None:
        """Mark ``job`` as running on this worker (a rebuild: of a generation of
        ``partitions``)."""
        await self.conn.execute(
            "UPDATE ledgerhub.projection_jobs SET state = 'running', holder = $2, total = $3, "
            "generation = coalesce($4, generation), started_at = coalesce(started_at, now()), "
            "partitions = coalesce($5, partitions) WHERE id = $1",
            job.id,
            self.lease.holder,
            total,
            generation,
            partitions,
        )

    async def replay_progress(self, job: Job, *, cursor: int) -> bool:
        """Record how far this lease's partition replayed ``job`` (locked with ``lock_job``),
        and the job's progress over the partitions it replays (the least of their cursors);
        finish the job when each has reached its end. Whether the job is finished."""
        assert job.from_position is not None
        assert job.to_position is not None
        start, end = job.from_position, job.to_position
        await self.conn.execute(
            "INSERT INTO ledgerhub.projection_job_partitions (job, partition, cursor, finished) "
            "VALUES ($1, $2, $3::bigint, $3::bigint >= $4::bigint) "
            "ON CONFLICT (job, partition) DO UPDATE "
            "SET cursor = excluded.cursor, finished = excluded.finished",
            job.id,
            self.lease.partition,
            cursor,
            end,
        )
        row = await self.conn.fetchrow(
            "SELECT min(coalesce(x.cursor, $2 - 1)) AS cursor, "
            "bool_and(coalesce(x.finished, false)) AS finished "
            "FROM generate_series(0, $3 - 1) AS p LEFT JOIN ledgerhub.projection_job_partitions "
            "AS x ON x.job = $1 AND x.partition = p WHERE $4::int IS NULL OR p = $4",
            job.id,
            start,
            job.partitions,
            job.partition,
        )
        assert row is not None
        least = int(row["cursor"])
        await self.job_progress(
            job, cursor=least, done=max(0, least - start + 1), total=end - start + 1
        )
        if row["finished"]:
            await self.finish_job(job)
        return bool(row["finished"])

    async def rebuild_progress(self, job: Job, generation: int, *, total: int) -> int:
        """Record ``job``'s progress (locked with ``lock_job``): the least checkpoint of the
        partitions of the ``generation`` it builds; return that checkpoint."""
        least = await self.conn.fetchval(
            "SELECT min(position) FROM ledgerhub.projection_generations "
            "WHERE projection = $1 AND generation = $2",
            self.lease.projection,
            generation,
        )
        least = int(least or 0)
        await self.job_progress(job, cursor=least, done=least, total=total)
        return least

    async def caught_up(self, old: Generation, new: Generation, head: int) -> bool:
        """Whether every partition of generation ``new`` has reached ``head`` or the furthest
        checkpoint of generation ``old`` (whichever is lower): then swapping in ``new`` shows
        no tenant an older state than ``old`` shows it, and the log up to ``head`` applied."""
        row = await self.conn.fetchrow(
            "SELECT (SELECT min(position) FROM ledgerhub.projection_generations "
            "        WHERE projection = $1 AND generation = $2) AS new, "
            "       (SELECT max(position) FROM ledgerhub.projection_generations "
            "        WHERE projection = $1 AND generation = $3) AS old",
            self.lease.projection,
            new.generation,
            old.generation,
        )
        assert row is not None
        return int(row["new"] or 0) >= min(head, int(row["old"] or 0))

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
        self,
        after: int,
        upto: int,
        *,
        types: Sequence[str] | None,
        limit: int,
        partition: int = 0,
        partitions: int = 1,
    ) -> tuple[list[RecordedEvent], int]:
        """Events in ``(after, upto]`` of ``types`` (None = all) and of the tenants of
        ``partition`` of ``partitions``, and the position they cover.

        The covered position is ``upto`` when fewer than ``limit`` events came back (so a
        checkpoint may move past events of other types and other partitions), else the last
        event's position. With one partition the query is the one it always was.

        One read looks at a window of positions after ``after`` (``limit`` for each
        partition, four times that when only some types are wanted), never at everything up
        to ``upto``: with statistics of a smaller log (a catch-up or rebuild soon after a big
        import, before autovacuum analyzed the log) the planner read the whole range and
        sorted it for its first ``limit`` rows, every batch reading all that was left — 490 ms
        for a batch of 1,000 with 31,000 events to go. ``upto`` is then the window's end.
        """
        upto = min(upto, after + limit * partitions * (1 if types is None else _TYPED_WINDOW))
        kinds = None if types is None else list(types)
        if partitions == 1:
            rows = await self.fetch(
                f"{_SELECT} WHERE position > $1 AND position <= $2 "
                "AND ($3::text[] IS NULL OR type = ANY($3::text[])) ORDER BY position LIMIT $4",
                after,
                upto,
                kinds,
                limit,
            )
        else:
            rows = await self._read_partition(after, upto, kinds, limit, partition, partitions)
        events = [_recorded(row) for row in rows]
        covered = events[-1].position if len(events) >= limit else upto
        return events, covered

    async def _read_partition(
        self,
        after: int,
        upto: int,
        kinds: list[str] | None,
        limit: int,
        partition: int,
        partitions: int,
    ) -> list[asyncpg.Record]:
        """``read``'s query for one partition of several (see the module docstring).

        The planner cannot know that a partition holds about 1/K of the events (it guesses
        0.5 %), and would gather the scan from parallel workers, which costs more to start (13
        ms) than the whole serial scan of a batch: the transaction turns them off for itself."""
        if not 0 <= partition < partitions <= MAX_PARTITIONS:
            raise ValueError(f"no partition {partition} of {partitions}")
        try:
            async with self.pool.acquire() as conn, conn.transaction(readonly=True):
                await conn.execute("SET LOCAL max_parallel_workers_per_gather = 0")
                rows: list[asyncpg.Record] = await conn.fetch(
                    f"{_SELECT} WHERE position > $1 AND position <= $2 "
                    "AND ($3::text[] IS NULL OR type = ANY($3::text[])) "
                    "AND ledgerhub.tenant_partition(tenant, $5) = $6 ORDER BY position LIMIT $4",
                    after,
                    upto,
                    kinds,
                    limit,
                    partitions,
                    partition,
                )
                return rows
        except _DB_ERRORS as exc:
            raise _translate(exc) from exc

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

    async def generations(
        self, name: str, partition: int = 0
    ) -> tuple[Generation | None, Generation | None]:
        """``name``'s active generation and the one being built, if any: the checkpoint of
        ``partition`` in each (of partition 0 in a generation that has fewer partitions; see
        ``Generation.partition`` and ``.partitions``)."""
        return _pick(await self.fetch(_GENERATIONS, name, partition))

    async def reached(self, name: str, partition: int | None = None) -> int:
        """How far the active generation of ``name`` has applied the log: the checkpoint of
        ``partition``, or the least of its partitions' (None); 0 before its first run."""
        rows = await self.fetch(
            "SELECT min(g.position) AS position FROM ledgerhub.projection_generations AS g "
            "JOIN ledgerhub.projections AS p ON p.name = g.projection "
            "AND p.active_generation = g.generation "
            "WHERE g.projection = $1 AND ($2::int IS NULL OR g.partition = $2)",
            name,
            partition,
        )
        return int(rows[0]["position"] or 0)

    async def partition_count(self, name: str) -> int:
        """How many partitions ``name``'s active generation runs as (1 before its first run)."""
        rows = await self.fetch(
            "SELECT g.partitions FROM ledgerhub.projection_generations AS g "
            "JOIN ledgerhub.projections AS p ON p.name = g.projection "
            "AND p.active_generation = g.generation WHERE g.projection = $1 LIMIT 1",
            name,
        )
        return int(rows[0]["partitions"]) if rows else 1

    async def record_error(self, name: str, error: str | None, partition: int = 0) -> None:
        """Note (or clear, with None) the error a partition's runner is backing off from (on
        its lease row; partition 0's on the projection's row too, where it always was)."""
        await self.fetch(
            "WITH l AS (UPDATE ledgerhub.projection_leases SET last_error = $2, "
            "last_error_at = CASE WHEN $2::text IS NULL THEN NULL ELSE now() END "
            "WHERE projection = $1 AND partition = $3) "
            "UPDATE ledgerhub.projections SET last_error = $2, "
            "last_error_at = CASE WHEN $2::text IS NULL THEN NULL ELSE now() END "
            "WHERE name = $1 AND $3 = 0",
            name,
            error,
            partition,
        )

    async def status(self) -> list[ProjectionStatus]:
        """Every projection's position, lag, parked count, lease holder and state, with the
        same for each partition of its active generation."""
        rows = await self.fetch(
            """
            WITH h AS (SELECT coalesce(max(position), 0) AS head FROM ledgerhub.events)
            SELECT p.name, p.side_effects, p.active_generation AS generation,
                   g.version, coalesce(g.partition, 0) AS partition,
                   coalesce(g.position, 0) AS position, h.head,
                   CASE WHEN coalesce(g.partition, 0) = 0 THEN p.last_error
                        ELSE l.last_error END AS last_error,
                   extract(epoch FROM clock_timestamp() - n.recorded_at)::float8 AS lag_seconds,
                   (SELECT count(*) FROM ledgerhub.parked_events AS x
                     WHERE x.projection = p.name AND x.generation = p.active_generation
                       AND x.partition = coalesce(g.partition, 0)
                       AND x.status IN ('parked', 'retry')) AS parked,
                   l.holder, l.expires_at, coalesce(l.expires_at > clock_timestamp(), false)
                   AS leased,
                   (SELECT min(j.id) FROM ledgerhub.projection_jobs AS j
                     WHERE j.projection = p.name AND j.kind = 'rebuild'
                       AND j.state IN ('queued', 'running')) AS rebuild_job
            FROM ledgerhub.projections AS p CROSS JOIN h
            LEFT JOIN ledgerhub.projection_generations AS g
                   ON g.projection = p.name AND g.generation = p.active_generation
            LEFT JOIN ledgerhub.events AS n ON n.position = coalesce(g.position, 0) + 1
            LEFT JOIN ledgerhub.projection_leases AS l
                   ON l.projection = p.name AND l.partition = coalesce(g.partition, 0)
            ORDER BY p.name, g.partition
            """
        )
        grouped: dict[str, list[asyncpg.Record]] = {}
        for row in rows:
            grouped.setdefault(row["name"], []).append(row)
        return [_status(parts) for parts in grouped.values()]

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


def _state(row: asyncpg.Record) -> ProjectionState:
    if not row["leased"]:
        return "stopped"
    if row["rebuild_job"] is not None:
        return "rebuilding"
    if row["last_error"] is not None:
        return "failing"
    return "running"


def _partition_status(row: asyncpg.Record) -> PartitionStatus:
    lag = max(0, row["head"] - row["position"])
    return PartitionStatus(
        partition=row["partition"],
        state=_state(row),
        position=row["position"],
        lag_events=lag,
        lag_seconds=max(0.0, row["lag_seconds"] or 0.0) if lag else 0.0,
        parked=row["parked"],
        holder=row["holder"] if row["leased"] else None,
        lease_expires_at=row["expires_at"],
        last_error=row["last_error"],
    )


def _status(rows: Sequence[asyncpg.Record]) -> ProjectionStatus:
    """A projection's status from its partitions' rows (see ``ProjectionStatus``)."""
    parts = [_partition_status(row) for row in rows]
    first, slowest = rows[0], min(rows, key=lambda row: row["position"])
    states = {part.state for part in parts}
    state: ProjectionState = next(
        s for s in ("stopped", "rebuilding", "failing", "running") if s in states
    )
    lag = max(part.lag_events for part in parts)
    return ProjectionStatus(
        name=first["name"],
        state=state,
        version=first["version"],
        generation=first["generation"],
        position=slowest["position"],
        head=first["head"],
        lag_events=lag,
        lag_seconds=max(part.lag_seconds for part in parts),
        parked=sum(part.parked for part in parts),
        holder=parts[0].holder,
        lease_expires_at=first["expires_at"],
        side_effects=first["side_effects"],
        last_error=next((part.last_error for part in parts if part.last_error), None),
        rebuild_job=first["rebuild_job"],
        partitions=parts,
    )
