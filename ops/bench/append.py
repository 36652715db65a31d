"""Append throughput: the event store against raw asyncpg on the same server, in one run.

    python ops/bench/append.py [--events 20000] [--dsn postgresql://…]

Without --dsn (or LEDGERHUB_BENCH_DSN) it uses the embedded PostgreSQL under LEDGERHUB_HOME.
A fresh database is created for the run and dropped after. Raw figures insert into a table
shaped exactly like ``ledgerhub.events`` (same columns, keys and indexes) with values prepared
up front, so they are the ceiling for what the store could do on this machine:

- raw single INSERT (1 connection, one commit per event)
- raw executemany (one transaction per 1,000 rows)
- raw COPY (one transaction per 1,000 rows)
- raw 16-connection single INSERTs (one commit per event)
- store batch append (1,000 events per batch)   -> ratio to raw executemany (target ≥ 0.8)
- store 64 concurrent single-event appends      -> ratio to raw 16-conn singles (target ≥ 1.5)
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import asyncpg
import orjson
from scratch import scratch_database

from hub.domain.events import NewEvent
from hub.store import EventStore

BATCH = 1000
PAYLOAD = {
    "id": "ch_3MmlLrLkdIwHu7ix0snN0B15",
    "object": "charge",
    "amount": 1099,
    "amount_captured": 1099,
    "currency": "usd",
    "customer": "cus_NffrFeUfNV2Hib",
    "description": "Order #1001",
    "metadata": {"order_id": "6735", "channel": "web"},
    "outcome": {
        "network_status": "approved_by_network",
        "risk_level": "normal",
        "type": "authorized",
    },
    "paid": True,
    "payment_method_details": {"card": {"brand": "visa", "last4": "4242", "exp_year": 2027}},
    "status": "succeeded",
}
COLUMNS = (
    "position", "id", "tenant", "source", "external_id", "type", "stream", "stream_version",
    "occurred_at", "recorded_at", "data", "meta", "raw", "hash",
)  # fmt: skip
INSERT = (
    f"INSERT INTO bench.raw_events ({', '.join(COLUMNS)}) "
    "VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11::jsonb,$12::jsonb,$13,$14)"
)


def raw_rows(start: int, count: int, tag: str) -> list[tuple[object, ...]]:
    now = datetime.now(UTC)
    data = orjson.dumps(PAYLOAD).decode()
    return [
        (
            start + i, uuid.uuid4(), "default", "stripe:acct_bench", f"{tag}-{start + i}",
            "stripe.charge.succeeded", f"stripe:acct_bench/{tag}-{start + i}", 1, now, now,
            data, "{}", None, hashlib.sha256(str(start + i).encode()).digest(),
        )
        for i in range(count)
    ]  # fmt: skip


def new_events(count: int, tag: str) -> list[NewEvent]:
    at = datetime.now(UTC)
    return [
        NewEvent(source="stripe:acct_bench", external_id=f"{tag}-{i}",
                 type="stripe.charge.succeeded", occurred_at=at, data=PAYLOAD)
        for i in range(count)
    ]  # fmt: skip


async def copy_rows(pool: asyncpg.Pool, rows: list[tuple[object, ...]], per_tx: int) -> None:
    """Raw baseline: COPY ``rows`` into the bench table, ``per_tx`` rows per transaction."""
    async with pool.acquire() as conn:
        for i in range(0, len(rows), per_tx):
            async with conn.transaction():
                await conn.copy_records_to_table(
                    "raw_events", schema_name="bench", columns=COLUMNS, records=rows[i : i + per_tx]
                )


async def insert_rows(pool: asyncpg.Pool, rows: list[tuple[object, ...]], connections: int) -> None:
    """Raw baseline: one INSERT (and commit) per row, spread over ``connections`` connections."""

    async def worker(part: list[tuple[object, ...]]) -> None:
        async with pool.acquire() as conn:
            for row in part:
                await conn.execute(INSERT, *row)

    await asyncio.gather(*(worker(rows[k::connections]) for k in range(connections)))


async def timed(label: str, count: int, work: Callable[[], Awaitable[None]]) -> float:
    started = time.perf_counter()
    await work()
    rate = count / (time.perf_counter() - started)
    print(f"  {label:<46} {rate:>10,.0f} events/s", flush=True)
    return rate


async def bench(dsn: str, n: int) -> dict[str, float]:
    singles = max(n // 10, 500)
    pool = await asyncpg.create_pool(dsn, min_size=16, max_size=16)
    assert pool is not None
    await pool.execute(
        "CREATE SCHEMA bench; CREATE TABLE bench.raw_events (LIKE ledgerhub.events INCLUDING ALL)"
    )
    rates: dict[str, float] = {}
    print(f"raw asyncpg ({n} events, {singles} for single-insert figures):")

    rows = raw_rows(1, singles, "single")

    async def single() -> None:
        async with pool.acquire() as conn:
            for row in rows:
                await conn.execute(INSERT, *row)

    rates["raw_single"] = await timed("single INSERT, 1 connection", singles, single)

    rows_many = raw_rows(10**7, n, "many")

    async def many() -> None:
        async with pool.acquire() as conn:
            for i in range(0, n, BATCH):
                async with conn.transaction():
                    await conn.executemany(INSERT, rows_many[i : i + BATCH])

    rates["raw_executemany"] = await timed(f"executemany, {BATCH}/transaction", n, many)

    rows_copy = raw_rows(2 * 10**7, n, "copy")
    rates["raw_copy"] = await timed(
        f"COPY, {BATCH}/transaction", n, lambda: copy_rows(pool, rows_copy, BATCH)
    )
    rows_16 = raw_rows(3 * 10**7, singles, "conc")
    rates["raw_16_single"] = await timed(
        "single INSERT, 16 connections", singles, lambda: insert_rows(pool, rows_16, 16)
    )
    await pool.close()

    print("event store:")
    async with await EventStore.open(dsn) as store:
        batch_events = new_events(n, "batch")

        async def batches() -> None:
            for i in range(0, n, BATCH):
                await store.append(batch_events[i : i + BATCH])

        rates["store_batch"] = await timed(f"append, {BATCH}-event batches", n, batches)

        single_events = new_events(singles, "one")

        async def concurrent() -> None:
            queue = iter(single_events)

            async def client() -> None:
                for event in queue:  # 64 clients share one iterator: each takes the next
                    await store.append([event])

            await asyncio.gather(*(client() for _ in range(64)))

        rates["store_64_single"] = await timed(
            "append, single events, 64 concurrent clients", singles, concurrent
        )
        groups = store.stats.groups
    print(f"  ({groups} append transactions for {n // BATCH + singles} requests)")
    return rates


def report(rates: dict[str, float]) -> None:
    batch = rates["store_batch"] / rates["raw_executemany"]
    single = rates["store_64_single"] / rates["raw_16_single"]
    print("ratios (same run, same server):")
    print(f"  store batch append / raw executemany          {batch:5.2f}x  (target >= 0.80x)")
    print(f"  store 64 concurrent singles / raw 16-conn     {single:5.2f}x  (target >= 1.50x)")
    print(f"  store batch append / raw COPY                 "
          f"{rates['store_batch'] / rates['raw_copy']:5.2f}x")  # fmt: skip


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--dsn", default=os.environ.get("LEDGERHUB_BENCH_DSN"))
    args = parser.parse_args()
    async with scratch_database(args.dsn, "append") as dsn:
        report(await bench(dsn, args.events))


if __name__ == "__main__":
    asyncio.run(main())
