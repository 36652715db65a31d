"""The event store: append with group commit, read in position order, walk the hash chain.

Ordering — why positions are assigned under a lock
---------------------------------------------------
Readers page through the log with ``position > N``. That is only safe if positions become
visible in order: a reader that has seen N must never later find a committed event below N.
A sequence or identity column does not give this. Transaction A takes value 7, transaction B
takes 8, B commits first; a reader now sees 8, moves its checkpoint past it, and never sees 7
when A commits a moment later. (Marten's async daemon skipped events exactly this way: its
issues #2370, #3503, #4964.)

So every append transaction first takes one transaction-level advisory lock
(``pg_advisory_xact_lock(EVENT_LOG_LOCK)``), then reads the current head, assigns ``head + 1 …``
itself, inserts and commits. The lock is released only after the commit is visible, so
transactions commit in position order and the numbers are contiguous (1, 2, 3 … with no holes,
which also lets an auditor read a missing number as a removed row). Serialising appenders is
cheap because this process coalesces every append waiting at that moment into one transaction
(group commit): one lock, one round of inserts and one WAL flush for many requests. A store
has up to ``WRITERS`` (two) such transactions in flight: one under the lock, the next preparing
its rows outside it (serialising, PostgreSQL's rendering of the payloads), then waiting for it.

The head must be read by a statement that starts *after* the lock is granted: in READ
COMMITTED each statement takes a fresh snapshot, and only a snapshot taken after the grant sees
the previous holder's rows. Every round trip made under the lock, and this process's turn to
resume after each, is one that every other appender, in this process or another
(``serve --processes``), waits for; so the lock and that read are one call
(``ledgerhub.append_state``, migration 0024: the head, the group's known keys and its streams'
versions), and what does not depend on the head (each payload's JSON, PostgreSQL's rendering of
it, the hashed bytes of every field but position, stream version and recording time) is
prepared before the lock is asked for. Under the lock remain that call, joining bytes and
hashing them in order, the COPY, the notification and the commit.

Group commit and isolation between requests
-------------------------------------------
Each request (a batch) is judged on its own inside the group: its payloads are serialised and
its hashed bytes prepared before the lock; under it, its duplicates and ``expected_version`` are
checked and its hash links computed in Python, against the database plus the requests accepted
before it in the same group. A request
that fails any of this (a conflict, a value the log cannot hold) is that request's error and is
simply left out; it never fails its neighbours. If the group's transaction fails for any other
reason (the database refused a row, or a bug), every request in it is retried alone, so a bad
request can only fail itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from hub import telemetry
from hub.domain.chain import (
    GENESIS_HASH,
    ChainLink,
    LinkBody,
    Unchainable,
    assemble,
    chained,
    link_body,
    rendered_time,
)
from hub.domain.events import AppendResult, NewEvent, RecordedEvent
from hub.errors import (
    ConcurrencyConflict,
    InvalidInput,
    LedgerhubError,
    SchemaError,
    StoreUnavailable,
)
from hub.store.pool import Connection, create_pool
from hub.store.schema import pending_migrations

EVENT_LOG_LOCK = 0x4C48_4556  # "LHEV": held by every append transaction until it commits
WRITERS = 2
"""Group commits a store has in flight at once. While one holds the log's lock (its head read,
COPY and commit), the next serialises its payloads and has PostgreSQL render them, then waits
for the lock: the work outside the lock overlaps the work under it, as it does between the
processes of ``serve --processes``."""
NOTIFY_CHANNEL = "ledgerhub_events"
"""Each append transaction notifies this channel with the new head position (sent on commit)."""

_SELECT = (
    "SELECT position, id, tenant, source, external_id, type, stream, stream_version, "
    "occurred_at, recorded_at, data::text AS data, meta::text AS meta, raw, hash "
    "FROM ledgerhub.events"
)

APPEND_STATE = "SELECT * FROM ledgerhub.append_state($1, $2, $3, $4, $5, $6)"
"""Take the log's lock for this transaction, then read (a new snapshot) one row each: the head
(``h``: the time to record, its position and hash), a logged key of the group (``k``), a stream's
current version (``v``); every read an index probe at any size of the log (migration 0024)."""

_COLUMNS = (
    "position",
    "id",
    "tenant",
    "source",
    "external_id",
    "type",
    "stream",
    "stream_version",
    "occurred_at",
    "recorded_at",
    "data",
    "meta",
    "raw",
    "hash",
)

Key = tuple[str, str, str]
StreamKey = tuple[str, str]
Outcome = list[AppendResult] | Exception
"""What became of one request: its results, or the error that is its answer alone."""


@dataclass
class AppendStats:
    """Counters since this store was opened (exported as metrics)."""

    groups: int = 0
    """Append transactions committed (each holds one or more requests)."""
    requests: int = 0
    events_appended: int = 0
    duplicates: int = 0
    conflicts: int = 0
    """Requests refused for an ``expected_version`` mismatch."""
    rejected: int = 0
    """Requests refused for any other reason (a value the log cannot hold, a failed commit)."""


@dataclass
class _Request:
    events: Sequence[NewEvent]
    future: asyncio.Future[list[AppendResult]]


@dataclass
class _GroupState:
    """What the database holds for a group's keys and streams, plus what the group adds."""

    known: dict[Key, tuple[int, int]]  # idempotency key -> (position, stream_version)
    versions: dict[StreamKey, int]  # stream -> current version
    next_position: int
    previous_hash: bytes
    recorded_at: datetime
    rows: list[tuple[Any, ...]] = field(default_factory=list)

    @functools.cached_property
    def recorded(self) -> bytes:
        """``recorded_at`` as the hashed bytes hold it."""
        return rendered_time(self.recorded_at, "recorded_at")


def _translate(exc: BaseException) -> LedgerhubError:
    """A library error at the store boundary, as one of ours."""
    if isinstance(exc, asyncpg.UndefinedTableError | asyncpg.InvalidSchemaNameError):
        return SchemaError(f"the event log is missing ({exc}): run `ledgerhub migrate`")
    if isinstance(exc, asyncpg.InsufficientPrivilegeError):
        return SchemaError(f"the database refused the hub's role: {exc}")
    if isinstance(exc, asyncpg.DataError):
        return InvalidInput(f"the database refused a value: {exc}")
    if isinstance(exc, asyncpg.ProgramLimitExceededError):
        # e.g. an idempotency key or stream longer, in UTF-8 bytes, than an index entry can be
        fields = next(
            (names for index, names in _INDEXED_FIELDS.items() if index in str(exc)), None
        )
        return InvalidInput(
            f"the database cannot hold a value{f' of {fields}' if fields else ''}: {exc}",
            errors=[{"index": None, "field": fields, "message": str(exc).splitlines()[0]}],
        )
    return StoreUnavailable(f"the event store failed: {type(exc).__name__}: {exc}")


_INDEXED_FIELDS = {
    "events_idempotency": "tenant, source, external_id",
    "events_stream_version": "stream",
}


def _request_error(exc: Exception) -> Exception:
    """What a request that failed alone answers: ours for a database error or for a value the
    database driver cannot encode; anything else (a bug) as it is."""
    if isinstance(exc, _DB_ERRORS):
        return _translate(exc)
    if isinstance(exc, UnicodeError | OverflowError):  # asyncpg could not encode a value
        return InvalidInput(f"the database cannot hold a value of this request: {exc}")
    return exc


_DB_ERRORS = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,  # e.g. a connection the server ended just after COMMIT
    OSError,
    ConnectionError,
)


class EventStore:
    """The append-only event log (see the module docstring for how ordering is kept).

    Use ``await EventStore.open(dsn)`` and ``await store.close()``, or ``async with``.
    """

    def __init__(
        self, pool: asyncpg.Pool, *, owns_pool: bool = False, max_group_events: int = 20_000
    ) -> None:
        self._pool = pool
        self._owns_pool = owns_pool
        self._max_group_events = max_group_events
        self._queue: list[_Request] = []
        self._writers: set[asyncio.Task[None]] = set()
        self.stats = AppendStats()

    @classmethod
    async def open(cls, dsn: str, *, max_connections: int = 10) -> EventStore:
        """Connect to the log at ``dsn``; ``SchemaError`` if it needs ``ledgerhub migrate``."""
        pool = await create_pool(dsn, max_size=max_connections)
        try:
            async with pool.acquire() as conn:
                pending = await pending_migrations(conn)
        except _DB_ERRORS as exc:
            await pool.close()
            raise _translate(exc) from exc
        except BaseException:
            await pool.close()
            raise
        if pending:
            await pool.close()
            raise SchemaError(
                f"the database schema is behind ({len(pending)} migration(s) pending): "
                "run `ledgerhub migrate`"
            )
        return cls(pool, owns_pool=True)

    async def __aenter__(self) -> EventStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Finish queued appends, then release the pool if this store opened it."""
        while self._writers:
            await asyncio.shield(next(iter(self._writers)))
        if self._owns_pool:
            await self._pool.close()

    # ------------------------------------------------------------------ append

    async def append(self, events: Sequence[NewEvent]) -> list[AppendResult]:
        """Append a batch atomically; results in request order.

        A duplicate (same tenant, source, external_id) answers ``duplicate`` with the original
        position. Raises ``ConcurrencyConflict`` if an ``expected_version`` does not match, and
        then nothing of the batch is written. A returned result means the batch is committed.
        """
        if not events:
            return []
        events = telemetry.traced(events)  # the current request's traceparent, into meta
        request = _Request(events, asyncio.get_running_loop().create_future())
        self._queue.append(request)
        if len(self._writers) < WRITERS:
            writer = asyncio.create_task(self._write_loop(), name="ledgerhub-group-commit")
            self._writers.add(writer)
            writer.add_done_callback(self._writers.discard)
        # The commit goes on even if this caller is cancelled: a caller that retries will get
        # `duplicate` for what did land.
        return await asyncio.shield(request.future)

    async def _write_loop(self) -> None:
        while self._queue:
            group = self._take_group()
            await self._commit_isolated(group)

    def _take_group(self) -> list[_Request]:
        group = [self._queue.pop(0)]
        size = len(group[0].events)
        while self._queue and size + len(self._queue[0].events) <= self._max_group_events:
            request = self._queue.pop(0)
            size += len(request.events)
            group.append(request)
        return group

    async def _commit_isolated(self, group: list[_Request]) -> None:
        try:
            outcomes = await self._commit_group(group)
        except Exception as exc:
            if len(group) == 1:
                self.stats.requests += 1
                self.stats.rejected += 1
                _settle(group[0], _request_error(exc))
                return
            # Something in the group broke the transaction (the database refused a row, or a
            # bug): retry each request alone so that only the request at fault fails.
            # Idempotency makes the retry safe even if the failure hid a successful commit.
            for request in group:
                await self._commit_isolated([request])
            return
        except BaseException as exc:  # cancelled: tell the waiters, then stop
            for request in group:
                _settle(request, exc)
            raise
        self.stats.groups += 1
        counted: list[tuple[str, str, str]] = []  # counted once for the group, not per request
        for request, outcome in zip(group, outcomes, strict=True):
            self.stats.requests += 1
            if isinstance(outcome, ConcurrencyConflict):
                self.stats.conflicts += 1
            elif isinstance(outcome, Exception):
                self.stats.rejected += 1
            else:
                for event, result in zip(request.events, outcome, strict=True):
                    if result.status == "appended":
                        self.stats.events_appended += 1
                    else:
                        self.stats.duplicates += 1
                    counted.append((event.tenant, event.source, result.status))
            _settle(request, outcome)
        telemetry.events.results(counted)

    async def _commit_group(self, group: list[_Request]) -> list[Outcome]:
        # Each request's payloads as JSON text, or the error that is that request's answer.
        outcomes: list[Outcome | _Payloads] = [_serialise(request.events) for request in group]
        live = [
            (number, request, payloads)
            for number, (request, payloads) in enumerate(zip(group, outcomes, strict=True))
            if isinstance(payloads, _Payloads)
        ]
        if not live:
            return _settled(outcomes)
        async with self._pool.acquire() as conn, conn.transaction():
            # Everything that does not depend on the head, before the lock is asked for.
            normalised = await _normalised(conn, [payloads for _, _, payloads in live])
            staged = []
            offset = 0
            for number, request, _ in live:
                texts = normalised[offset : offset + len(request.events)]
                offset += len(request.events)
                staged.append((number, request, texts, _bodies(request.events, texts)))
            state = await _locked_state(conn, [e for _, request, _ in live for e in request.events])
            for number, request, texts, bodies in staged:
                outcomes[number] = _stage(request.events, texts, bodies, state)
            await _write_rows(conn, state)
        return _settled(outcomes)

    # ------------------------------------------------------------------ read

    async def head(self) -> int:
        """The position of the last committed event (0 for an empty log)."""
        try:
            value = await self._pool.fetchval(
                "SELECT coalesce(max(position), 0) FROM ledgerhub.events"
            )
        except _DB_ERRORS as exc:
            raise _translate(exc) from exc
        return int(value)

    async def meta_values(self, positions: Sequence[int], key: str) -> dict[int, str]:
        """``meta[key]`` of the events at ``positions`` that carry it as text, by position."""
        rows = await self._fetch(
            "SELECT position, meta->>$2 AS value FROM ledgerhub.events "
            "WHERE position = ANY($1::bigint[]) AND jsonb_typeof(meta->$2) = 'string'",
            list(positions),
            key,
        )
        return {int(r["position"]): str(r["value"]) for r in rows}

    async def read_after(
        self,
        after: int = 0,
        *,
        limit: int = 1000,
        tenant: str | None = None,
        source: str | None = None,
        type: str | None = None,
        stream: str | None = None,
    ) -> list[RecordedEvent]:
        """Up to ``limit`` events with ``position > after``, in position order, optionally filtered.

        Never skips: every event committed with a position above ``after`` is returned by this
        or a later call (see the module docstring).
        """
        where = ["position > $1"]
        args: list[Any] = [after]
        for column, value in (
            ("tenant", tenant),
            ("source", source),
            ("type", type),
            ("stream", stream),
        ):
            if value is not None:
                args.append(value)
                where.append(f"{column} = ${len(args)}")
        args.append(limit)
        sql = f"{_SELECT} WHERE {' AND '.join(where)} ORDER BY position LIMIT ${len(args)}"
        return [_recorded(row) for row in await self._fetch(sql, *args)]

    async def read_stream(
        self, tenant: str, stream: str, *, after_version: int = 0, limit: int = 1000
    ) -> list[RecordedEvent]:
        """A stream's events with ``stream_version > after_version``, in version order."""
        rows = await self._fetch(
            f"{_SELECT} WHERE tenant = $1 AND stream = $2 AND stream_version > $3 "
            "ORDER BY stream_version LIMIT $4",
            tenant,
            stream,
            after_version,
            limit,
        )
        return [_recorded(row) for row in rows]

    async def read_chain(self, after: int = 0, *, limit: int = 5000) -> list[ChainLink]:
        """The stored fields the hash chain covers, for ``position > after`` in order."""
        rows = await self._fetch(
            f"{_SELECT} WHERE position > $1 ORDER BY position LIMIT $2", after, limit
        )
        return [
            ChainLink(
                position=r["position"],
                id=r["id"],
                tenant=r["tenant"],
                source=r["source"],
                external_id=r["external_id"],
                type=r["type"],
                stream=r["stream"],
                stream_version=r["stream_version"],
                occurred_at=r["occurred_at"],
                recorded_at=r["recorded_at"],
                data_json=r["data"],
                meta_json=r["meta"],
                raw=r["raw"],
                hash=r["hash"],
            )
            for r in rows
        ]

    @contextlib.asynccontextmanager
    async def notifications(self) -> AsyncIterator[asyncio.Queue[int]]:
        """A queue of new head positions, fed by ``NOTIFY`` as append transactions commit."""
        queue: asyncio.Queue[int] = asyncio.Queue()

        def on_notify(_conn: Connection, _pid: int, _channel: str, payload: object) -> None:
            queue.put_nowait(int(str(payload)))

        try:
            conn = await self._pool.acquire()
            await conn.add_listener(NOTIFY_CHANNEL, on_notify)
        except _DB_ERRORS as exc:
            raise _translate(exc) from exc
        try:
            yield queue
        finally:
            with contextlib.suppress(*_DB_ERRORS):
                await conn.remove_listener(NOTIFY_CHANNEL, on_notify)
            await self._pool.release(conn)

    async def _fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        try:
            return await self._pool.fetch(sql, *args)
        except _DB_ERRORS as exc:
            raise _translate(exc) from exc


@dataclass(frozen=True)
class _Payloads:
    """A request's ``data`` and ``meta`` as JSON text, one of each per event."""

    data: list[str]
    meta: list[str]


def _serialise(events: Sequence[NewEvent]) -> _Payloads | InvalidInput:
    """The request's payloads as JSON, or the 422 naming the event and field orjson refused
    (a value the log could not hold exactly, built without ``NewEvent``'s validation)."""
    payloads = _Payloads([], [])
    for index, event in enumerate(events):
        for field_name, value, texts in (
            ("data", event.data, payloads.data),
            ("meta", event.meta, payloads.meta),
        ):
            try:
                texts.append(orjson.dumps(value).decode())
            except TypeError as exc:  # orjson.JSONEncodeError
                return _unholdable(index, field_name, f"cannot be stored as JSON: {exc}")
    return payloads


def _settled(outcomes: list[Outcome | _Payloads]) -> list[Outcome]:
    """The outcomes once every live request has been staged."""
    settled = [o for o in outcomes if not isinstance(o, _Payloads)]
    assert len(settled) == len(outcomes), "a request was left unstaged"
    return settled


def _unholdable(index: int, field_name: str, message: str) -> InvalidInput:
    return InvalidInput(
        f"event {index}: field {field_name!r}: {message}",
        errors=[{"index": index, "field": field_name, "message": message}],
    )


async def _normalised(conn: Connection, requests: Sequence[_Payloads]) -> list[asyncpg.Record]:
    """PostgreSQL's own rendering (``jsonb::text``) of each payload of ``requests``, in order:
    what the hash chain covers. Read before the log's lock is asked for."""
    return await conn.fetch(
        "SELECT d::text AS data, m::text AS meta "
        "FROM unnest($1::jsonb[], $2::jsonb[]) WITH ORDINALITY AS u(d, m, n) ORDER BY n",
        [text for payloads in requests for text in payloads.data],
        [text for payloads in requests for text in payloads.meta],
    )


def _bodies(
    events: Sequence[NewEvent], texts: Sequence[asyncpg.Record]
) -> list[LinkBody | Unchainable]:
    """Each event's hashed bytes but those its place in the log decides, or why it has none
    (the request's answer if the event is to be appended, see ``_stage``)."""
    bodies: list[LinkBody | Unchainable] = []
    for event, text in zip(events, texts, strict=True):
        try:
            bodies.append(
                link_body(
                    id=event.id,
                    tenant=event.tenant,
                    source=event.source,
                    external_id=event.external_id,
                    type=event.type,
                    stream=event.stream_name,
                    occurred_at=event.occurred_at,
                    data_json=text["data"],
                    meta_json=text["meta"],
                    raw=event.raw,
                )
            )
        except Unchainable as exc:  # a time NewEvent would have refused
            bodies.append(exc)
        except orjson.JSONEncodeError as exc:  # text that is not UTF-8 (a lone surrogate)
            bodies.append(Unchainable(_not_utf8(event), f"cannot be stored: {exc}"))
    return bodies


def _not_utf8(event: NewEvent) -> str:
    """The first text field of ``event`` that has no UTF-8 form."""
    for name in ("tenant", "source", "external_id", "type", "stream"):
        value = getattr(event, name)
        try:
            if isinstance(value, str):
                value.encode("utf-8")
        except UnicodeEncodeError:
            return name
    return "event"


async def _locked_state(conn: Connection, events: Sequence[NewEvent]) -> _GroupState:
    """Take the log's lock for ``conn``'s transaction and read, after it is granted, the head
    (position, hash, the time to record), the logged keys among ``events``' (position, stream
    version) and their streams' versions: one call (``APPEND_STATE``)."""
    keys = {e.idempotency_key for e in events}
    streams = {(e.tenant, e.stream_name) for e in events}
    rows = await conn.fetch(
        APPEND_STATE,
        EVENT_LOG_LOCK,
        *(list(column) for column in zip(*keys, strict=True)),
        *(list(column) for column in zip(*streams, strict=True)),
    )
    head = None
    known: dict[Key, tuple[int, int]] = {}
    versions: dict[StreamKey, int] = {}
    for r in rows:
        if r["kind"] == "k":
            known[(r["tenant"], r["source"], r["name"])] = (r["position"], r["version"])
        elif r["kind"] == "v":
            versions[(r["tenant"], r["name"])] = r["version"] or 0
        else:
            head = r
    assert head is not None
    return _GroupState(
        known=known,
        versions=versions,
        next_position=(head["position"] or 0) + 1,
        previous_hash=head["hash"] or GENESIS_HASH,
        recorded_at=head["now"],
    )


async def _write_rows(conn: Connection, state: _GroupState) -> None:
    """Copy what ``state`` has staged into the log and notify its new head."""
    if state.rows:
        await conn.copy_records_to_table(
            "events", schema_name="ledgerhub", columns=_COLUMNS, records=state.rows
        )
        await conn.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, str(state.next_position - 1))


def _stage(
    events: Sequence[NewEvent],
    texts: Sequence[asyncpg.Record],
    bodies: Sequence[LinkBody | Unchainable],
    state: _GroupState,
) -> list[AppendResult] | LedgerhubError:
    """Judge one request against ``state``; if accepted, add its rows and advance ``state``.

    ``state`` changes only when the whole request is accepted: a request refused half-way
    leaves nothing behind for the requests after it.
    """
    known: dict[Key, tuple[int, int]] = {}
    versions: dict[StreamKey, int] = {}
    rows: list[tuple[Any, ...]] = []
    results: list[AppendResult] = []
    position = state.next_position
    previous = state.previous_hash
    for index, (event, text) in enumerate(zip(events, texts, strict=True)):
        key = event.idempotency_key
        hit = known.get(key) or state.known.get(key)
        if hit is not None:
            results.append(
                AppendResult(
                    external_id=event.external_id,
                    status="duplicate",
                    position=hit[0],
                    stream_version=hit[1],
                )
            )
            continue
        stream_key = (event.tenant, event.stream_name)
        current = versions.get(stream_key, state.versions.get(stream_key, 0))
        if event.expected_version is not None and event.expected_version != current:
            return ConcurrencyConflict(
                tenant=event.tenant,
                stream=event.stream_name,
                expected=event.expected_version,
                actual=current,
                index=index,
            )
        body = bodies[index]
        if isinstance(body, Unchainable):  # a time NewEvent would have refused: a 422
            return _unholdable(index, body.field, str(body))
        canonical = assemble(
            body, position=position, stream_version=current + 1, recorded_at=state.recorded
        )
        previous = chained(previous, canonical)
        rows.append(
            (
                position,
                event.id,
                event.tenant,
                event.source,
                event.external_id,
                event.type,
                stream_key[1],
                current + 1,
                event.occurred_at,
                state.recorded_at,
                text["data"],
                text["meta"],
                event.raw,
                previous,
            )
        )
        known[key] = (position, current + 1)
        versions[stream_key] = current + 1
        results.append(
            AppendResult(
                external_id=event.external_id,
                status="appended",
                position=position,
                stream_version=current + 1,
            )
        )
        position += 1
    state.known.update(known)
    state.versions.update(versions)
    state.rows.extend(rows)
    state.next_position = position
    state.previous_hash = previous
    return results


def _settle(request: _Request, outcome: list[AppendResult] | BaseException) -> None:
    if request.future.done():
        return
    if isinstance(outcome, BaseException):
        request.future.set_exception(outcome)
    else:
        request.future.set_result(outcome)


def _recorded(row: asyncpg.Record) -> RecordedEvent:
    """The event of a row of the log, as it is: the columns' types are the model's (NOT NULL
    where it has no None), and what was appended was validated then, so it is not validated
    again (every projection turns every row it reads into an event)."""
    return RecordedEvent.model_construct(
        position=row["position"],
        id=row["id"],
        tenant=row["tenant"],
        source=row["source"],
        external_id=row["external_id"],
        type=row["type"],
        stream=row["stream"],
        stream_version=row["stream_version"],
        occurred_at=row["occurred_at"],
        recorded_at=row["recorded_at"],
        data=orjson.loads(row["data"]),
        meta=orjson.loads(row["meta"]),
        raw=row["raw"],
        hash=row["hash"],
    )
