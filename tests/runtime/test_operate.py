"""Operators' controls against a running worker process: parked events, replay, rebuild."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import asyncpg
import pytest

from hub.store import EventStore
from hub.store.projections import ProjectionStore
from hub.testing.postgres import Databases
from tests.factories import event
from tests.runtime.harness import ReadModel, Workers, cli, wait_until

COUNTS = 'ledgerhub_projections."count_by_type__counts"'


async def test_a_poison_event_parks_later_events_go_on_and_a_retry_after_the_fix_applies_it(
    store: EventStore, workers: Workers, model: ReadModel, dsn: str, tmp_path: Path
) -> None:
    workers.start(LEDGERHUB_BATCH_SIZE="4")
    results = await store.append([event(f"p{i}", data={"poison": i in (3, 9)}) for i in range(12)])
    poison = [results[3].position, results[9].position]
    await wait_until(model.caught_up, what="the projection to go past the poison events")

    applied = await model.applications()
    assert sorted(applied) == [p for p in range(1, 13) if p not in poison]
    listed = cli(dsn, tmp_path, "parked", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    parked = json.loads(listed.stdout)["parked"]
    assert [p["position"] for p in parked] == poison
    first = parked[0]
    assert first["error_type"] == "hub.errors.SkippableError"
    assert "poison event p3" in first["message"]
    assert "SkippableError" in first["traceback"]
    assert first["attempts"] >= 1
    assert first["status"] == "parked"

    # Retrying before the fix parks it again, with one more attempt on record.
    again = cli(dsn, tmp_path, "parked", "retry", str(first["id"]))
    assert again.returncode == 1
    assert again.stderr.startswith("ledgerhub: parked event")
    assert "poison" in again.stderr
    (tmp_path / "fixed").touch()
    fixed = cli(dsn, tmp_path, "parked", "retry", str(first["id"]))
    assert fixed.returncode == 0, fixed.stderr
    assert "resolved" in fixed.stdout
    skipped = cli(dsn, tmp_path, "parked", "skip", str(parked[1]["id"]))
    assert skipped.returncode == 0, skipped.stderr

    applied = await model.applications()
    assert poison[0] in applied
    assert poison[1] not in applied
    assert set(applied.values()) == {1}
    status = json.loads(cli(dsn, tmp_path, "status", "--json").stdout)["projections"]
    (mine,) = [s for s in status if s["name"] == "count_by_type"]
    assert mine["parked"] == 0
    assert mine["state"] == "running"
    assert mine["lag_events"] == 0
    history = json.loads(cli(dsn, tmp_path, "parked", "list", "--all", "--json").stdout)
    assert {p["position"]: p["status"] for p in history["parked"]} == {
        poison[0]: "resolved",
        poison[1]: "skipped",
    }


async def test_replay_of_a_range_gives_the_same_read_model(
    store: EventStore, workers: Workers, model: ReadModel, dsn: str, tmp_path: Path
) -> None:
    kinds = ("stripe.charge.succeeded", "stripe.refund.created")
    await store.append([event(f"r{i}", type=kinds[i % 2]) for i in range(40)])
    workers.start(LEDGERHUB_BATCH_SIZE="7")
    await wait_until(model.caught_up, what="the projection to catch up")
    before = await model.counts()

    replay = cli(dsn, tmp_path, "replay", "count_by_type", "--from", "5", "--to", "30")
    assert replay.returncode == 0, replay.stderr
    assert "done" in replay.stdout

    # the same, and the replay's own audit event (position 41: hub.domain.audit)
    assert await model.counts() == {**before, "audit.projection.replay": 1}
    applications = await model.applications()
    assert {p for p, n in applications.items() if n == 2} == set(range(5, 31)), (
        "exactly the range was applied a second time"
    )
    assert {p for p, n in applications.items() if n == 1} == set(range(1, 5)) | set(range(31, 42))


async def test_replay_and_rebuild_refuse_what_they_cannot_do(
    store: EventStore, workers: Workers, model: ReadModel, dsn: str, tmp_path: Path
) -> None:
    await store.append([event(f"x{i}") for i in range(3)])
    workers.start()
    await wait_until(model.caught_up, what="the projection to catch up")
    beyond = cli(dsn, tmp_path, "replay", "count_by_type", "--from", "1", "--to", "99")
    assert beyond.returncode == 1
    assert beyond.stderr.count("\n") == 1
    assert "only reached position 3" in beyond.stderr
    unknown = cli(dsn, tmp_path, "rebuild", "nope")
    assert unknown.returncode == 1
    assert "no projection named 'nope'" in unknown.stderr
    missing = cli(dsn, tmp_path, "parked", "retry", "999")
    assert missing.returncode == 1
    assert "no parked event 999" in missing.stderr


async def test_rebuild_while_readers_query_shows_the_old_state_until_the_swap(
    store: EventStore,
    workers: Workers,
    model: ReadModel,
    projections: ProjectionStore,
    dsn: str,
    tmp_path: Path,
) -> None:
    await store.append([event(f"b{i}") for i in range(30)])
    workers.start(LEDGERHUB_BATCH_SIZE="3", LEDGERHUB_TEST_BATCH_SLEEP="0.1")
    await wait_until(model.caught_up, what="the projection to catch up", within=30)
    # Make the current tables distinguishable from what a rebuild computes.
    await model.conn.execute(f"UPDATE {COUNTS} SET n = n + 1000")
    old, new = {"stripe.charge.succeeded": 1030}, {"stripe.charge.succeeded": 30}

    seen: list[tuple[dict[str, int], int]] = []
    reported: set[str] = set()
    stop = asyncio.Event()

    async def reader() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            while not stop.is_set():
                # In this order, so that "half built" is still true of what was read before.
                states = {s.state for s in await projections.status()}
                rows = await conn.fetch(f"SELECT type, n FROM {COUNTS}")
                built = await conn.fetchval(
                    "SELECT coalesce(max(done), 0) FROM ledgerhub.projection_jobs"
                )
                seen.append(({r["type"]: r["n"] for r in rows}, built))
                if 0 < built < 30:
                    reported.update(states)
                await asyncio.sleep(0.02)
        finally:
            await conn.close()

    reading = asyncio.create_task(reader())
    rebuild = await asyncio.to_thread(cli, dsn, tmp_path, "rebuild", "count_by_type")
    await asyncio.sleep(0.2)
    stop.set()
    await reading
    assert rebuild.returncode == 0, rebuild.stderr

    # the rebuild's own audit event (hub.domain.audit) is counted too, in the old tables or
    # the new ones: what is compared is the 30 events' counts
    seen = [({t: n for t, n in s.items() if not t.startswith("audit.")}, b) for s, b in seen]
    states = [state for state, _ in seen]
    assert all(state in (old, new) for state in states), "a reader saw a partial read model"
    switch = states.index(new)
    assert states[:switch] == [old] * switch
    assert states[switch:] == [new] * (len(states) - switch)
    assert any(state == old and 0 < built < 30 for state, built in seen), (
        "readers should have queried the old tables while the new ones were half built"
    )
    assert reported == {"rebuilding"}, "status says so while the new tables are built"
    assert await model.counts() == {**new, "audit.projection.rebuild": 1}
    assert set((await model.applications()).values()) == {1}, "fresh tables, applied once"
    generation = await model.conn.fetchval(
        "SELECT active_generation FROM ledgerhub.projections WHERE name = 'count_by_type'"
    )
    assert generation == 2


@pytest.mark.parametrize("notify", ["1", "0"], ids=["notify", "polling"])
async def test_no_event_is_missed_when_an_append_commits_late(
    store: EventStore, workers: Workers, model: ReadModel, dsn: str, notify: str
) -> None:
    # An append transaction that takes its time between taking the log's lock and committing.
    await model.conn.execute(
        """
        CREATE FUNCTION public.slow_append() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_sleep(1); RETURN NEW; END $$;
        CREATE TRIGGER slow_append BEFORE INSERT ON ledgerhub.events FOR EACH ROW
        WHEN (NEW.external_id = 'slow') EXECUTE FUNCTION public.slow_append();
        """
    )
    workers.start(LEDGERHUB_NOTIFY=notify, LEDGERHUB_BATCH_SIZE="2")
    await store.append([event("first")])
    await wait_until(model.caught_up, what="the projection to start")
    other = await EventStore.open(dsn)
    try:
        slow = asyncio.create_task(other.append([event("slow")]))

        async def slow_holds_the_lock() -> bool:  # its insert is in the trigger's pg_sleep
            return bool(
                await model.conn.fetchval(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE wait_event = 'PgSleep' AND datname = current_database()"
                )
            )

        await wait_until(slow_holds_the_lock, what="the slow append to hold the log's lock")
        later = [asyncio.create_task(store.append([event(f"later-{i}")])) for i in range(5)]
        await asyncio.gather(slow, *later)
    finally:
        await other.close()
    await store.append([event("last")])
    await wait_until(model.caught_up, what="the projection to catch up")
    applications = await model.applications()
    assert sorted(applications) == list(range(1, 9))
    assert set(applications.values()) == {1}


async def test_a_job_can_be_queued_without_waiting_and_looked_up(
    store: EventStore, workers: Workers, model: ReadModel, dsn: str, tmp_path: Path
) -> None:
    await store.append([event(f"q{i}") for i in range(4)])
    workers.start()
    await wait_until(model.caught_up, what="the projection to catch up")
    queued = cli(dsn, tmp_path, "rebuild", "count_by_type", "--no-wait")
    assert queued.returncode == 0, queued.stderr
    job_id = queued.stdout.strip().splitlines()[-1]

    async def finished() -> dict[str, object] | None:
        shown = cli(dsn, tmp_path, "job", job_id, "--json")
        assert shown.returncode == 0, shown.stderr
        job: dict[str, object] = json.loads(shown.stdout)
        return job if job["state"] == "done" else None

    job = await wait_until(finished, what="the queued rebuild to be run by the worker")
    # the 4 events and the rebuild's audit event (hub.domain.audit)
    assert (job["kind"], job["done"], job["total"]) == ("rebuild", 5, 5)
    assert await model.counts() == {"stripe.charge.succeeded": 4, "audit.projection.rebuild": 1}
    unknown = cli(dsn, tmp_path, "job", "12345")
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == "ledgerhub: no job 12345"


async def test_commands_on_an_unmigrated_database_say_to_migrate(
    databases: Databases, tmp_path: Path
) -> None:
    bare = await databases.create(migrated=False)
    try:
        for args in (["status"], ["worker"], ["parked", "list"]):
            done = cli(bare, tmp_path, *args)
            assert done.returncode == 1, args
            assert done.stderr.strip().endswith("run `ledgerhub migrate`"), done.stderr
    finally:
        await databases.drop(bare)
