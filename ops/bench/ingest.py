"""Ingest throughput over HTTP against raw asyncpg on the same server, in one run.

    python ops/bench/ingest.py [--events 20000] [--singles 4000] [--dsn postgresql://…]

Without --dsn (or LEDGERHUB_BENCH_DSN) it uses the embedded PostgreSQL under LEDGERHUB_HOME.
A fresh database is created for the run and dropped after. The hub runs as a real
``ledgerhub serve --no-workers`` process on 127.0.0.1; the clients run in this process with
their request bodies serialised up front. Raw figures insert into a table shaped exactly like
``ledgerhub.events`` with values prepared up front (the ceiling on this machine):

- raw COPY, 500 rows per transaction, 1 connection
- raw single INSERTs, 16 connections, one commit per event
- HTTP POST /v1/events, 500 events per request, 8 concurrent clients -> ratio to raw COPY
  (target >= 0.5)
- HTTP POST /v1/events, 1 event per request, 64 concurrent clients -> ratio to raw 16-conn
  singles (target >= 1.0)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import asyncpg
import orjson

sys.path.insert(0, str(Path(__file__).parent))
from append import PAYLOAD, copy_rows, insert_rows, raw_rows, timed
from scratch import scratch_database

BATCH = 500
BATCH_CLIENTS = 8
SINGLE_CLIENTS = 64


def bodies(count: int, per_request: int, tag: str) -> list[bytes]:
    at = datetime.now(UTC).isoformat()
    events = [
        {"source": "stripe:acct_bench", "external_id": f"{tag}-{i}",
         "type": "stripe.charge.succeeded", "occurred_at": at, "data": PAYLOAD}
        for i in range(count)
    ]  # fmt: skip
    return [
        orjson.dumps({"events": events[i : i + per_request]}) for i in range(0, count, per_request)
    ]


async def raw(dsn: str, n: int, singles: int) -> dict[str, float]:
    pool = await asyncpg.create_pool(dsn, min_size=16, max_size=16)
    assert pool is not None
    await pool.execute(
        "CREATE SCHEMA bench; CREATE TABLE bench.raw_events (LIKE ledgerhub.events INCLUDING ALL)"
    )
    rates: dict[str, float] = {}
    print(f"raw asyncpg ({n} events; {singles} for single-insert figures):")
    rows_copy = raw_rows(2 * 10**7, n, "copy")
    rates["raw_copy"] = await timed(
        f"COPY, {BATCH}/transaction", n, lambda: copy_rows(pool, rows_copy, BATCH)
    )
    rows_16 = raw_rows(3 * 10**7, singles, "conc")
    rates["raw_16_single"] = await timed(
        "single INSERT, 16 connections", singles, lambda: insert_rows(pool, rows_16, 16)
    )
    await pool.close()
    return rates


async def post_all(url: str, key: str, requests: list[bytes], clients: int) -> None:
    queue = iter(requests)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client() -> None:
            for body in queue:  # the clients share one iterator: each takes the next request
                async with session.post(f"{url}/v1/events", data=body, headers=headers) as r:
                    if r.status != 200:
                        raise RuntimeError(f"HTTP {r.status}: {await r.text()}")
                    await r.read()

        await asyncio.gather(*(client() for _ in range(clients)))


def start_hub(dsn: str) -> tuple[subprocess.Popen[str], str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGERHUB_")}
    env["LEDGERHUB_DSN"] = dsn
    created = subprocess.run(
        [sys.executable, "-m", "hub", "keys", "create", "--tenant", "default", "--scope",
         "ingest:*"], env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    key = created.stdout.strip().splitlines()[-1]
    server = subprocess.Popen(
        [sys.executable, "-m", "hub", "serve", "--port", "0", "--no-workers"],
        env=env, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert server.stderr is not None
    first = server.stderr.readline()
    if "serving on" not in first:
        server.kill()
        raise RuntimeError(f"ledgerhub serve did not start: {first}")
    # The access log follows, a line a request: read it all, or the server blocks writing it
    # once the pipe is full (after a few hundred single-event requests).
    threading.Thread(target=server.stderr.read, daemon=True).start()
    return server, first.split("serving on ", 1)[1].split()[0], key


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def http(dsn: str, n: int, singles: int, batch_clients: int) -> dict[str, float]:
    server, url, key = start_hub(dsn)
    rates: dict[str, float] = {}
    try:
        print(f"HTTP, ledgerhub serve at {url}:")
        batches = bodies(n, BATCH, "batch")
        ones = bodies(singles, 1, "one")
        for name, label, count, work in (
            ("http_batch", f"POST {BATCH}-event batches, {batch_clients} clients", n,
             lambda: post_all(url, key, batches, batch_clients)),
            ("http_single", f"POST single events, {SINGLE_CLIENTS} clients", singles,
             lambda: post_all(url, key, ones, SINGLE_CLIENTS)),
        ):  # fmt: skip
            cpu, started = cpu_seconds(server.pid), time.perf_counter()
            rates[name] = await timed(label, count, work)
            busy = (cpu_seconds(server.pid) - cpu) / (time.perf_counter() - started)
            print(f"    (the hub process used {busy:.0%} of one CPU meanwhile)")
    finally:
        server.terminate()
        server.wait(timeout=30)
    return rates


def report(rates: dict[str, float]) -> None:
    batch = rates["http_batch"] / rates["raw_copy"]
    single = rates["http_single"] / rates["raw_16_single"]
    print("ratios (same run, same server):")
    print(f"  HTTP batches / raw COPY                       {batch:5.2f}x  (target >= 0.50x)")
    print(f"  HTTP 64 concurrent singles / raw 16-conn      {single:5.2f}x  (target >= 1.00x)")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--singles", type=int, default=4_000)
    parser.add_argument("--dsn", default=os.environ.get("LEDGERHUB_BENCH_DSN"))
    parser.add_argument("--batch-clients", type=int, default=BATCH_CLIENTS)
    args = parser.parse_args()
    async with scratch_database(args.dsn, "ingest") as dsn:
        rates = await raw(dsn, args.events, args.singles)
        rates |= await http(dsn, args.events, args.singles, args.batch_clients)
        report(rates)


if __name__ == "__main__":
    asyncio.run(main())
