"""Readiness (is the database reachable and its schema current?) and connection health:
each connection's recorded state, the shared schedule of checks, and the freshness of a source's
events (migration 0020).

``HealthStore.claim`` is the schedule's lease: it moves a connection's ``due_at`` one period on
only if it was due, in one statement, so of the workers sharing the schedule one checks each
connection per period. ``HealthStore.record`` applies a check's result through the pure state
machine (``hub.domain.health.step``) with the connection's row locked, so of two processes
recording at once (two workers, or a worker and the sender reporting a target's fault) one sees
the other's state: each change of state, and so each alert, happens once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Literal

import asyncpg

from hub.domain.health import CheckResult, ConnectionHealth, Transition, step
from hub.errors import LedgerhubError
from hub.store.events import _DB_ERRORS, EventStore, _translate
from hub.store.schema import pending_migrations


async def readiness_problem(pool: asyncpg.Pool) -> str | None:
    """None when the database answers and every migration is applied, else what is wrong."""
    try:
        async with pool.acquire() as conn:
            pending = await pending_migrations(conn)
    except (
        asyncpg.PostgresError,
        asyncpg.InterfaceError,
        asyncpg.InternalClientError,
        OSError,
        ConnectionError,
    ) as exc:
        return f"database unreachable: {type(exc).__name__}"
    except LedgerhubError as exc:
        return str(exc)
    if pending:
        return f"{len(pending)} migration(s) pending: run `ledgerhub migrate`"
    return None


_HEALTH_COLUMNS = "connection, tenant, state, since, checked_at, detail, alerted_at"

Origin = Literal["check", "fault", "sent"]
"""What a result comes from: a health check, a fault the sender met, or a send that worked."""


def _health(row: asyncpg.Record) -> ConnectionHealth:
    return ConnectionHealth(**{key: row[key] for key in _HEALTH_COLUMNS.split(", ")})


class HealthStore:
    """Connection health and its schedule, on a pool (the hub's role)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @classmethod
    def over(cls, events: EventStore) -> HealthStore:
        """The health tables on ``events``' pool (which stays ``events``' to close)."""
        return cls(events._pool)

    async def claim(self, tenant: str, connection: str, every: float) -> bool:
        """True when ``connection``'s check was due and this caller now holds it for
        ``every`` seconds (the next one is due then); False when another worker has it."""
        claimed = await self._fetchval(
            "INSERT INTO ledgerhub.health_schedule AS s (tenant, connection, due_at) "
            "VALUES ($1, $2, clock_timestamp() + make_interval(secs => $3)) "
            "ON CONFLICT (tenant, connection) DO UPDATE SET due_at = excluded.due_at "
            "WHERE s.due_at <= clock_timestamp() RETURNING true",
            tenant,
            connection,
            every,
        )
        return bool(claimed)

    async def next_due(self, keys: Sequence[tuple[str, str]]) -> float | None:
        """Seconds until the earliest of ``keys`` (tenant, connection) is due (0: one is due
        now, or was never checked; None: no keys)."""
        if not keys:
            return None
        seconds = await self._fetchval(
            "SELECT min(greatest(0, extract(epoch FROM coalesce(s.due_at, clock_timestamp()) "
            "- clock_timestamp())))::float8 "
            "FROM unnest($1::text[], $2::text[]) AS k(tenant, connection) "
            "LEFT JOIN ledgerhub.health_schedule AS s USING (tenant, connection)",
            [tenant for tenant, _ in keys],
            [connection for _, connection in keys],
        )
        return None if seconds is None else float(seconds)

    async def record(
        self, result: CheckResult, remind_after: timedelta, origin: Origin = "check"
    ) -> Transition | None:
        """Apply ``result`` to the connection's stored health (by the database's clock) under
        the row's lock; the new health and the alert this change raises (send it: no other
        process will). ``origin``: a sender's ``fault`` holds the connection failing until a
        send works again (``sent``), whatever the checks say meanwhile; ``sent`` changes
        nothing (None) unless such a fault is held."""
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                if origin == "sent":
                    cleared = await conn.fetchval(
                        "UPDATE ledgerhub.connection_health SET fault_at = NULL "
                        "WHERE tenant = $1 AND connection = $2 AND fault_at IS NOT NULL "
                        "RETURNING true",
                        result.tenant,
                        result.connection,
                    )
                    if not cleared:
                        return None
                now: datetime = await conn.fetchval("SELECT clock_timestamp()")
                # two first checks at once: the row exists before either locks it
                first = await conn.fetchval(
                    "INSERT INTO ledgerhub.connection_health "
                    "(tenant, connection, state, since, checked_at) "
                    "VALUES ($1, $2, 'ok', $3, $3) ON CONFLICT (tenant, connection) DO NOTHING "
                    "RETURNING true",
                    result.tenant,
                    result.connection,
                    now,
                )
                row = await conn.fetchrow(
                    f"SELECT {_HEALTH_COLUMNS}, fault_at FROM ledgerhub.connection_health "
                    "WHERE tenant = $1 AND connection = $2 FOR UPDATE",
                    result.tenant,
                    result.connection,
                )
                assert row is not None
                previous = None if first else _health(row)
                if origin == "check" and result.ok and row["fault_at"] is not None:
                    # the sender's fault stands until a send works: the check alone says little
                    result = replace(result, ok=False, detail=row["detail"])
                now = await conn.fetchval("SELECT clock_timestamp()")
                change = step(previous, result, now, remind_after)
                health = change.health
                await conn.execute(
                    "UPDATE ledgerhub.connection_health SET state = $3, since = $4, "
                    "checked_at = $5, detail = $6, alerted_at = $7, "
                    "fault_at = CASE WHEN $8 THEN $5 ELSE fault_at END "
                    "WHERE tenant = $1 AND connection = $2",
                    health.tenant,
                    health.connection,
                    health.state,
                    health.since,
                    health.checked_at,
                    health.detail,
                    health.alerted_at,
                    origin == "fault",
                )
        except _DB_ERRORS as exc:
            raise _translate(exc) from exc
        return change

    async def all(self, tenant: str | None = None) -> list[ConnectionHealth]:
        """Every checked connection's health (of one tenant), by connection id and tenant."""
        rows = await self._fetch(
            f"SELECT {_HEALTH_COLUMNS} FROM ledgerhub.connection_health "
            "WHERE $1::text IS NULL OR tenant = $1 ORDER BY connection, tenant",
            tenant,
        )
        return [_health(row) for row in rows]

    async def newest_event(
        self, tenant: str, source: str, types: Sequence[str] = (), *, occurred: bool = False
    ) -> datetime | None:
        """When ``source``'s newest event (of ``types``, SQL ``LIKE`` patterns; none: any) was
        recorded, or with ``occurred`` the latest ``occurred_at`` among them (None: none), among
        the source's last ``NEWEST_SCAN`` events."""
        column = "occurred_at" if occurred else "recorded_at"
        found: datetime | None = await self._fetchval(
            f"SELECT max({column}) FROM (SELECT {column}, type FROM ledgerhub.events "
            "WHERE ARRAY[tenant, source] = ARRAY[$1::text, $2::text] "  # events_source_newest
            "ORDER BY position DESC LIMIT $4) AS newest "
            "WHERE cardinality($3::text[]) = 0 OR type LIKE ANY($3::text[])",
            tenant,
            source,
            list(types),
            NEWEST_SCAN,
        )
        return found

    async def now(self) -> datetime:
        """The database's clock (every worker shares it)."""
        now: datetime = await self._fetchval("SELECT clock_timestamp()")
        return now

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


NEWEST_SCAN = 1000
"""How many of a source's newest events a freshness check reads (newest first, through the
index ``events_source_newest``): enough to find a statement's latest line among the
source's last imports without reading its whole history."""
