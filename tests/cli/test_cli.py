"""The `ledgerhub` command as a user runs it: a real process, a real database."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import asyncpg
import orjson
import pytest

from hub.store import EventStore
from hub.testing.postgres import Databases
from hub.usecases.demo import sample_events

SAMPLES = sample_events()


def ledgerhub(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("LEDGERHUB_")}
    return subprocess.run(
        [sys.executable, "-m", "hub", *args],
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture
async def empty_dsn(databases: Databases):  # type: ignore[no-untyped-def]
    url = await databases.create(migrated=False)
    yield url
    await databases.drop(url)


def test_migrate_then_verify_an_empty_log(empty_dsn: str) -> None:
    env = {"LEDGERHUB_DSN": empty_dsn}
    first = ledgerhub("migrate", env=env)
    assert first.returncode == 0, first.stderr
    assert "applied 0001_event_log" in first.stdout
    again = ledgerhub("migrate", env=env)
    assert again.stdout.strip() == "schema is current"
    verified = ledgerhub("verify", env=env)
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.strip() == "log verifies: 0 events (the log is empty)"


def test_verify_before_migrate_says_what_to_do(empty_dsn: str) -> None:
    line = one_line_error(ledgerhub("verify", env={"LEDGERHUB_DSN": empty_dsn}))
    assert "ledgerhub migrate" in line


def demo_env(dsn: str, home: Path) -> dict[str, str]:
    """A demo on the test's database, its config and Beancount file under the test's own home."""
    return {"LEDGERHUB_DSN": dsn, "LEDGERHUB_HOME": str(home)}


def sent(demo_output: str) -> int:
    """How many documents the demo's sync run sent."""
    found = re.search(r"sync to beancount at \S+: (\d+) documents sent", demo_output)
    assert found, demo_output
    return int(found[1])


async def test_verify_names_the_broken_position(dsn: str, tmp_path: Path) -> None:
    env = demo_env(dsn, tmp_path)
    assert ledgerhub("demo", env=env).returncode == 0
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            await conn.execute("SET LOCAL session_replication_role = replica")  # triggers off
            await conn.execute(
                "UPDATE ledgerhub.events SET meta = '{\"forged\": true}' WHERE position = 4"
            )
    finally:
        await conn.close()
    line = one_line_error(ledgerhub("verify", env=env))
    assert line.startswith("ledgerhub: chain broken at position 4:")


async def test_events_tail_prints_json_lines(dsn: str, tmp_path: Path) -> None:
    env = demo_env(dsn, tmp_path)
    async with await EventStore.open(dsn) as store:
        await store.append(SAMPLES)
    n = len(SAMPLES)
    shop = SAMPLES[-1].source
    tail = ledgerhub("events", "tail", "--after", str(n - 2), "--source", shop, env=env)
    assert tail.returncode == 0, tail.stderr
    lines = [orjson.loads(line) for line in tail.stdout.splitlines()]
    assert [e["position"] for e in lines] == [n - 1, n]
    assert [e["external_id"] for e in lines] == [e.external_id for e in SAMPLES[-2:]]
    only = ledgerhub("events", "tail", "--after", "0", "--type", "stripe.payout.paid", env=env)
    expected = [e.external_id for e in SAMPLES if e.type == "stripe.payout.paid"]
    assert [orjson.loads(x)["external_id"] for x in only.stdout.splitlines()] == expected


def test_usage_error_is_one_line_exit_2() -> None:
    result = ledgerhub("frobnicate")
    assert result.returncode == 2
    assert "invalid choice: 'frobnicate'" in one_line_error(result)


def test_a_bad_dsn_is_named() -> None:
    line = one_line_error(ledgerhub("migrate", env={"LEDGERHUB_DSN": "mysql://x"}))
    assert "LEDGERHUB_DSN must be a postgresql:// URL" in line


def test_an_unreachable_server_is_a_clear_error() -> None:
    line = one_line_error(
        ledgerhub("migrate", env={"LEDGERHUB_DSN": "postgresql://nobody@127.0.0.1:1/x"})
    )
    assert "cannot connect to PostgreSQL" in line


def test_embedded_server_that_cannot_start_says_why(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the data directory should go")
    line = one_line_error(ledgerhub("migrate", env={"LEDGERHUB_HOME": str(blocker)}))
    assert "embedded PostgreSQL" in line
    assert "could not start" in line
