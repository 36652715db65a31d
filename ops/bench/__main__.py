"""Every benchmark figure in one run, printed as one table: ``python -m ops.bench [--quick]``.

Run it from the repository root (``ledgerhub bench`` runs this module when the checkout has
``ops/``). Without --dsn (or LEDGERHUB_BENCH_DSN) it uses the embedded PostgreSQL under
LEDGERHUB_HOME. Each part gets a scratch database of its own, created and dropped by the run;
every figure is measured against its baseline from the same run on the same server:

- raw asyncpg: COPY and executemany (500 rows per transaction), single INSERTs over 16
  connections (one commit each), read+decode (asyncpg + orjson) of the log;
- the event store: 500-event batch appends, and single-event appends from 64 concurrent tasks;
- HTTP (``ledgerhub serve --no-workers`` as a process of its own, clients in this process with
  their bodies serialised up front): 500-event batches from 8 clients and single events from 64
  clients, with 1 process and with ``--processes N``;
- the HTTP ceiling (``ceiling.py``): the same single-event bodies from the same 64 clients to
  an aiohttp handler that does nothing, the most any HTTP figure of the run could reach;
- the peer: the ``eventsourcing`` library's PostgreSQL recorder (``pip install -e '.[bench]'``),
  single-event and 500-event saves, in a database of its own on the same server;
- end-to-end latency: single-event POSTs at a steady rate (500 events/s), from the HTTP 200 to
  the ledger projection's checkpoint passing the event (a ``worker --projection ledger``
  process beside the API), p50 and p99;
- the rebuild figures of ``ops/bench/rebuild.py`` (a realistic log of several businesses).

Before each timed phase that appends through the hub the log is ``ANALYZE``d, as autovacuum
would have done on a running hub: a scratch table without statistics can get plans no deployed
log gets (see ``analyze``).

``--quick`` is a smoke run of about a minute or two (small counts; its figures are not the ones
to quote). The table's targets are issue 14's (and the append/rebuild issues' for their rows).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import aiohttp
import asyncpg
import orjson

sys.path.insert(0, str(Path(__file__).parent))
import rebuild
from append import (
    INSERT,
    PAYLOAD,
    copy_rows,
    insert_rows,
    new_events,
    raw_rows,
)
from ceiling import ceiling_rate
from ingest import bodies, cpu_seconds, post_all
from scratch import scratch_database

from hub.config import Settings
from hub.store import EventStore
from hub.store.provision import resolve_dsn, with_database

REPO = Path(__file__).resolve().parents[2]
BATCH = 500
BATCH_CLIENTS = 8
SINGLE_CLIENTS = 64
STORE_CLIENTS = 64


@dataclass
class Row:
    """One line of the table: a figure, and its ratio to a baseline of the same run."""

    figure: str
    value: float
    unit: str = "events/s"
    baseline: str = ""
    ratio: float | None = None
    target: str = ""
    note: str = ""


@dataclass(frozen=True)
class Sizes:
    """How much each part does (``--quick``: a smoke run)."""

    events: int
    singles: int
    peer_singles: int
    latency_seconds: float
    rebuild_events: int
    rebuild_projections: tuple[str, ...]


FULL = Sizes(20_000, 4_000, 2_000, 30.0, 250_000, rebuild.REBUILT)
QUICK = Sizes(3_000, 1_000, 500, 8.0, 3_000, ("ledger",))


def say(line: str) -> None:
    """Progress, as the run goes (the table comes at the end)."""
    print(line, file=sys.stderr, flush=True)


async def timed(work: Callable[[], Awaitable[None]], count: int) -> float:
    """Events/s of ``work`` doing ``count`` events."""
    started = time.perf_counter()
    await work()
    return count / (time.perf_counter() - started)


# --------------------------------------------------------------------------- raw and store
async def analyze(dsn: str) -> None:
    """``ANALYZE ledgerhub.events`` (as the bench's own role, which owns the scratch database).

    Without statistics the planner may answer the store's idempotency lookup with another index
    on (tenant, source, ...) and filter ``external_id`` by hand: a read of every event of the
    source per appended event, which no log that autovacuum has seen pays."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("ANALYZE ledgerhub.events")
    finally:
        await conn.close()


async def raw_and_store(dsn: str, sizes: Sizes) -> dict[str, float]:
    """The raw asyncpg figures, then the store's, then raw read+decode of what it appended."""
    n, singles = sizes.events, sizes.singles
    rates: dict[str, float] = {}
    pool = await asyncpg.create_pool(dsn, min_size=16, max_size=16)
    assert pool is not None
    try:
        await pool.execute(
            "CREATE SCHEMA bench; "
            "CREATE TABLE bench.raw_events (LIKE ledgerhub.events INCLUDING ALL)"
        )
        rows_copy = raw_rows(10**7, n, "copy")
        rates["raw_copy"] = await timed(lambda: copy_rows(pool, rows_copy, BATCH), n)
        rows_many = raw_rows(2 * 10**7, n, "many")

        async def many() -> None:
            async with pool.acquire() as conn:
                for i in range(0, n, BATCH):
                    async with conn.transaction():
                        await conn.executemany(INSERT, rows_many[i : i + BATCH])

        rates["raw_executemany"] = await timed(many, n)
        rows_16 = raw_rows(3 * 10**7, singles, "conc")
        rates["raw_16_single"] = await timed(lambda: insert_rows(pool, rows_16, 16), singles)
        say(f"  raw: COPY {rates['raw_copy']:,.0f}, executemany {rates['raw_executemany']:,.0f}, "
            f"16-connection INSERTs {rates['raw_16_single']:,.0f} events/s")  # fmt: skip
    finally:
        await pool.close()
    await analyze(dsn)
    async with await EventStore.open(dsn) as store:
        batch_events = new_events(n, "store-batch")

        async def batches() -> None:
            for i in range(0, n, BATCH):
                await store.append(batch_events[i : i + BATCH])

        rates["store_batch"] = await timed(batches, n)
        single_events = new_events(singles, "store-one")

        async def concurrent() -> None:
            queue = iter(single_events)

            async def client() -> None:
                for event in queue:  # the clients share one iterator
                    await store.append([event])

            await asyncio.gather(*(client() for _ in range(STORE_CLIENTS)))

        rates["store_64_single"] = await timed(concurrent, singles)
        say(f"  store: batches {rates['store_batch']:,.0f}, 64 concurrent singles "
            f"{rates['store_64_single']:,.0f} events/s "
            f"({store.stats.groups} transactions)")  # fmt: skip
        count = await store.head()
    rates["raw_read_decode"] = max([await rebuild.read_orjson(dsn, count, 1000) for _ in range(3)])
    return rates


# --------------------------------------------------------------------------- HTTP
def hub_env(dsn: str, **extra: str) -> dict[str, str]:
    """The environment of a hub process on ``dsn`` (none of the caller's LEDGERHUB_*)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGERHUB_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return {**env, "LEDGERHUB_DSN": dsn, "LEDGERHUB_LOG_FORMAT": "json", **extra}


def create_key(dsn: str) -> str:
    """A fresh ``ingest:*`` key of the default tenant (printed once by ``keys create``)."""
    created = subprocess.run(
        [sys.executable, "-m", "hub", "keys", "create", "--tenant", "default", "--scope",
         "ingest:*"], env=hub_env(dsn), capture_output=True, text=True, check=True, cwd=REPO,
    )  # fmt: skip
    return created.stdout.strip().splitlines()[-1]


@dataclass
class Server:
    """A ``ledgerhub serve`` process and where it listens."""

    process: asyncio.subprocess.Process
    url: str

    def cpu(self) -> float:
        """CPU seconds of the server and its children (the API processes) so far."""
        total = cpu_seconds(self.process.pid)
        with contextlib.suppress(OSError):
            for child in Path(f"/proc/{self.process.pid}/task").iterdir():
                for pid in (child / "children").read_text().split():
                    total += cpu_seconds(int(pid))
        return total


@contextlib.asynccontextmanager
async def serving(dsn: str, processes: int, log: Path) -> AsyncIterator[Server]:
    """``ledgerhub serve --no-workers --processes N`` on a free port, its log in ``log``."""
    with log.open("wb") as sink:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "hub", "serve", "--port", "0", "--no-workers",
            "--processes", str(processes),
            env=hub_env(dsn), stdout=sink, stderr=sink, cwd=REPO,  # the access log on, as deployed
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while (url := _served_url(log, processes)) is None:
            if process.returncode is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ledgerhub serve did not start:\n{_tail(log)}")
            await asyncio.sleep(0.1)
        yield Server(process, url)
    finally:
        if process.returncode is None:
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 60)
        except TimeoutError:
            process.kill()
            await process.wait()


def _served_url(log: Path, processes: int) -> str | None:
    """The URL the server's "serving on" line names (the parent's, with several processes)."""
    marker = f"with {processes} processes" if processes > 1 else "serving on"
    for line in log.read_text().splitlines():
        if marker in line and (processes == 1 or '"pid"' not in line):
            return line.split("serving on ", 1)[1].split()[0].rstrip('",')
    return None


def _tail(log: Path) -> str:
    return log.read_text()[-2000:]


async def http(dsn: str, sizes: Sizes, processes: int, tmp: Path) -> dict[str, float]:
    """HTTP batches and singles against a server of ``processes`` API processes."""
    key = create_key(dsn)
    await analyze(dsn)
    rates: dict[str, float] = {}
    tag = f"p{processes}-{uuid.uuid4().hex[:6]}"
    batches = bodies(sizes.events, BATCH, f"batch-{tag}")
    ones = bodies(sizes.singles, 1, f"one-{tag}")
    async with serving(dsn, processes, tmp / f"serve-{processes}.log") as server:
        await post_all(server.url, key, bodies(64, 1, f"warm-{tag}"), 8)  # connections, caches
        for name, clients, work, count in (
            ("batch", BATCH_CLIENTS, batches, sizes.events),
            ("single", SINGLE_CLIENTS, ones, sizes.singles),
        ):
            cpu, started = server.cpu(), time.perf_counter()
            rates[name] = await timed(
                functools.partial(post_all, server.url, key, work, clients), count
            )
            busy = (server.cpu() - cpu) / (time.perf_counter() - started)
            rates[f"{name}_cpu"] = busy
            say(f"  HTTP {processes} process(es), {name}: {rates[name]:,.0f} events/s "
                f"(the API used {busy:.0%} of one CPU)")  # fmt: skip
    return rates


# --------------------------------------------------------------------------- peer
def _peer_rates(server: str, name: str, singles: int, n: int) -> dict[str, float]:
    from eventsourcing.persistence import StoredEvent
    from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore

    parts = urlsplit(server)
    # the embedded server's URI names its socket directory as ?host=, not in the netloc
    socket_dir = parse_qs(parts.query).get("host", [None])[0]
    datastore = PostgresDatastore(
        dbname=name,
        host=socket_dir or parts.hostname or "127.0.0.1",
        port=parts.port or 5432,
        user=unquote(parts.username or "postgres"),
        password=unquote(parts.password or ""),
        pool_size=2,
    )
    try:
        recorder = PostgresApplicationRecorder(datastore)
        recorder.create_table()
        state = orjson.dumps(PAYLOAD)
        topic = "bench:ChargeSucceeded"

        def events(count: int) -> list[StoredEvent]:
            return [StoredEvent(uuid.uuid4(), 1, topic, state) for _ in range(count)]

        rates = {}
        one = events(singles)
        started = time.perf_counter()
        for event in one:
            recorder.insert_events([event])
        rates["peer_single"] = singles / (time.perf_counter() - started)
        many = events(n)
        started = time.perf_counter()
        for i in range(0, n, BATCH):
            recorder.insert_events(many[i : i + BATCH])
        rates["peer_batch"] = n / (time.perf_counter() - started)
        return rates
    finally:
        datastore.close()


async def peer(server: str, sizes: Sizes) -> dict[str, float]:
    """The ``eventsourcing`` library's PostgreSQL recorder on a database of its own."""
    name = f"lh_bench_peer_{os.getpid()}"
    admin = await asyncpg.connect(server)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            rates = await asyncio.to_thread(
                _peer_rates, server, name, sizes.peer_singles, sizes.events
            )
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
    say(f"  peer (eventsourcing): single {rates['peer_single']:,.0f}, "
        f"batch {rates['peer_batch']:,.0f} events/s")  # fmt: skip
    return rates


# --------------------------------------------------------------------------- latency
LEDGER_POSITION = (
    "SELECT min(g.position) FROM ledgerhub.projections AS p "
    "JOIN ledgerhub.projection_generations AS g "
    "ON g.projection = p.name AND g.generation = p.active_generation WHERE p.name = 'ledger'"
)


async def latency(dsn: str, seconds: float, rate: float, tmp: Path) -> tuple[float, float, int]:
    """p50 and p99 ms from the HTTP 200 of a single-event POST, sent at a steady ``rate``, to
    the ledger projection's checkpoint reaching its position; and how many were measured."""
    key = create_key(dsn)
    config = tmp / "latency.toml"
    config.write_text("")
    answered: dict[int, float] = {}  # position -> when its 200 arrived
    visible: dict[int, float] = {}
    async with (
        serving(dsn, 1, tmp / "serve-latency.log") as server,
        rebuild.worker(dsn, config, tmp, ("ledger",)) as work,
    ):
        await asyncio.wait_for(asyncio.shield(work.started), 120)
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        conn = await asyncpg.connect(dsn)
        stop = asyncio.Event()

        async def watch() -> None:
            while not stop.is_set() or len(visible) < len(answered):
                seen = await conn.fetchval(LEDGER_POSITION) or 0
                now = time.perf_counter()
                for position in answered.keys() - visible.keys():
                    if position <= seen:
                        visible[position] = now
                await asyncio.sleep(0.001)

        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=SINGLE_CLIENTS)
        ) as session:

            async def send(body: bytes) -> None:
                async with session.post(f"{server.url}/v1/events", data=body, headers=headers) as r:
                    if r.status != 200:
                        raise RuntimeError(f"HTTP {r.status}: {await r.text()}")
                    result = (await r.json())["results"][0]
                answered[int(result["position"])] = time.perf_counter()

            watcher = asyncio.create_task(watch())
            sends = []
            count = int(seconds * rate)
            requests = bodies(count, 1, f"latency-{uuid.uuid4().hex[:6]}")
            started = time.perf_counter()
            for i, body in enumerate(requests):  # open loop: each send at its own time
                delay = started + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                sends.append(asyncio.create_task(send(body)))
            await asyncio.gather(*sends)
            stop.set()
            try:
                await asyncio.wait_for(watcher, 120)
            finally:
                await conn.close()
    waits = sorted((visible[p] - answered[p]) * 1000 for p in answered)
    quantiles = statistics.quantiles(waits, n=100, method="inclusive")
    return quantiles[49], quantiles[98], len(waits)


# --------------------------------------------------------------------------- rebuild
async def rebuilds(server: str, sizes: Sizes) -> list[Row]:
    """``ops/bench/rebuild.py``'s figures for a log of ``sizes.rebuild_events``."""
    args = argparse.Namespace(
        tenants=6, seed=2024, batch=1000, repeat=3, timeout=3600.0,
        projections=sizes.rebuild_projections, dsn=server,
    )  # fmt: skip
    run = await rebuild.measure(args, sizes.rebuild_events)
    raw = run.figures[rebuild.RAW].rate
    rows = []
    for label, figure in run.figures.items():
        rss = "" if figure.rss_mb is None else f"peak RSS {figure.rss_mb:,.0f} MB"
        rows.append(
            Row(
                f"{label} ({run.events:,} events)",
                figure.rate,
                baseline="" if label == rebuild.RAW else "raw read+decode (EventStore)",
                ratio=None if label == rebuild.RAW else figure.rate / raw,
                note=" ".join(filter(None, (rss, "partial*" if figure.bound else ""))),
            )
        )
    return rows


# --------------------------------------------------------------------------- the table
def rows_of(r: dict[str, float], processes: int, p50: float, p99: float, n: int) -> list[Row]:
    """The ingest figures as rows with their same-run baselines."""
    copy, many, sixteen = r["raw_copy"], r["raw_executemany"], r["raw_16_single"]
    rows = [
        Row("raw asyncpg COPY, 500/transaction", copy),
        Row("raw asyncpg executemany, 500/transaction", many),
        Row("raw asyncpg single INSERTs, 16 connections", sixteen),
        Row("raw read+decode (asyncpg + orjson)", r["raw_read_decode"]),
        Row("store append, 500-event batches", r["store_batch"], baseline="raw executemany",
            ratio=r["store_batch"] / many, target=">= 0.8x"),
        Row("store append, single events, 64 tasks", r["store_64_single"],
            baseline="raw 16-conn INSERTs", ratio=r["store_64_single"] / sixteen,
            target=">= 1.5x"),
    ]  # fmt: skip
    for procs in sorted({1, processes}):
        p = f"http{procs}"
        if f"{p}_batch" not in r:
            continue
        rows += [
            Row(f"HTTP 500-event batches, 8 clients, {procs} process(es)", r[f"{p}_batch"],
                baseline="raw COPY", ratio=r[f"{p}_batch"] / copy, target=">= 0.5x",
                note=f"API CPU {r[f'{p}_batch_cpu']:.0%}"),
            Row(f"HTTP single events, 64 clients, {procs} process(es)", r[f"{p}_single"],
                baseline="raw 16-conn INSERTs", ratio=r[f"{p}_single"] / sixteen,
                target=">= 1.0x", note=f"API CPU {r[f'{p}_single_cpu']:.0%}"),
        ]  # fmt: skip
    if "ceiling_single" in r:
        best = max(r.get("http1_single", 0.0), r.get(f"http{processes}_single", 0.0))
        rows += [
            Row("HTTP ceiling: a no-op aiohttp handler, single events, 64 clients",
                r["ceiling_single"], baseline="raw 16-conn INSERTs",
                ratio=r["ceiling_single"] / sixteen,
                note="the same clients; no key, no parse, no database"),
            Row("HTTP singles (best above) / the ceiling", best, baseline="HTTP ceiling",
                ratio=best / r["ceiling_single"]),
        ]  # fmt: skip
    if "peer_single" in r:
        best = max(r.get("http1_single", 0.0), r.get(f"http{processes}_single", 0.0))
        rows += [
            Row("peer: eventsourcing single-event saves", r["peer_single"],
                baseline="raw 16-conn INSERTs", ratio=r["peer_single"] / sixteen),
            Row("peer: eventsourcing 500-event saves", r["peer_batch"],
                baseline="raw executemany", ratio=r["peer_batch"] / many),
        ]  # fmt: skip
        if best:  # the HTTP part ran
            rows.append(Row("HTTP singles (best above) / peer single saves", best,
                            baseline="peer single saves", ratio=best / r["peer_single"],
                            target=">= 5x"))  # fmt: skip
    if n:
        rows += [
            Row("latency HTTP 200 -> ledger, p50, 500 events/s", p50, unit="ms",
                note=f"{n} events"),
            Row("latency HTTP 200 -> ledger, p99, 500 events/s", p99, unit="ms",
                target="<= 50 ms", note=f"{n} events"),
        ]  # fmt: skip
    return rows


def print_table(rows: list[Row], header: str) -> None:
    """The one table: figure, value, baseline of the same run, ratio, target, note."""
    print(header)
    print()
    print("| figure | value | baseline (same run) | ratio | target | note |")
    print("|---|---:|---|---:|---|---|")
    for row in rows:
        value = f"{row.value:,.1f} {row.unit}" if row.unit == "ms" else f"{row.value:,.0f} ev/s"
        ratio = "" if row.ratio is None else f"{row.ratio:.2f}x"
        print(f"| {row.figure} | {value} | {row.baseline} | {ratio} | {row.target} | {row.note} |")


async def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ops.bench", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run of a minute or two")
    parser.add_argument("--processes", type=int, default=2, help="N for the HTTP rows (default 2)")
    parser.add_argument("--dsn", default=os.environ.get("LEDGERHUB_BENCH_DSN"))
    parser.add_argument(
        "--skip", action="append", default=[], choices=("http", "peer", "latency", "rebuild"),
        help="leave a part out (repeatable)",
    )  # fmt: skip
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    server = args.dsn or await resolve_dsn(Settings.from_env())
    started = time.perf_counter()
    rates: dict[str, float] = {}
    p50 = p99 = 0.0
    measured = 0
    with tempfile.TemporaryDirectory(prefix="lh-bench-") as tmp:
        say("raw asyncpg and the event store:")
        async with scratch_database(server, "ingest") as dsn:
            rates |= await raw_and_store(dsn, sizes)
            if "http" not in args.skip:
                for procs in sorted({1, args.processes}):
                    got = await http(dsn, sizes, procs, Path(tmp))
                    rates |= {f"http{procs}_{k}": v for k, v in got.items()}
                rates["ceiling_single"] = await ceiling_rate(sizes.singles, SINGLE_CLIENTS)
                say(f"  HTTP ceiling (a no-op aiohttp handler), single events: "
                    f"{rates['ceiling_single']:,.0f} events/s")  # fmt: skip
        if "peer" not in args.skip:
            rates |= await peer(server, sizes)
        if "latency" not in args.skip:
            async with scratch_database(server, "latency") as dsn:
                p50, p99, measured = await latency(dsn, sizes.latency_seconds, 500.0, Path(tmp))
            say(f"  latency HTTP 200 -> ledger: p50 {p50:.1f} ms, p99 {p99:.1f} ms")
        rows = rows_of(rates, args.processes, p50, p99, measured)
        if "rebuild" not in args.skip:
            rows += await rebuilds(server, sizes)
    print()
    loop = type(asyncio.get_running_loop()).__module__.split(".")[0]
    print_table(
        rows,
        f"ledgerhub bench{' --quick' if args.quick else ''}: one run, {os.cpu_count()} CPUs, "
        f"PostgreSQL at {with_database(server, '').rsplit('/', 1)[0].split('@')[-1]}, "
        f"{time.perf_counter() - started:,.0f} s; client event loop: {loop}",
    )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
