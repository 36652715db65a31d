"""Replay throughput: raw read+decode of the log against the runtime rebuilding a projection.

    python ops/bench/replay.py [--events 50000] [--batch 1000] [--dsn postgresql://…]

Without --dsn (or LEDGERHUB_BENCH_DSN) it uses the embedded PostgreSQL under LEDGERHUB_HOME.
A fresh database is created for the run and dropped after. In one run, on the same data:

- raw read+decode: ``EventStore.read_after`` pages through the whole log (SQL, then each row
  decoded into a ``RecordedEvent``), and the same without pydantic (asyncpg + orjson only);
- runtime catch-up: a worker runs ``event_counts`` (count per tenant, source and type) from an
  empty checkpoint;
- runtime rebuild: ``ledgerhub rebuild event_counts`` as a job: fresh tables from position 0,
  checkpoint and read-model writes committed per batch, swapped in at the end.

It prints the rates and rebuild / read+decode (target >= 0.5x).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import time
from datetime import UTC, datetime

import asyncpg
import orjson
from scratch import scratch_database

from hub.domain.events import NewEvent
from hub.runtime.operate import follow_job
from hub.runtime.settings import RuntimeSettings
from hub.runtime.worker import Worker
from hub.store import EventStore
from hub.store.jobs import Jobs
from hub.store.projections import ProjectionStore
from projections.event_counts import EventCounts

TYPES = ("stripe.charge.succeeded", "stripe.refund.created", "stripe.payout.paid")
DATA = {
    "id": "ch_3MmlLrLkdIwHu7ix0snN0B15",
    "amount": 1099,
    "currency": "usd",
    "customer": "cus_NffrFeUfNV2Hib",
    "metadata": {"order_id": "6735", "channel": "web"},
    "status": "succeeded",
}


async def fill(store: EventStore, n: int, batch: int) -> None:
    at = datetime.now(UTC)
    for start in range(0, n, batch):
        await store.append(
            [
                NewEvent(
                    source=f"stripe:acct_{i % 4}",
                    external_id=f"evt_{i}",
                    type=TYPES[i % len(TYPES)],
                    occurred_at=at,
                    data=DATA,
                )
                for i in range(start, min(n, start + batch))
            ]
        )


def line(label: str, n: int, seconds: float) -> float:
    rate = n / seconds
    print(f"  {label:<52} {rate:>10,.0f} events/s  ({seconds:.2f} s)", flush=True)
    return rate


async def read_decode(store: EventStore, n: int, batch: int) -> float:
    started = time.perf_counter()
    after, count = 0, 0
    while page := await store.read_after(after, limit=batch):
        after = page[-1].position
        count += len(page)
    assert count == n
    return line(
        f"raw read+decode (EventStore.read_after, {batch}/page)", n, time.perf_counter() - started
    )


async def read_orjson(dsn: str, n: int, batch: int) -> float:
    conn = await asyncpg.connect(dsn)
    try:
        started = time.perf_counter()
        after, count = 0, 0
        while rows := await conn.fetch(
            "SELECT position, type, data::text AS data, meta::text AS meta "
            "FROM ledgerhub.events WHERE position > $1 ORDER BY position LIMIT $2",
            after,
            batch,
        ):
            for row in rows:
                orjson.loads(row["data"])
                orjson.loads(row["meta"])
            after = rows[-1]["position"]
            count += len(rows)
        assert count == n
        return line(
            "raw read+decode (asyncpg + orjson, no models)", n, time.perf_counter() - started
        )
    finally:
        await conn.close()


async def runtime(dsn: str, n: int, batch: int) -> tuple[float, float]:
    settings = RuntimeSettings(lease_ttl=10, poll_interval=0.05, batch_size=batch)
    async with await ProjectionStore.open(dsn) as projections:
        started = time.perf_counter()
        task = asyncio.create_task(Worker(dsn, [EventCounts], settings).run())
        try:
            while True:
                statuses = [s for s in await projections.status() if s.name == EventCounts.name]
                if statuses and statuses[0].position >= n:
                    break
                await asyncio.sleep(0.02)
            catch_up = line(
                "runtime catch-up of event_counts from 0", n, time.perf_counter() - started
            )
            job = await Jobs(projections).enqueue(EventCounts.name, "rebuild")
            done = await follow_job(projections, job.id, poll=0.02)
            assert done.state == "done", done.error
            assert done.started_at is not None
            assert done.finished_at is not None
            seconds = (done.finished_at - done.started_at).total_seconds()
            rebuild = line("runtime rebuild of event_counts (job start to swap)", n, seconds)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        rows = await projections.fetch(
            'SELECT sum(events) AS total FROM ledgerhub_projections."event_counts__counts"'
        )
        assert rows[0]["total"] == n, "the rebuilt read model must count every event"
    return catch_up, rebuild


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--dsn", default=os.environ.get("LEDGERHUB_BENCH_DSN"))
    args = parser.parse_args()
    async with scratch_database(args.dsn, "replay") as dsn:
        print(f"{args.events} events")
        async with await EventStore.open(dsn) as store:
            await fill(store, args.events, 1000)
            raw = await read_decode(store, args.events, args.batch)
        bare = await read_orjson(dsn, args.events, args.batch)
        _, rebuild = await runtime(dsn, args.events, args.batch)
        print("ratios (same run, same server):")
        target = "(target >= 0.50x)"
        print(f"  rebuild / raw read+decode (EventStore)         {rebuild / raw:5.2f}x  {target}")
        print(f"  rebuild / raw read+decode (asyncpg + orjson)   {rebuild / bare:5.2f}x")


if __name__ == "__main__":
    asyncio.run(main())
