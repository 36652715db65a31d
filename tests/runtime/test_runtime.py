"""The runtime in this process (real PostgreSQL): fencing, retries, the side-effect guard,
version changes, discovery."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import ClassVar

import pytest

from hub.domain.events import RecordedEvent
from hub.domain.projections import ProjectionState, ProjectionStatus
from hub.errors import ConfigError, LeaseLost, RetriableError
from hub.runtime.operate import follow_job
from hub.spi.projection import Context, Projection
from hub.spi.registry import discover
from hub.store import EventStore
from hub.store.jobs import Jobs
from hub.store.leases import Leases
from hub.store.parked import Parked
from hub.store.projections import ProjectionStore
from tests.factories import event
from tests.projections.count import CountByType, Mailer
from tests.runtime.harness import FAST_SETTINGS as FAST
from tests.runtime.harness import ReadModel, running, wait_until


async def test_a_stale_lease_holder_cannot_commit(
    projections: ProjectionStore, model: ReadModel
) -> None:
    await projections.register(CountByType.name, side_effects=False)
    first = Leases(projections, "first", ttl=0.3)
    second = Leases(projections, "second", ttl=5)
    lease = await first.acquire("count_by_type")
    assert lease is not None
    assert await second.acquire("count_by_type") is None, "a live lease cannot be taken"
    async with projections.batch(lease) as batch:
        await batch.create_generation(1, CountByType.tables, 1, active=True)

    await asyncio.sleep(0.4)  # the first holder stalls past its lease's expiry

    async def expired_batch() -> None:
        async with projections.batch(lease) as batch:  # expired, even though nobody took it
            await batch.advance(1, 7)

    with pytest.raises(LeaseLost):
        await expired_batch()
    taken = await second.acquire("count_by_type")
    assert taken is not None
    assert taken.token == lease.token + 1

    async def stale_batch() -> None:
        async with projections.batch(lease) as batch:
            await batch.conn.execute(
                f"INSERT INTO {CountByType.view('counts')} (type, n) VALUES ('stale', 1)"
            )
            await batch.advance(1, 9)

    with pytest.raises(LeaseLost):
        await stale_batch()
    assert await model.checkpoint() == 0
    assert await model.counts() == {}, "the stale batch's writes rolled back"
    assert await first.renew([lease]) == set(), "the stale holder learns it lost the lease"
    async with projections.batch(taken) as batch:
        await batch.advance(1, 3)
    assert await model.checkpoint() == 3


class Flaky(Projection):
    """Fails with RetriableError: `flaky` events twice, `down` events always."""

    name: ClassVar[str] = "flaky"
    tables: ClassVar[dict[str, str]] = {"done": "position bigint PRIMARY KEY"}
    calls: ClassVar[dict[str, int]] = {}

    async def handle(self, events: Sequence[RecordedEvent], ctx: Context) -> None:
        for e in events:
            self.calls[e.external_id] = self.calls.get(e.external_id, 0) + 1
            if e.external_id == "down" or (e.external_id == "flaky" and self.calls["flaky"] < 3):
                raise RetriableError(f"{e.external_id} is unavailable")
        await ctx.conn.execute(
            f"INSERT INTO {ctx.tables['done']} SELECT unnest($1::bigint[]) ON CONFLICT DO NOTHING",
            [e.position for e in events],
        )


async def test_retriable_errors_are_retried_then_parked(
    dsn: str, store: EventStore, projections: ProjectionStore, model: ReadModel
) -> None:
    Flaky.calls.clear()
    await store.append([event("ok-1"), event("flaky"), event("down"), event("ok-2")])
    async with running(dsn, Flaky):
        await wait_until(lambda: model.caught_up("flaky"), what="flaky to catch up")
    done = await model.conn.fetch('SELECT position FROM ledgerhub_projections."flaky__done"')
    assert sorted(r["position"] for r in done) == [1, 2, 4]
    (parked,) = await Parked(projections).find(projection="flaky")
    assert parked.position == 3
    assert parked.error_type == "hub.errors.RetriableError"
    assert parked.attempts == FAST.retry_attempts
    assert "down is unavailable" in parked.message


def _sent(workdir: Path) -> list[str]:
    path = workdir / "sent.log"
    return path.read_text().splitlines() if path.exists() else []


async def test_side_effects_run_live_but_in_replay_or_rebuild_only_with_send(
    dsn: str,
    store: EventStore,
    projections: ProjectionStore,
    model: ReadModel,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LEDGERHUB_TEST_DIR", str(tmp_path))
    await store.append([event(f"m{i}") for i in range(4)])
    jobs = Jobs(projections)
    async with running(dsn, Mailer):
        await wait_until(lambda: model.caught_up("mailer"), what="mailer to catch up")
        assert _sent(tmp_path) == [f"{p} live" for p in range(1, 5)]

        for kind, send in (("replay", False), ("rebuild", False)):
            job = await (
                jobs.enqueue("mailer", "replay", from_position=1, to_position=4, send=send)
                if kind == "replay"
                else jobs.enqueue("mailer", "rebuild", send=send)
            )
            assert (await asyncio.wait_for(follow_job(projections, job.id), 30)).state == "done"
        assert _sent(tmp_path) == [f"{p} live" for p in range(1, 5)], "nothing sent by accident"

        job = await jobs.enqueue("mailer", "replay", from_position=2, to_position=3, send=True)
        assert (await asyncio.wait_for(follow_job(projections, job.id), 30)).state == "done"
        job = await jobs.enqueue("mailer", "rebuild", send=True)
        assert (await asyncio.wait_for(follow_job(projections, job.id), 30)).state == "done"
    assert _sent(tmp_path)[4:] == ["2 replay", "3 replay"] + [f"{p} rebuild" for p in range(1, 5)]
    outbox = await model.conn.fetchval(
        'SELECT count(*) FROM ledgerhub_projections."mailer__outbox"'
    )
    assert outbox == 4


class CountByTypeV2(CountByType):
    """The same projection after a change that needs a rebuild."""

    version: ClassVar[int] = 2


async def test_a_new_version_is_rebuilt_and_swapped_in(
    dsn: str, store: EventStore, projections: ProjectionStore, model: ReadModel
) -> None:
    await store.append([event(f"v{i}") for i in range(5)])
    async with running(dsn, CountByType):
        await wait_until(model.caught_up, what="version 1 to catch up")
    await store.append([event(f"w{i}") for i in range(3)])
    (status,) = await projections.status()
    assert (status.state, status.version, status.holder) == ("stopped", 1, None)
    assert (status.position, status.head, status.lag_events) == (5, 8, 3)
    assert status.lag_seconds > 0

    async with running(dsn, CountByTypeV2):

        async def version_two() -> bool:
            (status,) = await projections.status()
            return status.version == 2 and status.lag_events == 0

        await wait_until(version_two, what="version 2 to be rebuilt and swapped in")
        (status,) = await projections.status()
        assert status.generation == 2
        assert status.state == "running"
    assert await model.counts() == {"stripe.charge.succeeded": 8}
    old = await model.conn.fetchval(
        "SELECT to_regclass('ledgerhub_projections.\"count_by_type__counts__g1\"')"
    )
    assert old is None, "the old generation's tables are dropped after the swap"


def test_discovery_finds_entry_points_and_import_paths() -> None:
    found = discover({"LEDGERHUB_PROJECTIONS": "tests.projections.count:CountByType, "})
    assert found["count_by_type"] is CountByType
    assert "event_counts" in found, "the built-in is registered as an entry point"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("tests.projections.count", "not of the form module:Class"),
        ("tests.projections.nowhere:X", "cannot load"),
        ("hub.errors:ConfigError", "not a Projection subclass"),
        (
            "tests.projections.count:CountByType,tests.runtime.test_runtime:CountByTypeV2",
            "two projections are named 'count_by_type'",
        ),
    ],
)
def test_discovery_refuses_broken_projections(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        discover({"LEDGERHUB_PROJECTIONS": spec})


def test_a_projection_definition_is_checked() -> None:
    class Bad(Projection):
        name: ClassVar[str] = "Bad-Name"

    class Undeclared(CountByType):
        async def send(self, events: Sequence[RecordedEvent], ctx: Context) -> None:
            """Calls outside without saying so."""

    class Unsent(CountByType):
        side_effects: ClassVar[bool] = True

    with pytest.raises(ConfigError, match="name must match"):
        Bad.check()
    for sneaky in (Undeclared, Unsent):
        with pytest.raises(ConfigError, match="side_effects = True"):
            sneaky.check()
    CountByType.check()
    Mailer.check()


class Broken(Projection):
    """Its table definition is not SQL, so every attempt to set it up fails."""

    name: ClassVar[str] = "broken"
    tables: ClassVar[dict[str, str]] = {"t": "this is not a column list"}

    async def handle(self, events: Sequence[RecordedEvent], ctx: Context) -> None:
        raise AssertionError("never reached")


async def test_a_projection_that_keeps_failing_backs_off_and_reports_failing(
    dsn: str, projections: ProjectionStore
) -> None:
    async with running(dsn, Broken, CountByType):

        async def states() -> dict[str, ProjectionState] | None:
            found = {s.name: s.state for s in await projections.status()}
            return found if found.get("broken") == "failing" else None

        found = await wait_until(states, what="broken to be reported failing")
        assert found["count_by_type"] == "running", "one failing projection stops no other"
    (broken,) = [s for s in await projections.status() if s.name == "broken"]
    assert broken.last_error is not None
    assert "syntax" in broken.last_error


async def test_a_worker_survives_its_connections_being_killed(
    dsn: str, store: EventStore, model: ReadModel
) -> None:
    await store.append([event(f"k{i}") for i in range(5)])
    async with running(dsn, CountByType):
        await wait_until(model.caught_up, what="the first events")
        killed = await model.conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = 'ledgerhub' "
            "AND pid <> pg_backend_pid()"
        )
        assert killed > 0
        async with await EventStore.open(dsn) as fresh:  # the fixture's connections died too
            await fresh.append([event(f"k{i}") for i in range(5, 12)])
        await wait_until(model.caught_up, what="the worker to recover and catch up")
    applications = await model.applications()
    assert sorted(applications) == list(range(1, 13))
    assert set(applications.values()) == {1}


class CountByTypeBrokenV2(CountByType):
    """A new version whose tables cannot be created."""

    version: ClassVar[int] = 2
    tables: ClassVar[dict[str, str]] = {**CountByType.tables, "extra": "not sql at all"}


async def test_a_new_version_that_cannot_be_built_fails_and_the_old_tables_stay(
    dsn: str, store: EventStore, projections: ProjectionStore, model: ReadModel
) -> None:
    await store.append([event(f"f{i}") for i in range(3)])
    async with running(dsn, CountByType):
        await wait_until(model.caught_up, what="version 1")
    await store.append([event("after")])
    async with running(dsn, CountByTypeBrokenV2):

        async def failing() -> ProjectionStatus | None:
            (status,) = await projections.status()
            return status if status.state == "failing" else None

        status = await wait_until(failing, what="the projection to be reported failing")
        assert status.last_error is not None
        assert "version 2 cannot be rebuilt" in status.last_error
        assert "'extra' cannot be created" in status.last_error
        (job, *_) = await Jobs(projections).recent()
        assert (job.kind, job.state) == ("rebuild", "failed")
    (status,) = await projections.status()
    assert (status.generation, status.version, status.position) == (1, 1, 3), (
        "the old version's tables are left as they were, not fed by the new code"
    )
    assert await model.counts() == {"stripe.charge.succeeded": 3}


def test_discovery_imports_only_the_named_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    group = "ledgerhub.projections"
    installed = [
        EntryPoint("count_by_type", "tests.projections.count:CountByType", group),
        EntryPoint("broken", "tests.projections.nowhere:Broken", group),
        EntryPoint("misnamed", "tests.projections.count:Mailer", group),
    ]
    monkeypatch.setattr("hub.spi.registry.entry_points", lambda group: [e for e in installed])
    assert list(discover({}, names=["count_by_type"])) == ["count_by_type"]
    with pytest.raises(ConfigError, match="cannot load"):
        discover({}, names=["count_by_type", "broken"])
    with pytest.raises(ConfigError, match="entry point's name must be the projection's name"):
        discover({}, names=["misnamed"])


class RefundsOnly(Projection):
    """Wants one event type; records the positions it was given."""

    name: ClassVar[str] = "refunds_only"
    event_types: ClassVar[frozenset[str]] = frozenset({"stripe.refund.created"})
    tables: ClassVar[dict[str, str]] = {"given": "position bigint PRIMARY KEY, type text"}

    async def handle(self, events: Sequence[RecordedEvent], ctx: Context) -> None:
        await ctx.conn.executemany(
            f"INSERT INTO {ctx.tables['given']} VALUES ($1, $2) ON CONFLICT DO NOTHING",
            [(e.position, e.type) for e in events],
        )


async def test_a_projection_gets_only_the_types_it_wants_and_its_checkpoint_reaches_the_head(
    dsn: str, store: EventStore, projections: ProjectionStore, model: ReadModel
) -> None:
    kinds = ["stripe.refund.created", "stripe.charge.succeeded", "stripe.charge.succeeded"]
    await store.append([event(f"t{i}", type=kinds[i % 3]) for i in range(11)])
    async with running(dsn, RefundsOnly):
        await wait_until(lambda: model.caught_up("refunds_only"), what="refunds_only")
    rows = await model.conn.fetch(f"SELECT position, type FROM {RefundsOnly.view('given')}")
    assert sorted(r["position"] for r in rows) == [1, 4, 7, 10]
    assert {r["type"] for r in rows} == {"stripe.refund.created"}
    (status,) = await projections.status()
    assert (status.position, status.lag_events) == (11, 0)
