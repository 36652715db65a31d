"""The accounting sync's tables: what each target holds, sync runs, and the calls made.

``sync_documents`` is the sender's memory of what a target confirmed (document key → content
hash and the target's id); ``sync_pending`` holds each document whose call to the target was
made (or is being made) and whose outcome is not recorded yet, as it was sent, so a run after a
crash can make that call again exactly (migration 0025); ``sync_runs`` and ``sync_calls`` are
the run log operators read (``ledgerhub sync status``, ``GET /v1/sync/runs``). A sender holds
a session advisory lock per (tenant, target) while it runs, so two processes never push the
same tenant's documents at once and a dead process's lock goes with its connection.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from hub.domain.documents import Document
from hub.store.events import _DB_ERRORS, _translate
from hub.store.projections import ProjectionStore

SyncStatus = Literal["synced", "parked", "voided"]


@dataclass(frozen=True)
class Held:
    """What a target holds (or refused) for one document key."""

    doc_key: str
    idempotency_key: str
    content_hash: str
    target_id: str | None
    status: SyncStatus
    message: str | None


@dataclass
class RunCounts:
    """A sync run's tallies."""

    sent: int = 0
    failed: int = 0
    parked: int = 0
    retries: int = 0


class SyncRun(BaseModel):
    """One row of the sync-run log: when, and what it sent, failed, parked and retried."""

    model_config = ConfigDict(frozen=True)

    id: int
    tenant: str
    target: str
    started_at: datetime
    ended_at: datetime | None
    sent: int
    failed: int
    parked: int
    retries: int
    error: str | None


_UPSERT_HELD = """
INSERT INTO ledgerhub.sync_documents
    (tenant, target, doc_key, idempotency_key, content_hash, target_id, status, message)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (tenant, target, doc_key) DO UPDATE SET
    idempotency_key = excluded.idempotency_key, content_hash = excluded.content_hash,
    target_id = excluded.target_id, status = excluded.status, message = excluded.message,
    updated_at = now()
"""
_UNPEND = (
    "DELETE FROM ledgerhub.sync_pending WHERE tenant = $1 AND target = $2 AND doc_key = ANY($3)"
)
_PEND = (
    "INSERT INTO ledgerhub.sync_pending (tenant, target, doc_key, document) "
    "SELECT $1, $2, k, d::jsonb FROM unnest($3::text[], $4::text[]) AS u (k, d) "
    "ON CONFLICT DO NOTHING"
)
_RUNS = "SELECT * FROM ledgerhub.sync_runs"
_INSERT_CALL = (
    "INSERT INTO ledgerhub.sync_calls "
    "(run_id, doc_key, operation, request_id, status, duration_ms) "
    "VALUES ($1, $2, $3, $4, $5, $6)"
)


@dataclass(frozen=True)
class Call:
    """One call to a target, for the run's call log (``SyncLog.call_all``)."""

    run_id: int
    doc_key: str
    operation: str
    request_id: str
    status: str
    duration_ms: int


class SyncLog:
    """The sync tables on a ``ProjectionStore``'s pool."""

    def __init__(self, store: ProjectionStore) -> None:
        self._store = store

    async def held(self, tenant: str, target: str) -> dict[str, Held]:
        """Document key → what ``target`` holds for ``tenant``."""
        rows = await self._store.fetch(
            "SELECT * FROM ledgerhub.sync_documents WHERE tenant = $1 AND target = $2",
            tenant,
            target,
        )
        return {
            r["doc_key"]: Held(
                r["doc_key"],
                r["idempotency_key"],
                r["content_hash"],
                r["target_id"],
                r["status"],
                r["message"],
            )
            for r in rows
        }

    async def remember(self, tenant: str, target: str, held: Held) -> None:
        """Record what ``target`` now holds (or refused) for one document."""
        await self.remember_all(tenant, target, [held])

    async def remember_all(self, tenant: str, target: str, helds: Sequence[Held]) -> None:
        """``remember`` for many documents, in one transaction (pipelined: no round trip a row);
        their calls are no longer pending."""
        rows = [
            (tenant, target, h.doc_key, h.idempotency_key, h.content_hash, h.target_id,
             h.status, h.message)
            for h in helds
        ]  # fmt: skip
        if not rows:
            return
        try:
            async with self._store.pool.acquire() as conn, conn.transaction():
                await conn.executemany(_UPSERT_HELD, rows)
                await conn.execute(_UNPEND, tenant, target, [h.doc_key for h in helds])
        except _DB_ERRORS as exc:
            raise _translate(exc) from exc

    async def pending(self, tenant: str, target: str) -> dict[str, Document]:
        """Document key → the document as it was sent in a call whose outcome is not recorded
        (the process making it died, or the target never answered)."""
        rows = await self._store.fetch(
            "SELECT doc_key, document::text AS document FROM ledgerhub.sync_pending "
            "WHERE tenant = $1 AND target = $2",
            tenant,
            target,
        )
        return {r["doc_key"]: Document.decode(r["document"]) for r in rows}

    async def pend(self, tenant: str, target: str, documents: Sequence[Document]) -> None:
        """Note ``documents`` as about to be sent (before the call, or before the flush that
        makes a batch's calls durable). A document already pending keeps the earlier entry:
        that unrecorded call is the one a later run must make again."""
        if documents:  # one statement, whatever their number
            encoded = [d.encode().decode() for d in documents]
            await self._store.fetch(_PEND, tenant, target, [d.key for d in documents], encoded)

    async def unpend(self, tenant: str, target: str, doc_key: str) -> None:
        """Forget a pending call that the target showed it never applied."""
        await self._store.fetch(_UNPEND, tenant, target, [doc_key])

    async def _many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        try:
            async with self._store.pool.acquire() as conn, conn.transaction():
                await conn.executemany(sql, rows)
        except _DB_ERRORS as exc:
            raise _translate(exc) from exc

    async def start_run(self, tenant: str, target: str) -> int:
        """A new run's id."""
        rows = await self._store.fetch(
            "INSERT INTO ledgerhub.sync_runs (tenant, target) VALUES ($1, $2) RETURNING id",
            tenant,
            target,
        )
        return int(rows[0]["id"])

    async def finish_run(self, run_id: int, counts: RunCounts, error: str | None = None) -> None:
        """Close a run with its tallies (and the error that ended it, if any)."""
        await self._store.fetch(
            "UPDATE ledgerhub.sync_runs SET ended_at = now(), sent = $2, failed = $3, "
            "parked = $4, retries = $5, error = $6 WHERE id = $1",
            run_id,
            counts.sent,
            counts.failed,
            counts.parked,
            counts.retries,
            error,
        )

    async def call(
        self, run_id: int, doc_key: str, operation: str, request_id: str, status: str, ms: int
    ) -> None:
        """Record one call to a target."""
        await self._store.fetch(
            _INSERT_CALL,
            run_id,
            doc_key,
            operation,
            request_id,
            status,
            ms,
        )

    async def call_all(self, calls: Sequence[Call]) -> None:
        """``call`` for many calls, in one transaction, in the order given."""
        rows = [
            (c.run_id, c.doc_key, c.operation, c.request_id, c.status, c.duration_ms) for c in calls
        ]
        await self._many(_INSERT_CALL, rows)

    async def calls(self, run_id: int) -> list[dict[str, Any]]:
        """The calls of one run, in order."""
        rows = await self._store.fetch(
            "SELECT doc_key, operation, request_id, status, duration_ms "
            "FROM ledgerhub.sync_calls WHERE run_id = $1 ORDER BY id",
            run_id,
        )
        return [dict(r) for r in rows]

    async def runs(
        self, *, limit: int = 50, before: int | None = None, tenant: str | None = None
    ) -> list[SyncRun]:
        """The latest runs first (ids below ``before``, of ``tenant``, when given)."""
        rows = await self._store.fetch(
            f"{_RUNS} WHERE ($1::bigint IS NULL OR id < $1) AND ($3::text IS NULL OR tenant = $3) "
            "ORDER BY id DESC LIMIT $2",
            before,
            limit,
            tenant,
        )
        return [SyncRun(**dict(r)) for r in rows]

    @contextlib.asynccontextmanager
    async def exclusive(self, tenant: str, target: str) -> AsyncIterator[bool]:
        """Hold the (tenant, target) sender lock for the block; yields False if another
        process holds it (then do nothing)."""
        key = f"ledgerhub.sync/{tenant}/{target}"
        try:
            async with self._store.pool.acquire() as conn:
                held = bool(await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", key))
                try:
                    yield held
                finally:
                    if held:
                        with contextlib.suppress(*_DB_ERRORS):
                            await conn.fetchval("SELECT pg_advisory_unlock(hashtext($1))", key)
        except _DB_ERRORS as exc:  # the database went away: retriable, never a dead loop
            raise _translate(exc) from exc
