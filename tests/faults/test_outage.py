"""PostgreSQL stopped and started under ``ledgerhub serve`` while it ingests and projects.

The hub runs as the README runs it by default: no ``LEDGERHUB_DSN``, so ``ledgerhub migrate``
starts the embedded PostgreSQL in ``LEDGERHUB_HOME/pg`` (here a fresh one of the test's own,
with its own socket) and ``serve`` connects to it. The test then stops that server
with ``pg_ctl stop`` (``-m fast``: sessions ended, then a checkpoint; ``-m immediate``: a crash,
recovered from the WAL) for longer than a projection lease lives, and starts it again.

While it is down: the API answers 503 with ``Retry-After`` (never a 500, never a hang),
``/readyz`` fails and ``/healthz`` still answers. After it is back, with nobody touching the
hub: ingest answers 200 again, the projection workers take their leases back and catch up,
nothing acknowledged is lost and the hash chain verifies. The accounting sync, the other
background part of ``serve``, must run again too (its own test).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import orjson

from tests.faults.conftest import (
    FAST,
    EmbeddedPostgres,
    Keys,
    Load,
    Serve,
    assert_no_server_errors,
    check_nothing_lost,
    eventually,
    free_port,
    hub_env,
    ledgerhub,
)

CLIENTS = 16
OUTAGES: tuple[Literal["fast", "immediate"], ...] = ("fast", "immediate")
DOWN_FOR = 2 * float(FAST["LEDGERHUB_LEASE_TTL"])
"""Each outage lasts at least this long: past the projections' leases, which expire meanwhile
and must be taken again when the database is back."""
ACKS = 60
"""Acknowledgements to wait for before each outage and after each recovery."""
REFUSED = 20
"""503 answers to wait for (besides ``DOWN_FOR``) while PostgreSQL is down."""


@contextlib.asynccontextmanager
async def hub_on_its_own_postgres(
    tmp_path: Path, serve_processes: list[Serve], **env_values: str
) -> AsyncIterator[tuple[Serve, EmbeddedPostgres, dict[str, str], Keys]]:
    """``ledgerhub migrate`` (which starts the embedded PostgreSQL in a fresh
    ``LEDGERHUB_HOME``), the keys, and ``serve`` on it; afterwards the server is stopped and
    its data removed."""
    postgres = EmbeddedPostgres.fresh()
    env = hub_env(LEDGERHUB_HOME=str(postgres.home), **env_values)
    try:
        migrated = await ledgerhub(env, "migrate")
        assert migrated.returncode == 0, migrated.stderr
        keys = await Keys.create(env)
        serve = Serve(env, tmp_path, free_port())
        serve_processes.append(serve)
        await serve.start()
        yield serve, postgres, env, keys
    finally:
        for process in serve_processes:
            process.close()
        postgres.remove()


async def test_postgres_stopped_and_started_during_ingest_and_projection(
    tmp_path: Path, serve_processes: list[Serve]
) -> None:
    began = time.monotonic()
    outages: list[str] = []
    async with (
        hub_on_its_own_postgres(tmp_path, serve_processes) as (serve, postgres, env, keys),
        Load(serve.url, keys.ingest, prefix="outage").session() as load,
    ):

        async def ready() -> bool:
            answer = await load.request("GET", "/readyz")
            assert answer is not None, "/readyz did not answer"
            return answer[0] == 200

        load.start(CLIENTS)
        for mode in OUTAGES:
            await load.more_acked(ACKS, after=" before the outage")
            unavailable = load.tally.unavailable()
            await asyncio.to_thread(postgres.stop, mode)
            stopped = time.monotonic()

            # Down: the clients get 503 + Retry-After (tallied and checked for every one).
            def refused_long_enough(since: int = unavailable, at: float = stopped) -> bool:
                return (
                    load.tally.unavailable() >= since + REFUSED
                    and time.monotonic() - at >= DOWN_FOR
                )

            await eventually(
                refused_long_enough, within=30, what=f"503s while PostgreSQL is down ({mode})"
            )
            readyz = await load.request("GET", "/readyz")
            assert readyz is not None
            assert readyz[0] == 503
            assert readyz[1]["Content-Type"] == "application/problem+json"
            assert "database unreachable" in orjson.loads(readyz[2])["detail"]
            healthz = await load.request("GET", "/healthz")
            assert healthz is not None
            assert healthz[0] == 200, "the process itself is alive"
            operate = await load.request("GET", "/v1/projections", key=keys.operate)
            assert operate is not None
            assert operate[0] == 503, operate
            acked_while_down = load.acked()

            await asyncio.to_thread(postgres.start)
            outages.append(f"-m {mode} for {time.monotonic() - stopped:.1f}s")

            # Back, and nobody touched the hub: ready and ingesting again (projecting: at the
            # end, where every projection must have caught up with every event).
            await eventually(ready, within=30, what="/readyz after PostgreSQL restarted")
            await load.more_acked(ACKS, after=" after PostgreSQL restarted")
            assert load.acked() > acked_while_down
        await load.stop()
        end = await check_nothing_lost(load, serve, postgres.dsn(), env, keys)
    assert_no_server_errors(load, serve)
    tally = load.tally
    assert tally.unavailable() >= REFUSED * len(OUTAGES)
    print(
        f"\noutage: PostgreSQL stopped {', '.join(outages)} under {CLIENTS} clients; "
        f"{tally.summary()}; log {end.events} events, re-sent {end.resent_duplicates} at the "
        f"end, all duplicate; {time.monotonic() - began:.1f}s"
    )


async def test_the_accounting_sync_runs_again_after_an_outage(
    tmp_path: Path, serve_processes: list[Serve]
) -> None:
    config = tmp_path / "ledgerhub.toml"
    config.write_text('[tenants.default]\nsync = { target = "beancount" }\n')
    async with (
        hub_on_its_own_postgres(
            tmp_path,
            serve_processes,
            LEDGERHUB_CONFIG=str(config),
            LEDGERHUB_SYNC_INTERVAL="0.2",
        ) as (serve, postgres, _, keys),
        Load(serve.url, keys.ingest, prefix="sync").session() as load,
    ):

        async def synced_since(moment: datetime) -> bool:
            """A sync run that started after ``moment`` has ended without an error."""
            answer = await load.request("GET", "/v1/sync/runs", key=keys.operate)
            if answer is None or answer[0] != 200:
                return False
            return any(
                datetime.fromisoformat(run["started_at"]) > moment
                and run["ended_at"] is not None
                and run["error"] is None
                for run in orjson.loads(answer[2])["runs"]
            )

        started = datetime.now(UTC)
        await eventually(lambda: synced_since(started), within=30, what="a first sync run")
        await asyncio.to_thread(postgres.stop, "fast")
        # The sync loop's next round meets the outage: it says so and waits for the next one,
        # or (the defect) its task ends; either is in the log within a few rounds.
        await eventually(
            lambda: bool(serve.crashes()) or "(next round)" in serve.logs(),
            within=30,
            what="a sync round during the outage",
        )
        assert not serve.crashes(), serve.crashes()
        back = datetime.now(UTC)
        await asyncio.to_thread(postgres.start)
        await eventually(
            lambda: synced_since(back), within=30, what="a sync run after PostgreSQL restarted"
        )
        assert await serve.stop() == 0
    assert_no_server_errors(load, serve)
