"""A projection's analyst views (``Projection.views``): applied with the generation that becomes
active, swapped with it, replaced or dropped when a new version changes them, readable by
``ledgerhub_analyst`` and nobody else, and recreated by a worker after the upgrade that moved
them out of the core migrations."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import date
from typing import Any, ClassVar

import asyncpg
import pytest

from hub.domain.events import RecordedEvent
from hub.domain.projections import Generation, Lease
from hub.errors import ConfigError
from hub.spi.projection import Context, Projection, View
from hub.store import EventStore
from hub.store.leases import Leases
from hub.store.projections import ProjectionStore
from tests.factories import event
from tests.runtime.harness import running, wait_until


class Tally(Projection):
    """The last position seen per event type, with two analyst views over it."""

    name: ClassVar[str] = "tally"
    tables: ClassVar[dict[str, str]] = {"counts": "type text PRIMARY KEY, last bigint NOT NULL"}
    views: ClassVar[Mapping[str, View]] = {
        "tally_counts": View(
            "SELECT c.type, c.last FROM {counts} AS c", "the last position per type"
        ),
        "tally_on": View(
            "SELECT c.type, c.last, coalesce({as_of}, DATE '2000-01-01') AS day FROM {counts} AS c"
        ),
    }

    async def handle(self, events: Sequence[RecordedEvent], ctx: Context) -> None:
        for e in events:
            await ctx.conn.execute(
                f"INSERT INTO {ctx.tables['counts']} AS c (type, last) VALUES ($1, $2) "
                "ON CONFLICT (type) DO UPDATE SET last = greatest(c.last, excluded.last)",
                e.type,
                e.position,
            )


class TallyV2(Tally):
    """A version whose view renames a column and no longer has the dated one."""

    version: ClassVar[int] = 2
    views: ClassVar[Mapping[str, View]] = {
        "tally_counts": View("SELECT c.type AS kind, c.last FROM {counts} AS c"),
    }


class Share(Projection):
    """A view over another projection's table (bound late)."""

    name: ClassVar[str] = "share"
    tables: ClassVar[dict[str, str]] = {"notes": "note text"}
    views: ClassVar[Mapping[str, View]] = {
        "share_of_tally": View(
            "SELECT t.type, t.last, (SELECT count(*) FROM {notes}) AS notes "
            "FROM {tally:counts} AS t",
            columns="type text, last bigint, notes bigint",
        )
    }

    async def handle(self, events: Sequence[RecordedEvent], ctx: Context) -> None:
        return None


@pytest.fixture
async def conn(dsn: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(dsn)
    try:
        yield connection
    finally:
        await connection.close()


async def _lease(projections: ProjectionStore, name: str) -> Lease:
    await projections.register(name, side_effects=False)
    lease = await Leases(projections, f"test-{name}", ttl=60).acquire(name)
    assert lease is not None
    return lease


async def _generation(
    projections: ProjectionStore,
    lease: Lease,
    projection: type[Projection],
    number: int,
    rows: Sequence[tuple[str, int]] = (),
    *,
    active: bool,
) -> Generation:
    async with projections.batch(lease) as batch:
        made = await batch.create_generation(
            projection.version, projection.tables, number, active=active, views=projection.views
        )
        if rows:
            await batch.conn.executemany(
                f"INSERT INTO {made.tables['counts']} (type, last) VALUES ($1, $2)", rows
            )
    return made


async def _swap(
    projections: ProjectionStore,
    lease: Lease,
    old: Generation,
    new: Generation,
    views: Mapping[str, View],
) -> None:
    async with projections.batch(lease) as batch:
        await batch.swap(old, new, views=views)


async def _as_analyst(conn: asyncpg.Connection, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    async with conn.transaction():
        await conn.execute("SET LOCAL ROLE ledgerhub_analyst")
        return [tuple(row) for row in await conn.fetch(sql, *args)]


async def test_views_are_applied_with_the_active_generation_and_swapped_with_it(
    projections: ProjectionStore, conn: asyncpg.Connection
) -> None:
    lease = await _lease(projections, "tally")
    first = await _generation(projections, lease, Tally, 1, [("a", 1)], active=True)
    second = await _generation(projections, lease, Tally, 2, [("b", 2)], active=False)
    read = "SELECT type, last FROM ledgerhub_views.tally_counts"
    while_building = await _as_analyst(conn, read)
    await _swap(projections, lease, first, second, Tally.views)
    after = await _as_analyst(conn, read)
    today = await _as_analyst(conn, "SELECT day FROM ledgerhub_views.tally_on")
    another_day = await _as_analyst(
        conn, "SELECT type, day FROM ledgerhub_views.tally_on_at($1)", date(2024, 3, 1)
    )
    recorded = await conn.fetch(
        "SELECT name, generation, objects FROM ledgerhub.projection_views ORDER BY ordinal"
    )
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await _as_analyst(conn, f"SELECT * FROM {second.tables['counts']}")
    public = await conn.fetchval(
        "SELECT has_function_privilege('public', 'ledgerhub_views.tally_on_at(date)', 'EXECUTE')"
    )
    owner = await conn.fetchval(
        "SELECT viewowner FROM pg_views WHERE schemaname = 'ledgerhub_views' "
        "AND viewname = 'tally_counts'"
    )
    old_table = await conn.fetchval("SELECT to_regclass($1)", first.tables["counts"])
    assert while_building == [("a", 1)], "readers keep the old generation until the swap"
    assert after == [("b", 2)]
    assert today == [(date(2000, 1, 1),)]
    assert another_day == [("b", date(2024, 3, 1))]
    assert [(r["name"], r["generation"]) for r in recorded] == [
        ("tally_counts", 2),
        ("tally_on", 2),
    ]
    assert list(recorded[1]["objects"]) == [
        "FUNCTION ledgerhub_views.tally_on_at(date)",
        "VIEW ledgerhub_views.tally_on",
    ]
    assert public is False, "only the analysts may call a function that reads as the hub"
    assert owner == "ledgerhub_app"
    assert old_table is None


async def test_a_swap_replaces_changed_views_and_drops_those_no_longer_declared(
    projections: ProjectionStore, conn: asyncpg.Connection
) -> None:
    lease = await _lease(projections, "tally")
    first = await _generation(projections, lease, Tally, 1, [("a", 1)], active=True)
    second = await _generation(projections, lease, TallyV2, 2, [("b", 2)], active=False)
    await _swap(projections, lease, first, second, TallyV2.views)
    [row] = await conn.fetch("SELECT * FROM ledgerhub_views.tally_counts")
    gone = await conn.fetchval(
        "SELECT to_regclass('ledgerhub_views.tally_on') IS NULL "
        "AND to_regprocedure('ledgerhub_views.tally_on_at(date)') IS NULL"
    )
    recorded = await conn.fetch("SELECT name FROM ledgerhub.projection_views")
    assert dict(row) == {"kind": "b", "last": 2}
    assert gone
    assert [r["name"] for r in recorded] == ["tally_counts"]


async def test_an_outside_view_follows_a_compatible_swap_and_stops_an_incompatible_one(
    projections: ProjectionStore, conn: asyncpg.Connection
) -> None:
    lease = await _lease(projections, "tally")
    first = await _generation(projections, lease, Tally, 1, [("a", 1)], active=True)
    await conn.execute(
        "CREATE VIEW public.my_report AS SELECT type FROM ledgerhub_views.tally_counts"
    )
    second = await _generation(projections, lease, Tally, 2, [("b", 2)], active=False)
    await _swap(projections, lease, first, second, Tally.views)
    followed = await conn.fetch("SELECT type FROM public.my_report")
    third = await _generation(projections, lease, TallyV2, 3, [("c", 3)], active=False)
    with pytest.raises(ConfigError, match=r"its views cannot be applied: .*my_report"):
        await _swap(projections, lease, second, third, TallyV2.views)
    active, building = await projections.generations("tally")
    kept = await conn.fetch("SELECT type FROM public.my_report")
    assert [r["type"] for r in followed] == ["b"], "replaced in place: analysts' objects stay"
    assert (active and active.generation, building and building.generation) == (2, 3)
    assert [r["type"] for r in kept] == ["b"], "the failed swap changed nothing"


async def test_a_worker_recreates_views_an_upgrade_dropped_and_leaves_applied_ones_alone(
    dsn: str, store: EventStore, conn: asyncpg.Connection
) -> None:
    await store.append([event(f"e{i}") for i in range(3)])

    async def caught_up() -> bool:
        head = await conn.fetchval("SELECT max(position) FROM ledgerhub.events")
        position = await conn.fetchval(
            "SELECT g.position FROM ledgerhub.projection_generations AS g "
            "JOIN ledgerhub.projections AS p ON p.name = g.projection "
            "AND p.active_generation = g.generation WHERE p.name = 'tally'"
        )
        return bool(position == head)

    async def applied() -> list[asyncpg.Record]:
        return await conn.fetch(
            "SELECT name, applied_at, objects FROM ledgerhub.projection_views ORDER BY ordinal"
        )

    async with running(dsn, Tally):
        await wait_until(caught_up, what="tally to catch up")
    first = await applied()
    async with running(dsn, Tally):  # it starts as the first did, then applies one more event
        await store.append([event("e3")])
        await wait_until(caught_up, what="tally to catch up again")
    again = await applied()
    # What migration 0016 did to the views the core migrations had created.
    for row in reversed(first):
        for found in row["objects"]:
            kind, _, what = found.partition(" ")
            await conn.execute(f"DROP {kind} {what}")
    await conn.execute("DELETE FROM ledgerhub.projection_views")
    async with running(dsn, Tally):
        await wait_until(applied, what="the views to be recreated")
    rows = await _as_analyst(conn, "SELECT type, last FROM ledgerhub_views.tally_counts")
    assert [r["name"] for r in first] == ["tally_counts", "tally_on"]
    assert again == first, "unchanged views are not applied again"
    assert rows == [("stripe.charge.succeeded", 4)]


async def test_a_view_of_another_projection_is_empty_until_it_is_built_and_holds_no_swap_up(
    projections: ProjectionStore, conn: asyncpg.Connection
) -> None:
    share = await _lease(projections, "share")
    async with projections.batch(share) as batch:
        await batch.create_generation(1, Share.tables, 1, active=True, views=Share.views)
    read = "SELECT type, last, notes FROM ledgerhub_views.share_of_tally ORDER BY type"
    before = await _as_analyst(conn, read)
    tally = await _lease(projections, "tally")
    first = await _generation(projections, tally, Tally, 1, [("a", 1)], active=True)
    built = await _as_analyst(conn, read)
    second = await _generation(projections, tally, Tally, 2, [("b", 2)], active=False)
    await _swap(projections, tally, first, second, Tally.views)
    swapped = await _as_analyst(conn, read)
    assert before == []
    assert built == [("a", 1, 0)]
    assert swapped == [("b", 2, 0)]


def _declaring(views: Mapping[str, View], name: str = "tally") -> type[Projection]:
    return type("Declared", (Tally,), {"views": views, "name": name})


@pytest.mark.parametrize(
    ("views", "message"),
    [
        ({"x": View("SELECT * FROM {nope}")}, r"\{nope\} is neither \{as_of\} nor one of its"),
        ({"Bad-Name": View("SELECT 1 AS one")}, "must match"),
        ({"x": View("SELECT * FROM {ledger:journal}")}, "declares its columns"),
        ({"x": View("SELECT 1 AS one", columns="one int")}, "only a view that reads another"),
        ({"x": View("SELECT * FROM {tally:counts}", columns="t text")}, "name its own tables"),
    ],
)
def test_a_bad_view_declaration_is_refused_when_the_projection_is_checked(
    views: Mapping[str, View], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        _declaring(views).check()


async def test_two_projections_cannot_declare_one_view(projections: ProjectionStore) -> None:
    lease = await _lease(projections, "tally")
    await _generation(projections, lease, Tally, 1, active=True)
    other = _declaring(Tally.views, name="other")
    second = await _lease(projections, "other")
    with pytest.raises(ConfigError, match="view 'tally_counts' is projection 'tally'"):
        await _generation(projections, second, other, 1, active=True)
