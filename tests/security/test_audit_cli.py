"""The audit trail of operator actions at the command line: each is an event in the log by
``cli:<user>`` from ``local:<host>``, listed by ``ledgerhub audit``."""

from __future__ import annotations

import asyncio
import getpass
import json
import socket
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from hub.domain.audit import AUDIT_SOURCE
from hub.store import EventStore
from hub.store.parked import Parked
from hub.store.projections import ProjectionStore
from tests.factories import event
from tests.projections.count import CountByType
from tests.runtime.harness import ReadModel, cli, running, wait_until


@pytest.fixture
async def model(dsn: str) -> Any:
    conn = await asyncpg.connect(dsn)
    try:
        yield ReadModel(conn)
    finally:
        await conn.close()


async def run(dsn: str, workdir: Path, *args: str, **extra: str) -> str:
    """``ledgerhub ARGS`` in a thread (the worker in this loop goes on); its stdout."""
    done = await asyncio.to_thread(cli, dsn, workdir, *args, **extra)
    assert done.returncode == 0, (args, done.stderr)
    return done.stdout


async def test_each_operator_action_at_the_command_line_is_in_the_log(
    dsn: str,
    store: EventStore,
    model: ReadModel,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LEDGERHUB_TEST_DIR", str(tmp_path))  # the worker in this process
    config = tmp_path / "ledgerhub.toml"
    config.write_text('[tenants.default]\nsync = { target = "beancount" }\n')
    env = {"LEDGERHUB_CONFIG": str(config), "LEDGERHUB_HOME": str(tmp_path / "home")}

    created = await run(dsn, tmp_path, "keys", "create", "--tenant", "default", "--scope", "read")
    key_id = created.split()[1]
    key = created.splitlines()[-1]
    rotated = await run(dsn, tmp_path, "keys", "rotate", key_id, "--overlap", "1h")
    new_key = rotated.splitlines()[-1]
    new_id = rotated.splitlines()[1].split()[2]
    await run(dsn, tmp_path, "keys", "revoke", new_id)
    failed = await asyncio.to_thread(cli, dsn, tmp_path, "keys", "revoke", "nope")
    assert failed.returncode == 1, "no such key: refused, and not audited"

    await store.append(
        [
            event("fine"),
            event("bad-1", data={"poison": True}),
            event("bad-2", data={"poison": True}),
        ]
    )
    async with running(dsn, CountByType), ProjectionStore.over(store) as projections:
        await wait_until(model.caught_up, what="the projection to pass the poison events")
        await run(dsn, tmp_path, "replay", "count_by_type", "--from", "1", "--to", "1", "--no-wait")
        await run(dsn, tmp_path, "rebuild", "count_by_type", "--no-wait")

        async def parked() -> list[Any]:
            found = await Parked(projections).find(projection="count_by_type")
            return found if len(found) == 2 else []

        first, second = await wait_until(parked, what="the poison events to be parked again")
        await asyncio.to_thread((tmp_path / "fixed").touch)
        await run(dsn, tmp_path, "parked", "retry", str(first.id), "--timeout", "30")
        await run(dsn, tmp_path, "parked", "skip", str(second.id))
    await asyncio.to_thread(cli, dsn, tmp_path, "sync", "run", **env)  # audited when it starts

    logged = await store.read_after(0, source=AUDIT_SOURCE)
    assert [e.type for e in logged] == [
        "audit.key.created",
        "audit.key.rotated",
        "audit.key.revoked",
        "audit.projection.replay",
        "audit.projection.rebuild",
        "audit.parked.retry",
        "audit.parked.skip",
        "audit.sync.run",
    ]
    who = {(e.data["by"], e.data["from"], e.data["key_prefix"]) for e in logged}
    assert who == {(f"cli:{getpass.getuser()}", f"local:{socket.gethostname()}", None)}
    created_event, rotated_event, revoked_event = logged[:3]
    assert created_event.tenant == "default"
    assert created_event.data["subject"]["key_id"] == key_id
    assert created_event.data["subject"]["scopes"] == ["read"]
    assert rotated_event.data["subject"]["key_id"] == key_id
    assert rotated_event.data["subject"]["new_key_id"] == new_id
    assert rotated_event.data["subject"]["overlap_seconds"] == 3600
    assert revoked_event.data["subject"]["key_id"] == new_id
    assert logged[5].data["subject"]["parked_id"] == first.id
    assert logged[7].data["subject"] == {"tenant": None, "tenants": ["default"]}
    text = json.dumps([[e.data, e.meta] for e in logged])
    assert key not in text, "never a key"
    assert new_key not in text

    listed = json.loads(await run(dsn, tmp_path, "audit", "--json"))["entries"]
    assert [e["action"] for e in listed] == [e.type.removeprefix("audit.") for e in logged][::-1]
    assert all(e["by"] == f"cli:{getpass.getuser()}" for e in listed)
    table = await run(dsn, tmp_path, "audit", "--limit", "1")
    assert table.splitlines()[0].split("\t") == [
        "position", "at", "tenant", "action", "by", "from", "subject",
    ]  # fmt: skip
    assert "sync.run" in table.splitlines()[1]
    bad = await asyncio.to_thread(cli, dsn, tmp_path, "audit", "--limit", "0")
    assert bad.returncode == 2
    assert len(bad.stderr.strip().splitlines()) == 1
