"""Worker processes dying, pausing and competing: every event applied exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from pathlib import Path

import asyncpg

from hub.domain.events import NewEvent
from hub.store import EventStore
from tests.factories import event
from tests.runtime.harness import (
    ReadModel,
    Workers,
    cli,
    overlaps,
    pid_of,
    wait_until,
)


def _types(n: int, offset: int = 0) -> list[NewEvent]:
    kinds = ("stripe.charge.succeeded", "stripe.refund.created", "stripe.payout.paid")
    return [event(f"e{offset + i}", type=kinds[i % 3]) for i in range(n)]


async def _caught_up_exactly_once(model: ReadModel, total: int) -> dict[int, int]:
    await wait_until(model.caught_up, what="the projection to reach the head")
    applications = await model.applications()
    assert sorted(applications) == list(range(1, total + 1))
    assert set(applications.values()) == {1}, "some event was applied more than once"
    assert sum((await model.counts()).values()) == total
    return applications


async def test_kill_9_mid_batch_then_takeover_applies_every_event_exactly_once(
    store: EventStore, workers: Workers, model: ReadModel, tmp_path: Path
) -> None:
    await store.append(_types(60))
    # Batches of 5; whichever worker applies positions 31-35 first writes their rows and never
    # commits them: it is killed there, with 1-30 committed.
    held = {"LEDGERHUB_BATCH_SIZE": "5", "LEDGERHUB_TEST_HOLD_AT": "live:33"}
    first = workers.start(**held)
    second = workers.start(**held)

    async def holding() -> list[subprocess.Popen[bytes]]:
        return [w for w in (first, second) if (tmp_path / f"held-{w.pid}-31-35").exists()]

    [victim] = await wait_until(holding, what="a worker to hold its batch 31-35")
    survivor = second if victim is first else first
    holder = await model.holder()
    assert holder is not None
    assert pid_of(holder) == victim.pid, "it holds the lease, stuck in the batch"
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=10)

    assert await model.checkpoint() == 30, "the killed batch must not have committed"
    applications = await model.applications()
    assert sorted(applications) == list(range(1, 31)), "its writes rolled back"

    async def survivor_holds() -> bool:
        holder = await model.holder()
        return holder is not None and pid_of(holder) == survivor.pid

    await wait_until(survivor_holds, what="the survivor to take over", within=20)
    await store.append(_types(10, offset=60))
    await _caught_up_exactly_once(model, 70)
    assert await model.handled_by(35) == survivor.pid


async def test_a_killed_workers_projections_are_taken_over_and_spread(
    store: EventStore, workers: Workers, model: ReadModel
) -> None:
    both = "tests.projections.count:CountByType,tests.projections.count:Mailer"
    await store.append(_types(12))
    command = ("worker", "--projection", "count_by_type", "--projection", "mailer")
    one = workers.start(*command, LEDGERHUB_PROJECTIONS=both)
    two = workers.start(*command, LEDGERHUB_PROJECTIONS=both)

    async def spread() -> bool:
        holders = {await model.holder("count_by_type"), await model.holder("mailer")}
        return None not in holders and len(holders) == 2

    await wait_until(spread, what="each worker to hold one projection")
    os.kill(one.pid, signal.SIGKILL)
    one.wait(timeout=10)

    async def all_on_two() -> bool:
        holders = {await model.holder("count_by_type"), await model.holder("mailer")}
        return holders == {h for h in holders if h and pid_of(h) == two.pid} and len(holders) == 1

    await wait_until(all_on_two, what="the survivor to take both projections", within=20)
    await store.append(_types(5, offset=12))
    await _caught_up_exactly_once(model, 17)
    await wait_until(lambda: model.caught_up("mailer"), what="mailer to catch up")


async def test_two_workers_never_run_the_same_projection_at_once(
    store: EventStore, workers: Workers, model: ReadModel, tmp_path: Path
) -> None:
    settings = {"LEDGERHUB_BATCH_SIZE": "3", "LEDGERHUB_TEST_BATCH_SLEEP": "0.05"}
    procs = [workers.start(**settings) for _ in range(3)]
    total = 0
    for round_ in range(6):
        await store.append(_types(15, offset=total))
        total += 15

        async def live_holder() -> subprocess.Popen[bytes] | None:
            holder = await model.holder()
            return next((p for p in procs if holder and p.pid == pid_of(holder)), None)

        victim = await wait_until(live_holder, what="a live worker to hold the lease", within=20)
        await asyncio.sleep(0.2)  # let it get into a batch (or two) of this round's events
        # Hand the lease around: stop the holder, gracefully or not, and start another worker.
        victim.send_signal(signal.SIGKILL if round_ % 2 else signal.SIGTERM)
        victim.wait(timeout=10)
        procs.remove(victim)
        procs.append(workers.start(**settings))
    await _caught_up_exactly_once(model, total)
    assert not overlaps(tmp_path), "two processes ran the handler at once"
    pids = {
        r["pid"]
        for r in await model.conn.fetch(
            'SELECT DISTINCT pid FROM ledgerhub_projections."count_by_type__seen"'
        )
    }
    assert len(pids) >= 3, "the lease should have changed hands"


async def test_a_paused_worker_cannot_commit_after_its_lease_was_taken_over(
    store: EventStore, workers: Workers, model: ReadModel, tmp_path: Path
) -> None:
    await store.append(_types(40))
    # Batches of 5; the first worker writes the rows of 11-15 and waits for a file to go on.
    held = {"LEDGERHUB_BATCH_SIZE": "5", "LEDGERHUB_TEST_HOLD_AT": "live:13"}
    first = workers.start(**held)
    holder = await wait_until(model.holder, what="the first worker to take the lease")
    assert pid_of(holder) == first.pid

    async def holding() -> bool:
        return (tmp_path / f"held-{first.pid}-11-15").exists()

    await wait_until(holding, what="the first worker to hold its batch 11-15")
    os.kill(first.pid, signal.SIGSTOP)  # frozen mid-batch: not dead, its socket stays open
    assert await model.checkpoint() == 10
    second = workers.start(**held)  # the hold is claimed: its batches pass

    async def second_holds() -> bool:
        holder = await model.holder()
        return holder is not None and pid_of(holder) == second.pid

    await wait_until(second_holds, what="the second worker to take over", within=20)
    await _caught_up_exactly_once(model, 40)
    assert await model.handled_by(15) == second.pid

    (tmp_path / "release").touch()
    os.kill(first.pid, signal.SIGCONT)  # it wakes up and tries to commit its stale batch
    await store.append(_types(5, offset=40))

    async def first_gave_up() -> bool:  # its batch failed, then it stopped the projection
        log = (tmp_path / "worker-0.log").read_bytes()
        return b"lost the lease of count_by_type" in log

    await wait_until(first_gave_up, what="the woken worker to find its lease lost")
    await _caught_up_exactly_once(model, 45)


async def test_serve_runs_workers_that_share_projections_with_worker_processes(
    store: EventStore, workers: Workers, model: ReadModel
) -> None:
    await store.append(_types(8))
    serve = workers.start("serve", "--port", "0")

    async def serve_holds() -> bool:
        holder = await model.holder()
        return holder is not None and pid_of(holder) == serve.pid

    await wait_until(serve_holds, what="the workers inside serve to take the projection")
    await wait_until(model.caught_up, what="serve's workers to catch up")
    standby = workers.start()
    os.kill(serve.pid, signal.SIGKILL)
    serve.wait(timeout=10)

    async def standby_holds() -> bool:
        holder = await model.holder()
        return holder is not None and pid_of(holder) == standby.pid

    await wait_until(standby_holds, what="a worker process to take over from serve", within=20)
    await store.append(_types(4, offset=8))
    applications = await _caught_up_exactly_once(model, 12)
    assert len(applications) == 12


async def test_a_rebuild_interrupted_by_kill_9_is_resumed_by_the_next_holder(
    store: EventStore, workers: Workers, model: ReadModel, dsn: str, tmp_path: Path
) -> None:
    await store.append(_types(30))
    # Batches of 5; the first worker's rebuild batch holding position 16 writes its rows and
    # never commits: it is killed there, with positions 1-15 of the new generation committed.
    first = workers.start(LEDGERHUB_BATCH_SIZE="5", LEDGERHUB_TEST_HOLD_AT="rebuild:16")
    await wait_until(model.caught_up, what="the projection to catch up", within=30)
    queued = cli(dsn, tmp_path, "rebuild", "count_by_type", "--no-wait")
    assert queued.returncode == 0, queued.stderr
    job_id = int(queued.stdout.split()[-1])
    total = await model.head()
    assert total == 31, "the 30 events and the rebuild's audit event"

    async def held() -> bool:
        return (tmp_path / f"held-{first.pid}-16-20").exists()

    await wait_until(held, what="the first worker to hold its rebuild batch 16-20")
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=10)

    async def job() -> asyncpg.Record:
        row = await model.conn.fetchrow(
            "SELECT state, done, holder FROM ledgerhub.projection_jobs WHERE id = $1", job_id
        )
        assert row is not None, f"rebuild job {job_id} vanished"
        return row

    halfway = await job()
    assert (halfway["state"], halfway["done"]) == ("running", 15), "the held batch rolled back"
    assert pid_of(halfway["holder"]) == first.pid
    second = workers.start(LEDGERHUB_BATCH_SIZE="5")

    async def finished() -> asyncpg.Record | None:
        row = await job()
        return row if row["state"] == "done" else None

    done = await wait_until(finished, what="the rebuild to finish after the kill", within=30)
    assert pid_of(done["holder"]) == second.pid, "the second worker finished it"
    generation = await model.conn.fetchval(
        "SELECT active_generation FROM ledgerhub.projections WHERE name = 'count_by_type'"
    )
    assert generation == 2, "resumed into the same new generation, not started over"
    await _caught_up_exactly_once(model, total)
    handled = {p: await model.handled_by(p) for p in range(1, total + 1)}
    assert {p for p, pid in handled.items() if pid == first.pid} == set(range(1, 16))
    assert {p for p, pid in handled.items() if pid == second.pid} == set(range(16, total + 1))
