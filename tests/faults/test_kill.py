"""SIGKILL of ``ledgerhub serve`` under concurrent clients that retry until acknowledged.

A 2xx means committed (durable before acknowledged), and an event is in the log once however
often it is sent (idempotent), so clients that retry through kills lose and duplicate nothing:
every acknowledged event is in the log exactly once at the position it was acknowledged with,
positions stay 1..N without holes, the hash chain verifies, and the projections (in the
restarted server's workers, after the killed one's leases expire) catch up.
"""

from __future__ import annotations

import time
from pathlib import Path

import asyncpg

from tests.faults.conftest import (
    Keys,
    Load,
    Serve,
    assert_no_server_errors,
    caught_up,
    charge,
    check_nothing_lost,
    eventually,
    free_port,
    hub_env,
)

CLIENTS = 24
KILLS = 5
ACKS_BEFORE_KILL = (25, 120, 40, 200, 60, 80)
"""New acknowledgements to wait for after each (re)start before the next kill (varied, so the
kills land at different points of the load); the last is before the load stops."""


async def test_kill_9_under_load_loses_and_duplicates_nothing(
    dsn: str, tmp_path: Path, serve_processes: list[Serve]
) -> None:
    began = time.monotonic()
    env = hub_env(LEDGERHUB_DSN=dsn)
    keys = await Keys.create(env)
    serve = Serve(env, tmp_path, free_port())
    serve_processes.append(serve)
    await serve.start()
    async with Load(serve.url, keys.ingest, prefix="kill").session() as load:
        load.start(CLIENTS)
        for kill, wanted in enumerate(ACKS_BEFORE_KILL):
            await load.more_acked(wanted, after=f" after start {kill + 1} of serve")
            if kill == KILLS:
                break
            await serve.kill()
            assert serve.proc is not None
            assert serve.proc.returncode == -9
            await serve.start()
        await load.stop()
        end = await check_nothing_lost(load, serve, dsn, env, keys)
    assert_no_server_errors(load, serve)
    tally = load.tally
    assert tally.dropped > 0, "the kills should have broken some clients' connections"
    assert serve.starts == KILLS + 1
    print(
        f"\nkill: {KILLS} SIGKILLs of serve under {CLIENTS} clients; {tally.summary()}; "
        f"log {end.events} events, re-sent {end.resent_duplicates} at the end, all duplicate; "
        f"{time.monotonic() - began:.1f}s"
    )


async def test_an_error_a_killed_worker_left_is_cleared_by_the_worker_after_it(
    dsn: str, tmp_path: Path, serve_processes: list[Serve]
) -> None:
    """A projection's ``last_error`` (its state ``failing``) says what its runner is backing off
    from. When the process running it dies mid-backoff, the worker that takes the lease over must
    clear it once it runs fine, or the projection reads ``failing`` for good."""
    env = hub_env(LEDGERHUB_DSN=dsn)
    keys = await Keys.create(env)
    serve = Serve(env, tmp_path, free_port())
    serve_processes.append(serve)
    await serve.start()
    conn = await asyncpg.connect(dsn)
    try:

        async def errors() -> dict[str, str | None]:
            rows = await conn.fetch("SELECT name, last_error FROM ledgerhub.projections")
            return {r["name"]: r["last_error"] for r in rows}

        async with Load(serve.url, keys.ingest, prefix="left").session() as load:
            assert await load.until_acked([charge(f"left-{n}") for n in range(5)]) is not None
            await eventually(lambda: caught_up(conn), within=30, what="the projections to catch up")
            # The database refuses the hub's role the log (an operator's mistake, say): every
            # runner fails, records why, and backs off.
            await conn.execute("REVOKE SELECT ON ledgerhub.events FROM ledgerhub_app")
            failing = await errors()

            async def all_failing() -> bool:
                failing.update(await errors())
                return all(failing.values())

            await eventually(all_failing, within=30, what="every projection to record an error")
            await serve.kill()  # mid-backoff: nobody clears those errors on the way out
            await conn.execute("GRANT SELECT ON ledgerhub.events TO ledgerhub_app")
            await serve.start()
            assert await load.until_acked([charge("left-after")]) is not None
            await eventually(
                lambda: caught_up(conn), within=30, what="the projections to catch up again"
            )

            async def all_clear() -> bool:
                return not any((await errors()).values())

            await eventually(all_clear, within=30, what="the errors left behind to be cleared")
            assert await serve.stop() == 0
        assert_no_server_errors(load, serve)
        assert "SchemaError" in " ".join(str(e) for e in failing.values())
    finally:
        await conn.close()
