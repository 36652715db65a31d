"""``serve --processes N``: a real ``ledgerhub serve --processes 2`` as a subprocess, concurrent
clients, both processes answering, contiguous positions with a verifying chain, and how it stops
(SIGTERM: cleanly; a child killed: the parent stops the other and exits non-zero)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import asyncpg
import orjson
import pytest

from hub.cli.processes import STOP_SECONDS

EVENTS = 400
CLIENTS = 16
START_SECONDS = 90.0


@dataclass
class Hub:
    process: subprocess.Popen[bytes]
    url: str
    key: str
    env: dict[str, str]
    log: Path


def _hub_env(dsn: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGERHUB_")}
    return {**env, "LEDGERHUB_DSN": dsn, "LEDGERHUB_LOG_FORMAT": "json"}


def _lines(log: Path) -> list[dict[str, object]]:
    found = []
    for line in log.read_bytes().splitlines():
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(value, dict):
            found.append(value)
    return found


def _wait_for(what: str, done: object, timeout: float = START_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while not done():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def hub(dsn: str, tmp_path: Path) -> Iterator[Hub]:
    env = _hub_env(dsn)
    created = subprocess.run(
        [sys.executable, "-m", "hub", "keys", "create", "--tenant", "default", "--scope",
         "ingest:*"], env=env, capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    key = created.stdout.strip().splitlines()[-1]
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "hub", "serve", "--port", "0", "--processes", "2",
             "--no-workers"], env=env, stderr=sink, stdout=sink,
        )  # fmt: skip
    try:
        parent: list[dict[str, object] | None] = [None]

        def started() -> bool:
            assert process.poll() is None, log.read_text()
            parent[0] = next(
                (
                    line
                    for line in _lines(log)
                    if "with 2 processes" in str(line.get("event")) and "pid" not in line
                ),
                None,
            )
            return parent[0] is not None

        _wait_for("serve --processes 2 to listen", started)
        line = str(parent[0]["event"])  # type: ignore[index]
        url = line.split("serving on ", 1)[1].split()[0]
        yield Hub(process, url, key, env, log)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


async def _post_all(hub: Hub, bodies: list[bytes]) -> list[dict[str, object]]:
    headers = {"Authorization": f"Bearer {hub.key}", "Content-Type": "application/json"}
    results: list[dict[str, object]] = []
    queue = iter(bodies)
    # a fresh connection per request, so that the kernel spreads them over both processes
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session:

        async def client() -> None:
            for body in queue:
                async with session.post(f"{hub.url}/v1/events", data=body, headers=headers) as r:
                    assert r.status == 200, await r.text()
                    results.extend((await r.json())["results"])

        await asyncio.gather(*(client() for _ in range(CLIENTS)))
    return results


def _body(index: int) -> bytes:
    event = {
        "source": "stripe:acct_processes",
        "external_id": f"evt_{index}",
        "type": "stripe.charge.succeeded",
        "occurred_at": "2026-01-02T03:04:05Z",
        "data": {"amount": index, "currency": "usd"},
        "stream": f"stripe:acct_processes/ch_{index % 7}",
    }
    return orjson.dumps({"events": [event]})


async def test_two_processes_append_one_contiguous_chain(hub: Hub, dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:  # what the log held before (``keys create`` may have logged its own event)
        before = await conn.fetchval("SELECT count(*) FROM ledgerhub.events")
    finally:
        await conn.close()
    results = await _post_all(hub, [_body(i) for i in range(EVENTS)])
    assert sorted(int(str(r["position"])) for r in results) == list(
        range(before + 1, before + EVENTS + 1)
    )
    assert {r["status"] for r in results} == {"appended"}

    # both processes answered
    answered = {
        line["pid"]
        for line in _lines(hub.log)
        if line.get("logger") == "ledgerhub.access" and line.get("path") == "/v1/events"
    }
    pids = {line["pid"] for line in _lines(hub.log) if "pid" in line}
    assert len(pids) == 2
    assert answered == pids

    conn = await asyncpg.connect(dsn)
    try:
        positions = [r["position"] for r in await conn.fetch(
            "SELECT position FROM ledgerhub.events ORDER BY position")]  # fmt: skip
        versions = await conn.fetch(
            "SELECT stream, array_agg(stream_version ORDER BY position) AS v "
            "FROM ledgerhub.events GROUP BY stream"
        )
    finally:
        await conn.close()
    assert positions == list(range(1, before + EVENTS + 1))
    for row in versions:  # each stream's versions 1..n in log order, across both processes
        assert list(row["v"]) == list(range(1, len(row["v"]) + 1))

    verified = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "hub", "verify"],
        env=hub.env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stdout + verified.stderr

    # a duplicate sent to either process answers the original position
    again = await _post_all(hub, [_body(3)] * 4)
    assert {(r["status"], r["position"]) for r in again} == {
        ("duplicate", next(r["position"] for r in results if r["external_id"] == "evt_3"))
    }

    hub.process.send_signal(signal.SIGTERM)
    assert hub.process.wait(timeout=60) == 0
    assert not _alive(pids)


def _alive(pids: set[object]) -> set[object]:
    alive = set()
    for pid in pids:
        try:
            os.kill(int(str(pid)), 0)
        except ProcessLookupError:
            continue
        alive.add(pid)
    return alive


def test_a_child_that_dies_stops_the_parent_non_zero(hub: Hub) -> None:
    pids = sorted({int(str(line["pid"])) for line in _lines(hub.log) if "pid" in line})
    assert len(pids) == 2
    os.kill(pids[0], signal.SIGKILL)
    # the parent stops the other child at once: it does not first wait out the grace it gives
    # children to stop (STOP_SECONDS) for that child to exit on its own
    assert hub.process.wait(timeout=STOP_SECONDS / 2) == 1
    said = hub.log.read_text()
    assert f"(pid {pids[0]}) exited with -9" in said
    _wait_for("the other child to stop", lambda: not _alive({pids[1]}), timeout=60)


def test_a_parent_killed_takes_its_children_with_it(hub: Hub) -> None:
    pids = {int(str(line["pid"])) for line in _lines(hub.log) if "pid" in line}
    assert len(pids) == 2
    assert _alive(set(pids)) == pids
    hub.process.kill()
    hub.process.wait(timeout=30)
    _wait_for("the children to stop", lambda: not _alive(set(pids)), timeout=60)
