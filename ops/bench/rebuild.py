"""Rebuild throughput on a realistic log: each projection against raw read+decode, and peak RSS.

    python ops/bench/rebuild.py [--events 250000] [--tenants 6] [--seed 2024] [--dsn postgresql://…]
    python ops/bench/rebuild.py --sizes 25000,100000      # and the growth from one size to the next

Without --dsn (or LEDGERHUB_BENCH_DSN) it uses the embedded PostgreSQL under LEDGERHUB_HOME. For
each size a fresh database is created and dropped after, and in it, in one run:

1. the log: ``workload.Workload`` (Stripe, Shopify, bank and payroll activity of several tenants
   on the providers' shapes) appended through ``EventStore.append``, 1,000 per call; its
   ``LEDGERHUB_CONFIG`` written to a temporary directory;
2. raw read+decode: ``EventStore.read_after`` paging through the whole log (SQL, then each row
   decoded into a ``RecordedEvent``), the same with asyncpg + orjson only (no models), and
   ``COPY ledgerhub.events TO STDOUT`` into a sink (nothing decoded); each the best of
   ``--repeat`` (default 3);
3. catch-up: one ``python -m hub worker --no-sync`` process (every installed projection) started
   on empty checkpoints; timed from its "N projection(s)" line to every projection's position
   reaching the head. Then the ledger's ``unmapped`` count, and what reconciliation and
   accounting made of the log;
4. rebuilds: for each of ledger, reconciliation and accounting, a fresh
   ``python -m hub worker --no-sync --projection NAME`` and ``Jobs.enqueue(NAME, "rebuild")``;
   rate = events / (job finished_at - started_at).

Each worker is a process of its own, so its peak RSS is its ``VmHWM`` (``/proc/PID/status``,
read just before it is stopped; ``VmRSS`` is sampled too, in case ``VmHWM`` is missing). A phase
that does not finish within ``--timeout`` seconds is stopped and reported with the rate it had
reached (events done / seconds), marked ``*``: not a measurement of the whole log.

It prints one table per size: events/s, the ratio to raw read+decode (``EventStore``), peak RSS.
With several ``--sizes`` it also prints, for the largest against the smallest, each rate's ratio
(linear cost: >= 0.7x) and each peak RSS ratio (flat memory: <= 1.5x).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import os
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import orjson
from scratch import scratch_database
from workload import Workload, append_log

from hub.store import EventStore
from hub.store.jobs import Jobs
from hub.store.projections import ProjectionStore, view_name

REBUILT = ("ledger", "reconciliation", "accounting")
REPO = Path(__file__).resolve().parents[2]
RAW = "raw read+decode (EventStore.read_after)"
BARE = "raw read+decode (asyncpg + orjson)"
COPY = "raw read (COPY events TO a sink, no decode)"
CATCH_UP = "catch-up, all projections, one worker"


@dataclass
class Figure:
    """One measured figure: events per second, peak RSS of its process, and whether it is
    partial (``bound``: the phase was stopped at the timeout; the rate is over the events done
    by then)."""

    rate: float
    rss_mb: float | None = None
    bound: bool = False
    note: str = ""


@dataclass
class Run:
    """The figures of one size, in the order they were measured."""

    events: int
    figures: dict[str, Figure] = field(default_factory=dict)
    facts: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- raw baselines
async def read_decode(store: EventStore, n: int, batch: int) -> float:
    """Events/s of ``EventStore.read_after`` paging through the whole log."""
    started = time.perf_counter()
    after, count = 0, 0
    while page := await store.read_after(after, limit=batch):
        after = page[-1].position
        count += len(page)
    assert count == n, (count, n)
    return n / (time.perf_counter() - started)


async def read_orjson(dsn: str, n: int, batch: int) -> float:
    """Events/s of the same paging with asyncpg, ``data`` and ``meta`` decoded by orjson."""
    conn = await asyncpg.connect(dsn)
    try:
        started = time.perf_counter()
        after, count = 0, 0
        while rows := await conn.fetch(
            "SELECT position, tenant, source, type, data::text AS data, meta::text AS meta "
            "FROM ledgerhub.events WHERE position > $1 ORDER BY position LIMIT $2",
            after,
            batch,
        ):
            for row in rows:
                orjson.loads(row["data"])
                orjson.loads(row["meta"])
            after = rows[-1]["position"]
            count += len(rows)
        assert count == n, (count, n)
        return n / (time.perf_counter() - started)
    finally:
        await conn.close()


async def copy_out(dsn: str, n: int) -> float:
    """Events/s of ``COPY ledgerhub.events TO STDOUT`` into a sink (the server's side of a read,
    nothing decoded: the issue's raw figure)."""
    conn = await asyncpg.connect(dsn)
    size = 0

    async def sink(chunk: bytes) -> None:
        nonlocal size
        size += len(chunk)

    try:
        started = time.perf_counter()
        await conn.copy_from_table("events", schema_name="ledgerhub", output=sink)
        return n / (time.perf_counter() - started)
    finally:
        await conn.close()


async def best_of(repeat: int, measure: Callable[[], Awaitable[float]]) -> float:
    """The best rate of ``repeat`` runs (the machine is shared; the best is the least disturbed)."""
    return max([await measure() for _ in range(repeat)])


# --------------------------------------------------------------------------- worker process
class WorkerProcess:
    """``python -m hub worker --no-sync`` as a child process, with its memory watched."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.started: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.names: list[str] = []
        self.lines: collections.deque[str] = collections.deque(maxlen=40)
        self.max_rss_kb = 0
        self._tasks = [asyncio.create_task(self._read()), asyncio.create_task(self._sample())]

    async def _read(self) -> None:
        assert self.proc.stderr is not None
        async for raw in self.proc.stderr:
            line = raw.decode(errors="replace").rstrip()
            self.lines.append(line)
            if "projection(s):" in line and not self.started.done():
                listed = line.split("projection(s):", 1)[1]
                self.names = [n.strip() for n in listed.split(",") if n.strip() != "none"]
                self.started.set_result(time.perf_counter())
        if not self.started.done():
            self.started.set_exception(RuntimeError("the worker exited:\n" + self.tail()))

    async def _sample(self) -> None:
        while self.proc.returncode is None:
            rss = self._status("VmRSS")
            if rss is not None:
                self.max_rss_kb = max(self.max_rss_kb, rss)
            await asyncio.sleep(0.05)

    def _status(self, key: str) -> int | None:
        try:
            text = Path(f"/proc/{self.proc.pid}/status").read_text()
        except OSError:
            return None
        for line in text.splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1])
        return None

    def peak_mb(self) -> float:
        """The process's peak resident set so far (``VmHWM``, else the sampled ``VmRSS``)."""
        hwm = self._status("VmHWM")
        return max(hwm or 0, self.max_rss_kb) / 1024

    def tail(self) -> str:
        """The last lines the worker wrote to stderr."""
        return "\n".join(self.lines)

    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.proc.returncode is None

    async def stop(self) -> None:
        """SIGTERM (leases given back), then SIGKILL after 20 s."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 20)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@contextlib.asynccontextmanager
async def worker(
    dsn: str, config: Path, home: Path, projections: tuple[str, ...] = ()
) -> AsyncIterator[WorkerProcess]:
    """A worker process on ``dsn`` with ``config``, running ``projections`` (default: all),
    after ``python -m hub migrate`` (a no-op unless the checkout gained a migration)."""
    env = {
        **os.environ,
        "LEDGERHUB_DSN": dsn,
        "LEDGERHUB_CONFIG": str(config),
        "LEDGERHUB_HOME": str(home),
        "LEDGERHUB_LOG_FORMAT": "json",
        "LEDGERHUB_LOG_LEVEL": "warning",
        "LEDGERHUB_POLL_INTERVAL": "0.5",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    # the checkout may have gained a migration since the scratch database was migrated
    migrate = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hub", "migrate", env=env, cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await migrate.communicate()
    if migrate.returncode != 0:
        raise RuntimeError(f"ledgerhub migrate failed:\n{out.decode(errors='replace')}")
    chosen = [arg for name in projections for arg in ("--projection", name)]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hub", "worker", "--no-sync", *chosen,
        env=env, cwd=REPO, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    process = WorkerProcess(proc)
    try:
        yield process
    finally:
        await process.stop()


# --------------------------------------------------------------------------- phases
def _positions(statuses: list[tuple[str, int]], names: set[str]) -> dict[str, int]:
    """The lowest position per projection (a partitioned projection: its slowest part)."""
    found: dict[str, int] = {}
    for name, position in statuses:
        base = next((n for n in names if name == n or name.startswith((f"{n}#", f"{n}/"))), None)
        if base is not None:
            found[base] = min(found.get(base, position), position)
    return found


async def catch_up(
    projections: ProjectionStore, proc: WorkerProcess, n: int, patience: float
) -> tuple[Figure, list[str]]:
    """Wait until every projection the worker runs has applied all ``n`` events (or until
    ``patience`` seconds have passed: then the rate so far, partial)."""
    started = await asyncio.wait_for(asyncio.shield(proc.started), 120)
    names = set(proc.names)
    while True:
        statuses = await projections.status()
        low = _positions([(s.name, s.position) for s in statuses], names)
        elapsed = time.perf_counter() - started
        if len(low) == len(names) and min(low.values(), default=n) >= n:
            return Figure(n / elapsed, proc.peak_mb()), sorted(names)
        if not proc.alive():
            raise RuntimeError("the worker exited during catch-up:\n" + proc.tail())
        if elapsed > patience:
            done = min(low.values()) if low else 0
            note = f"stopped at {done:,}/{n:,} events after {elapsed:.0f} s (slowest projection)"
            return Figure(done / elapsed, proc.peak_mb(), bound=True, note=note), sorted(names)
        await asyncio.sleep(0.1)


async def rebuild(
    projections: ProjectionStore, proc: WorkerProcess, name: str, n: int, patience: float
) -> Figure:
    """Enqueue a rebuild of ``name`` and follow it to the swap (or until ``patience`` seconds
    have passed: then the rate so far, partial)."""
    await asyncio.wait_for(asyncio.shield(proc.started), 120)
    jobs = Jobs(projections)
    job = await jobs.enqueue(name, "rebuild")
    deadline = time.perf_counter() + patience
    while True:
        job = await jobs.get(job.id)
        if job.finished:
            break
        if not proc.alive():
            raise RuntimeError(f"the worker exited during the rebuild of {name}:\n" + proc.tail())
        if time.perf_counter() > deadline and job.started_at is not None:
            row = await projections.fetchrow("SELECT now() AS now")
            assert row is not None
            seconds = (row["now"] - job.started_at).total_seconds()
            note = f"stopped at {job.done:,}/{n:,} events after {seconds:.0f} s"
            return Figure(job.done / seconds, proc.peak_mb(), bound=True, note=note)
        await asyncio.sleep(0.1)
    if job.state != "done" or job.started_at is None or job.finished_at is None:
        raise RuntimeError(f"the rebuild of {name} ended {job.state}: {job.error}")
    seconds = (job.finished_at - job.started_at).total_seconds()
    return Figure(n / seconds, proc.peak_mb())


async def books_facts(conn: asyncpg.Connection) -> list[str]:
    """What the projections made of the log: unmapped events, payouts and exceptions by kind,
    documents (so a reader can see the mappers booked it and reconciliation had work)."""
    facts = []
    unmapped = view_name("ledger", "unmapped")
    count = await conn.fetchval(f"SELECT count(*) FROM {unmapped}")
    facts.append(f"ledger unmapped events: {count}")
    for row in await conn.fetch(
        f"SELECT type, min(reason) AS reason, count(*) AS n FROM {unmapped} "
        "GROUP BY type ORDER BY n DESC LIMIT 5"
    ):
        facts.append(f"  {row['n']:>6} {row['type']}: {row['reason'][:120]}")
    entries = await conn.fetchval(f"SELECT count(*) FROM {view_name('ledger', 'journal')}")
    facts.append(f"ledger journal entries: {entries:,}")
    payouts = await conn.fetch(
        f"SELECT match_state, count(*) AS n FROM {view_name('reconciliation', 'payouts')} "
        "GROUP BY 1 ORDER BY 2 DESC"
    )
    facts.append("reconciliation payouts: " + ", ".join(f"{r['n']} {r[0]}" for r in payouts))
    kinds = await conn.fetch(
        f"SELECT kind, count(*) AS n FROM {view_name('reconciliation', 'exceptions')} "
        "GROUP BY 1 ORDER BY 2 DESC"
    )
    facts.append("reconciliation exceptions: " + ", ".join(f"{r['n']} {r[0]}" for r in kinds))
    docs = await conn.fetch(
        f"SELECT kind, count(*) AS n FROM {view_name('accounting', 'documents')} "
        "GROUP BY 1 ORDER BY 2 DESC"
    )
    facts.append("accounting documents: " + ", ".join(f"{r['n']} {r[0]}" for r in docs))
    return facts


async def measure(args: argparse.Namespace, n: int) -> Run:
    """Every figure for a log of ``n`` events, on a scratch database of its own."""
    run = Run(n)
    workload = Workload.plan(args.tenants, args.seed)
    say = print
    async with scratch_database(args.dsn, f"rebuild{n}") as dsn:
        with tempfile.TemporaryDirectory(prefix="lh-bench-") as tmp:
            config = Path(tmp) / "ledgerhub.toml"
            config.write_text(workload.config_toml())
            async with await EventStore.open(dsn) as store:
                made = await append_log(store, workload.events(n))
                say(f"generated and appended {made.events:,} events for {len(workload.tenants)} "
                    f"tenants ({made.first_day} .. {made.last_day}) in {made.seconds:.1f} s "
                    f"({made.events / made.seconds:,.0f} events/s, EventStore.append "
                    f"1,000 per call; this process's peak RSS {_own_peak_mb():,.0f} MB)",
                    flush=True)  # fmt: skip
                run.figures[RAW] = Figure(
                    await best_of(args.repeat, lambda: read_decode(store, n, args.batch))
                )
            run.figures[BARE] = Figure(
                await best_of(args.repeat, lambda: read_orjson(dsn, n, args.batch))
            )
            run.figures[COPY] = Figure(await best_of(args.repeat, lambda: copy_out(dsn, n)))
            for label in (RAW, BARE, COPY):
                say(f"  {label:<46} {run.figures[label].rate:>9,.0f} events/s", flush=True)
            async with await ProjectionStore.open(dsn) as projections:
                async with worker(dsn, config, Path(tmp)) as proc:
                    figure, names = await catch_up(projections, proc, n, args.timeout)
                run.figures[CATCH_UP] = figure
                say(f"  {CATCH_UP:<46} {_rate(figure):>10} events/s  (projections: "
                    f"{', '.join(names)}) {figure.note}", flush=True)  # fmt: skip
                conn = await asyncpg.connect(dsn)
                try:
                    run.facts = await books_facts(conn)
                    if figure.bound:  # the ledger may be complete; the slowest is not
                        run.facts.append("(catch-up was stopped: the slowest projection's "
                                         "figures above are partial)")  # fmt: skip
                    for fact in run.facts:
                        say(f"  {fact}")
                finally:
                    await conn.close()
                for name in args.projections:
                    async with worker(dsn, config, Path(tmp), (name,)) as proc:
                        figure = await rebuild(projections, proc, name, n, args.timeout)
                    label = f"rebuild {name}"
                    run.figures[label] = figure
                    say(f"  {label:<46} {_rate(figure):>10} events/s  {figure.note}", flush=True)
    return run


def _own_peak_mb() -> float:
    """This process's peak RSS (``VmHWM``) in MB (0 where /proc is not there)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


# --------------------------------------------------------------------------- reporting
def _rate(figure: Figure) -> str:
    return f"{figure.rate:,.0f}{'*' if figure.bound else ''}"


def table(run: Run) -> None:
    """The size's figures: events/s, ratio to raw read+decode (EventStore), peak RSS."""
    raw = run.figures[RAW].rate
    print(f"\n{run.events:,} events")
    print(
        f"| {'figure':<46} | {'events/s':>10} | {'x raw read+decode':>17} | {'peak RSS MB':>11} |"
    )
    print(f"|{'-' * 48}|{'-' * 12}|{'-' * 19}|{'-' * 13}|")
    for label, f in run.figures.items():
        rss = "-" if f.rss_mb is None else f"{f.rss_mb:,.0f}"
        ratio = f"{f.rate / raw:.3f}x{'*' if f.bound else ''}"
        print(f"| {label:<46} | {_rate(f):>10} | {ratio:>17} | {rss:>11} |")
    if any(f.bound for f in run.figures.values()):
        print("* stopped at --timeout: the rate over the events done by then (a run whose cost "
              "grows with the log would not finish faster)")  # fmt: skip


def growth(small: Run, large: Run) -> None:
    """Each rate at the larger size over its rate at the smaller, and the peak RSS ratio."""
    print(f"\ngrowth: {large.events:,} events against {small.events:,} "
          f"(x{large.events / small.events:g} the log)")  # fmt: skip
    head = f"| {'figure':<46} | {'rate ratio (>= 0.7x)':>20} | {'peak RSS ratio (<= 1.5x)':>24} |"
    print(head)
    print(f"|{'-' * 48}|{'-' * 22}|{'-' * 26}|")
    for label, f in large.figures.items():
        s = small.figures.get(label)
        if s is None:
            continue
        bound = "*" if f.bound or s.bound else ""
        rate = f"{f.rate / s.rate:.2f}x{bound}"
        rss = "-" if f.rss_mb is None or s.rss_mb is None else f"{f.rss_mb / s.rss_mb:.2f}x"
        print(f"| {label:<46} | {rate:>20} | {rss:>24} |")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=250_000, help="log size (default 250000)")
    parser.add_argument("--sizes", help="several log sizes, e.g. 25000,100000 (overrides --events)")
    parser.add_argument("--tenants", type=int, default=6, help="businesses in the log (1-8)")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--batch", type=int, default=1000, help="page size of the raw reads")
    parser.add_argument("--repeat", type=int, default=3, help="raw reads: best of this many")
    parser.add_argument(
        "--projection", dest="projections", action="append", choices=REBUILT,
        help="rebuild only this one (repeatable; default: ledger, reconciliation, accounting)",
    )  # fmt: skip
    parser.add_argument(
        "--timeout", type=float, default=3600,
        help="seconds a phase may take; then it is stopped, its rate so far marked *",
    )  # fmt: skip
    parser.add_argument("--dsn", default=os.environ.get("LEDGERHUB_BENCH_DSN"))
    args = parser.parse_args()
    args.projections = tuple(args.projections or REBUILT)
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else [args.events]
    runs = []
    for n in sizes:
        print(f"\n== {n:,} events ==", flush=True)
        runs.append(await measure(args, n))
    for run in runs:
        table(run)
    if len(runs) > 1:
        small, large = min(runs, key=lambda r: r.events), max(runs, key=lambda r: r.events)
        growth(small, large)


if __name__ == "__main__":
    asyncio.run(main())
