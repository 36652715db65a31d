"""Projections partitioned by tenant (real PostgreSQL): K = 4 partitions shared by several
workers apply each event exactly once, each tenant's events in position order; partitions spread
over workers and are taken over from a killed one; a rebuild swaps only when every partition
has caught up; changing K rebuilds; replays, parked events and status per partition."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import asyncpg
import pytest

from hub.domain.events import NewEvent
from hub.runtime.operate import follow_job
from hub.runtime.settings import RuntimeSettings
from hub.runtime.worker import Worker, fair_share
from hub.store import EventStore
from hub.store.jobs import Jobs
from hub.store.parked import Parked
from hub.store.projections import ProjectionStore, tenant_hash, tenant_partition
from tests.factories import event
from tests.runtime.harness import FAST_SETTINGS, Workers, cli, pid_of, wait_until
from tests.runtime.partitioned import TenantOrder
from tests.runtime.test_http import Api
from tests.runtime.test_http import api as api  # the fixture

K = TenantOrder.partitions
TENANTS = [f"t{i:02d}" for i in range(12)]
PROJECTION = "tests.runtime.partitioned:TenantOrder"
SEEN = 'ledgerhub_projections."tenant_order__seen"'


def _log(n: int, offset: int = 0) -> list[NewEvent]:
    """``n`` events of the tenants in an irregular interleaving (the same for the same offset)."""
    rng = random.Random(offset)
    return [event(f"e{offset + i}", tenant=rng.choice(TENANTS)) for i in range(n)]


async def _append(store: EventStore, events: list[NewEvent]) -> None:
    for start in range(0, len(events), 500):
        await store.append(events[start : start + 500])


def _settings(**partitions: int) -> RuntimeSettings:
    return FAST_SETTINGS.model_copy(update={"partitions": partitions})


@contextlib.asynccontextmanager
async def _workers(
    dsn: str, count: int, settings: RuntimeSettings | None = None, *, only: Iterable[int] = ()
) -> AsyncIterator[list[Worker]]:
    """``count`` workers in this event loop, each with its own pool (its own connections);
    ``only``: the partitions they may take (default: all)."""
    workers = [Worker(dsn, [TenantOrder], settings or FAST_SETTINGS) for _ in range(count)]
    allowed = set(only)
    for worker in workers:
        if allowed:
            worker.units = [u for u in worker.units if u[1] in allowed]
    tasks = [asyncio.create_task(w.run()) for w in workers]
    try:
        yield workers
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _checkpoints(conn: asyncpg.Connection) -> dict[int, int]:
    """Partition -> checkpoint in the active generation."""
    rows = await conn.fetch(
        "SELECT g.partition, g.position FROM ledgerhub.projection_generations AS g "
        "JOIN ledgerhub.projections AS p ON p.name = g.projection "
        "AND p.active_generation = g.generation WHERE p.name = 'tenant_order'"
    )
    return {r["partition"]: r["position"] for r in rows}


async def _caught_up(conn: asyncpg.Connection, partitions: int = K) -> bool:
    head = await conn.fetchval("SELECT coalesce(max(position), 0) FROM ledgerhub.events")
    found = await _checkpoints(conn)
    return len(found) == partitions and set(found.values()) == {head}


async def _holders(conn: asyncpg.Connection) -> dict[int, str]:
    rows = await conn.fetch(
        "SELECT partition, holder FROM ledgerhub.projection_leases "
        "WHERE projection = 'tenant_order' AND expires_at > clock_timestamp()"
    )
    return {r["partition"]: r["holder"] for r in rows}


async def _exactly_once_in_order(conn: asyncpg.Connection, total: int) -> list[asyncpg.Record]:
    """Assert that the active generation applied events 1..total once each, every tenant's in
    position order; return the rows."""
    rows = await conn.fetch(
        f"SELECT position, tenant, seq, previous, applications, pid FROM {SEEN} ORDER BY position"
    )
    assert [r["position"] for r in rows] == list(range(1, total + 1))
    assert {r["applications"] for r in rows} == {1}, "some event was applied more than once"
    last: dict[str, tuple[int, int]] = {}
    for row in rows:
        seq, previous = last.get(row["tenant"], (0, 0))
        assert (row["seq"], row["previous"]) == (seq + 1, previous), (
            f"tenant {row['tenant']}: event {row['position']} applied out of order"
        )
        last[row["tenant"]] = (row["seq"], row["position"])
    return rows


def test_tenants_cover_every_partition() -> None:
    """The test log exercises all four partitions (else the tests below prove less)."""
    assert {tenant_partition(t, K) for t in TENANTS} == set(range(K))


def test_partitions_are_equal_ranges_of_the_hash() -> None:
    tenants = [*TENANTS, "default", "ünïcode-tenant", "x" * 60] + [f"n{i}" for i in range(500)]
    ordered = sorted(tenants, key=tenant_hash)
    for k in (1, 2, 3, 4, 7, 256):
        parts = [tenant_partition(t, k) for t in ordered]
        assert parts == sorted(parts), "a partition is one range of the hash"
        assert all(0 <= p < k for p in parts)
        assert all(tenant_hash(t) * k // 2**32 == tenant_partition(t, k) for t in tenants)
    assert len({tenant_partition(t, 4) for t in tenants}) == 4


def test_a_workers_fair_share_is_rounded_up() -> None:
    assert [fair_share(4, m) for m in (0, 1, 2, 3, 4, 5)] == [4, 4, 2, 2, 1, 1]


def test_partitions_setting_names_projections() -> None:
    settings = RuntimeSettings.from_env({"LEDGERHUB_PARTITIONS": "tenant_order=8, ledger = 2"})
    assert settings.partitions == {"tenant_order": 8, "ledger": 2}
    assert settings.partitions_of(TenantOrder) == 8
    assert RuntimeSettings.from_env({}).partitions_of(TenantOrder) == TenantOrder.partitions
    for bad in ("tenant_order", "tenant_order=0", "tenant_order=257", "=3"):
        with pytest.raises(Exception, match="LEDGERHUB_PARTITIONS"):
            RuntimeSettings.from_env({"LEDGERHUB_PARTITIONS": bad})


async def test_the_tenant_hash_is_the_same_in_python_and_postgresql(dsn: str) -> None:
    tenants = [*TENANTS, "default", "ünïcode-tenant", "acme", "x" * 60] + [
        f"tenant-{i}" for i in range(200)
    ]
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT t, ledgerhub.tenant_hash(t) AS h, ledgerhub.tenant_partition(t, 4) AS p4, "
            "ledgerhub.tenant_partition(t, 7) AS p7 FROM unnest($1::text[]) AS t",
            tenants,
        )
    finally:
        await conn.close()
    for row in rows:
        tenant = row["t"]
        assert row["h"] == tenant_hash(tenant)
        assert (row["p4"], row["p7"]) == (tenant_partition(tenant, 4), tenant_partition(tenant, 7))


async def test_three_workers_share_four_partitions_each_event_once_in_tenant_order(
    dsn: str, store: EventStore, projections: ProjectionStore
) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await _append(store, _log(300))
        async with _workers(dsn, 2) as first_two:

            async def two_and_two() -> bool:
                return sorted(len(w.running_partitions) for w in first_two) == [2, 2]

            await wait_until(two_and_two, what="two workers to hold 2 partitions each")
            # A third worker: rounding up (4 / 3 -> 2) alone would leave it idle at 2 + 2 + 0.
            async with _workers(dsn, 1) as third:
                workers = first_two + third

                async def spread() -> bool:
                    counts = sorted(len(w.running_partitions) for w in workers)
                    return counts == [1, 1, 2] and len(await _holders(conn)) == K

                await wait_until(spread, what="the 4 partitions to spread 2/1/1 over 3 workers")
                await _append(store, _log(300, offset=300))
                await wait_until(lambda: _caught_up(conn), what="every partition to reach the head")
                await _exactly_once_in_order(conn, 600)
                held = {p: w.holder for w in workers for _, p in w.running_partitions}
                assert sorted(held) == list(range(K))

                (status,) = await projections.status()
                assert [p.partition for p in status.partitions] == list(range(K))
                assert {p.holder for p in status.partitions} == {w.holder for w in workers}
                assert all(p.position == 600 and p.state == "running" for p in status.partitions)
                assert (status.position, status.lag_events, status.state) == (600, 0, "running")
                assert status.holder == status.partitions[0].holder
    finally:
        await conn.close()


async def test_worker_processes_share_partitions_and_take_over_a_killed_ones(
    dsn: str, store: EventStore, workers: Workers, tmp_path: Path
) -> None:
    conn = await asyncpg.connect(dsn)
    slow = {
        "LEDGERHUB_PROJECTIONS": PROJECTION,
        "LEDGERHUB_BATCH_SIZE": "10",
        "LEDGERHUB_TEST_BATCH_SLEEP": "0.05",
    }
    command = ("worker", "--projection", "tenant_order", "--no-sync")
    try:
        await _append(store, _log(400))
        one = workers.start(*command, **slow)
        two = workers.start(*command, **slow)

        async def both_work() -> bool:
            pids = [pid_of(h) for h in (await _holders(conn)).values()]
            if sorted(pids.count(p.pid) for p in (one, two)) != [2, 2]:
                return False
            if await conn.fetchval("SELECT to_regclass($1)", SEEN) is None:
                return False  # the first runner has not created the projection's tables yet
            query = f"SELECT EXISTS (SELECT FROM {SEEN} WHERE pid = $1)"
            return bool(await conn.fetchval(query, one.pid))

        await wait_until(
            both_work,
            what="each worker process to hold 2 partitions, the first to apply some",
            within=30,
        )
        os.kill(one.pid, signal.SIGKILL)
        one.wait(timeout=10)

        async def two_holds_all() -> bool:
            holders = await _holders(conn)
            return len(holders) == K and {pid_of(h) for h in holders.values()} == {two.pid}

        await wait_until(two_holds_all, what="the survivor to take every partition", within=20)
        await _append(store, _log(100, offset=400))
        await wait_until(lambda: _caught_up(conn), what="every partition to reach the head")
        rows = await _exactly_once_in_order(conn, 500)
        assert {r["pid"] for r in rows} == {one.pid, two.pid}

        shown = cli(dsn, tmp_path, "status", "--json", **slow)
        assert shown.returncode == 0, shown.stderr
        (status,) = json.loads(shown.stdout)["projections"]
        assert [p["partition"] for p in status["partitions"]] == list(range(K))
        assert all(pid_of(p["holder"]) == two.pid for p in status["partitions"])
        assert all(p["position"] == 500 and p["lag_events"] == 0 for p in status["partitions"])
        table = cli(dsn, tmp_path, "status", **slow)
        assert table.returncode == 0, table.stderr
        lines = table.stdout.splitlines()
        start = lines.index("\t".join(
            ("projection", "partition", "state", "position", "lag", "lag_s", "parked", "holder")
        ))  # fmt: skip
        parts = [line.split("\t") for line in lines[start + 1 :]]
        assert [p[:4] for p in parts] == [
            ["tenant_order", f"{p}/{K}", "running", "500"] for p in range(K)
        ]
    finally:
        await conn.close()


async def test_a_rebuild_swaps_only_when_every_partition_has_caught_up(
    dsn: str, store: EventStore, projections: ProjectionStore
) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await _append(store, _log(200))
        async with _workers(dsn, 1):
            await wait_until(lambda: _caught_up(conn), what="generation 1 to catch up")
        jobs = Jobs(projections)
        job = await jobs.enqueue("tenant_order", "rebuild")
        # Partition 3 has no worker: the other three build their parts and must not swap.
        async with _workers(dsn, 1, only=(0, 1, 2)):

            async def three_built() -> bool:
                rows = await conn.fetch(
                    "SELECT partition, position FROM ledgerhub.projection_generations "
                    "WHERE projection = 'tenant_order' AND generation = 2"
                )
                return {r["partition"]: r["position"] for r in rows} == {
                    0: 200,
                    1: 200,
                    2: 200,
                    3: 0,
                }

            await wait_until(three_built, what="partitions 0-2 to build generation 2")
            # Each of them checked for the swap in the transaction that reached the head.
            assert (await jobs.get(job.id)).state == "running"
            active = await conn.fetchval(
                "SELECT active_generation FROM ledgerhub.projections WHERE name = 'tenant_order'"
            )
            assert active == 1, "swapped before partition 3 was built"
            (status,) = await projections.status()
            assert status.state == "stopped", "partition 3 has no worker"
            assert [p.state for p in status.partitions] == ["rebuilding"] * 3 + ["stopped"]

            async with _workers(dsn, 1):
                finished = await follow_job(projections, job.id, poll=0.05)
                assert finished.state == "done"
        assert await _checkpoints(conn) == dict.fromkeys(range(K), 200)
        active = await conn.fetchval(
            "SELECT active_generation FROM ledgerhub.projections WHERE name = 'tenant_order'"
        )
        assert active == 2
        await _exactly_once_in_order(conn, 200)
    finally:
        await conn.close()


async def test_changing_the_number_of_partitions_rebuilds(
    dsn: str, store: EventStore, projections: ProjectionStore
) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await _append(store, _log(150))
        async with _workers(dsn, 1, _settings(tenant_order=1)):
            await wait_until(lambda: _caught_up(conn, 1), what="one partition to catch up")
        (status,) = await projections.status()
        assert [p.partition for p in status.partitions] == [0]

        async with _workers(dsn, 2):  # the class's K = 4

            async def rebuilt() -> bool:
                active = await conn.fetchval(
                    "SELECT active_generation FROM ledgerhub.projections "
                    "WHERE name = 'tenant_order'"
                )
                return active == 2 and await _caught_up(conn, K)

            await wait_until(rebuilt, what="a rebuild into 4 partitions")
            await _append(store, _log(50, offset=150))
            await wait_until(lambda: _caught_up(conn, K), what="the 4 partitions to go on")
        await _exactly_once_in_order(conn, 200)
        (status,) = await projections.status()
        assert [p.partition for p in status.partitions] == list(range(K))
        (done,) = await Jobs(projections).recent()
        assert (done.kind, done.state, done.partitions) == ("rebuild", "done", K)
    finally:
        await conn.close()


async def test_replays_and_parked_events_per_partition(
    dsn: str, store: EventStore, projections: ProjectionStore
) -> None:
    TenantOrder.fixed = False
    conn = await asyncpg.connect(dsn)
    poisoned = "t03"
    try:
        await _append(store, _log(120))
        await store.append([event("poison", tenant=poisoned, data={"poison": True})])
        async with _workers(dsn, 2):
            await wait_until(lambda: _caught_up(conn), what="every partition to reach the head")
            (parked,) = await Parked(projections).find(projection="tenant_order")
            assert (parked.position, parked.partition) == (121, tenant_partition(poisoned, K))
            (status,) = await projections.status()
            assert [p.parked for p in status.partitions] == [
                int(p == parked.partition) for p in range(K)
            ]
            assert status.parked == 1

            jobs = Jobs(projections)
            everywhere = await jobs.enqueue(
                "tenant_order", "replay", from_position=1, to_position=60
            )
            assert (await follow_job(projections, everywhere.id, poll=0.05)).state == "done"
            one = tenant_partition("t00", K)
            only = await jobs.enqueue(
                "tenant_order", "replay", from_position=61, to_position=120, partition=one
            )
            done = await follow_job(projections, only.id, poll=0.05)
            assert (done.state, done.done, done.total) == ("done", 60, 60)

            TenantOrder.fixed = True
            await Parked(projections).request_retry(parked.id)

            async def resolved() -> bool:
                return (await Parked(projections).get(parked.id)).status == "resolved"

            await wait_until(resolved, what="the parked event to be retried")
        rows = await conn.fetch(f"SELECT position, tenant, applications FROM {SEEN}")
        for row in rows:
            replayed = row["position"] <= 60 or (
                row["position"] <= 120 and tenant_partition(row["tenant"], K) == one
            )
            assert row["applications"] == (2 if replayed else 1), dict(row)
        assert len(rows) == 121
    finally:
        TenantOrder.fixed = False
        await conn.close()


async def test_the_projections_route_lists_partitions_and_replays_one(
    dsn: str, store: EventStore, api: Api
) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await _append(store, _log(80))
        async with _workers(dsn, 2):
            await wait_until(lambda: _caught_up(conn), what="every partition to reach the head")
            status, body, _ = await api.call("GET", "/v1/projections")
            assert status == 200
            (shown,) = body["projections"]
            assert shown["position"] == shown["head"] == 80
            assert [p["partition"] for p in shown["partitions"]] == list(range(K))
            assert {p["state"] for p in shown["partitions"]} == {"running"}
            assert set(shown["partitions"][0]) >= {
                "partition", "state", "position", "lag_events", "lag_seconds", "parked",
                "holder", "lease_expires_at", "last_error",
            }  # fmt: skip

            status, job, _ = await api.call(
                "POST",
                "/v1/projections/tenant_order/replay",
                json={"from": 1, "to": 80, "partition": 2},
            )
            assert status == 202, job
            assert job["partition"] == 2
            done = await follow_job(ProjectionStore.over(store), job["id"], poll=0.05)
            assert done.state == "done"
            status, problem, _ = await api.call(
                "POST",
                "/v1/projections/tenant_order/replay",
                json={"from": 1, "to": 80, "partition": K},
            )
            assert status == 422, problem
        rows = await conn.fetch(f"SELECT tenant, applications FROM {SEEN}")
        assert {(tenant_partition(r["tenant"], K) == 2, r["applications"]) for r in rows} == {
            (True, 2),
            (False, 1),
        }
    finally:
        await conn.close()


async def test_workers_that_disagree_on_k_leave_the_projection_until_they_agree(
    dsn: str, store: EventStore, projections: ProjectionStore
) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await _append(store, _log(100))
        async with _workers(dsn, 1, _settings(tenant_order=4)) as four:
            async with _workers(dsn, 1, _settings(tenant_order=1)) as one:
                both = four + one

                async def both_refuse() -> bool:
                    return (
                        all(w.disputed for w in both)
                        and not any(w.running_partitions for w in both)
                        and not await _holders(conn)
                    )

                await wait_until(both_refuse, what="both workers to leave tenant_order alone")
                assert four[0].disputed == {"tenant_order": (one[0].holder, 1)}
                assert one[0].disputed == {"tenant_order": (four[0].holder, 4)}
                (status,) = await projections.status()
                assert status.state == "stopped"
            # The worker of K = 1 is gone: the other runs every partition (rebuilding into 4
            # partitions if the first generation had been made with 1).

            async def four_runs_all() -> bool:
                return not four[0].disputed and len(four[0].running_partitions) == K

            await wait_until(four_runs_all, what="the K = 4 worker to run every partition")
            await _append(store, _log(20, offset=100))
            await wait_until(lambda: _caught_up(conn, K), what="the K = 4 worker to catch up")
        await _exactly_once_in_order(conn, 120)
    finally:
        await conn.close()
