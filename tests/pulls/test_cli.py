"""``ledgerhub pull run`` and ``ledgerhub pull status`` as a user runs them: a real process, a
real database, the fake Stripe."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import asyncpg
import orjson

from tests.pulls.conftest import STRIPE_KEY, STRIPE_SOURCE, ConfigWriter, stripe_connection
from tests.pulls.fake_stripe import DAY, FakeStripe, History, serve


async def ledgerhub(dsn: str, config: Path, *args: str) -> tuple[int, str, str]:
    """Run ``ledgerhub ARGS`` without blocking this loop (the fake answers in it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGERHUB_")}
    env.update(LEDGERHUB_DSN=dsn, LEDGERHUB_CONFIG=str(config), STRIPE_API_KEY=STRIPE_KEY)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hub", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


async def test_usage_mistakes_exit_2_and_a_connector_that_cannot_pull_exits_1(
    dsn: str, write_config: ConfigWriter, tmp_path: Path
) -> None:
    config = tmp_path / "ledgerhub.toml"
    write_config(
        stripe_connection("http://127.0.0.1:9") + '[[connections]]\nid = "bank:checking"\n'
        'connector = "bank"\n'
    )
    code, _, err = await ledgerhub(
        dsn, config, "pull", "run", STRIPE_SOURCE, "--since", "2025-13-01"
    )
    assert code == 2
    assert "'2025-13-01' is not a date (YYYY-MM-DD)" in one_line(err)
    code, _, err = await ledgerhub(dsn, config, "pull", "run", "stripe:nope")
    assert code == 2
    assert "no connection 'stripe:nope'" in one_line(err)
    code, _, err = await ledgerhub(dsn, config, "pull", "run", "bank:checking")
    assert code == 1
    assert one_line(err) == "ledgerhub: connection bank:checking: connector 'bank' cannot pull"


async def test_pull_run_then_status_shows_cursors_and_the_last_run(
    dsn: str, write_config: ConfigWriter, tmp_path: Path
) -> None:
    config = tmp_path / "ledgerhub.toml"
    today = int(time.time()) // DAY * DAY
    history = History(seed=5)
    history.add_days(today - 20 * DAY, 20, 6)
    history.settle(today - 1)
    async with serve(FakeStripe(history)) as fake:
        write_config(stripe_connection(fake.url))
        code, out, err = await ledgerhub(dsn, config, "pull", "run", STRIPE_SOURCE)
        assert code == 0, err
        expected = len(history.expected_ids())
        assert out.strip().startswith(
            f"pulled {STRIPE_SOURCE}: {expected} new event(s), 0 already in the log, "
        )
        assert f"pulling {STRIPE_SOURCE}:" in err  # plain progress lines off a terminal
        code, out, err = await ledgerhub(dsn, config, "pull", "run", STRIPE_SOURCE, "--json")
        assert code == 0, err
        report = orjson.loads(out)
        assert (report["status"], report["records"]) == ("succeeded", 0)
    code, out, err = await ledgerhub(dsn, config, "pull", "status", "--json")
    assert code == 0, err
    (connection,) = orjson.loads(out)["connections"]
    assert connection["id"] == STRIPE_SOURCE
    assert connection["every_seconds"] == 900
    streams = {s["stream"]: s["cursor"] for s in connection["streams"]}
    assert set(streams) == {"charges", "refunds", "disputes", "payouts"}
    in_transit = history.payouts[-1]
    assert in_transit["status"] == "in_transit"
    assert streams["payouts"] == {"since": in_transit["created"]}  # held by the open payout
    last = connection["last_run"]
    assert (last["kind"], last["status"], last["records"]) == ("pull", "succeeded", 0)
    assert last["id"] == report["run"]
    code, out, err = await ledgerhub(dsn, config, "pull", "status")
    assert code == 0, err
    assert out.splitlines()[0].split("\t") == [
        "connection", "stream", "cursor", "updated_at", "last_run"
    ]  # fmt: skip
    assert len(out.splitlines()) == 5


async def test_a_worker_runs_the_scheduled_pulls(
    dsn: str, write_config: ConfigWriter, tmp_path: Path
) -> None:
    today = int(time.time()) // DAY * DAY
    history = History(seed=8)
    history.add_days(today - 5 * DAY, 5, 3)
    history.settle(today - 1)
    async with serve(FakeStripe(history)) as fake:
        write_config(stripe_connection(fake.url, every="1h"))
        env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGERHUB_")}
        env.update(
            LEDGERHUB_DSN=dsn,
            LEDGERHUB_CONFIG=str(tmp_path / "ledgerhub.toml"),
            STRIPE_API_KEY=STRIPE_KEY,
            LEDGERHUB_PULL_TICK="0.2",
        )
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "hub", "worker", "--no-sync", env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        conn = await asyncpg.connect(dsn)
        try:
            deadline = asyncio.get_running_loop().time() + 60
            while not await conn.fetchval("SELECT count(*) FROM ledgerhub.runs"):
                assert proc.returncode is None, await proc.stderr.read()  # type: ignore[union-attr]
                assert asyncio.get_running_loop().time() < deadline, "no scheduled pull ran"
                await asyncio.sleep(0.1)
            run = await conn.fetchrow("SELECT kind, status, records FROM ledgerhub.runs")
        finally:
            await conn.close()
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.communicate(), 60)
    assert run is not None
    assert (run["kind"], run["status"], run["records"]) == (
        "pull",
        "succeeded",
        len(history.expected_ids()),
    )
