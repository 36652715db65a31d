"""``ledgerhub sync run|status`` as a user runs them, and ``GET /v1/sync/runs`` over HTTP."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from hub.api.server import open_hub, serving
from hub.config import Config, load_config
from hub.domain.keys import Scope, key_digest, key_prefix, new_key
from hub.store import EventStore
from hub.store.keys import KeyStore
from tests.accounting.harness import cli as _cli
from tests.accounting.harness import documents, running, settle, write_config
from tests.accounting.targets import bean_check
from tests.ledger.harness import Books
from tests.ledger.scenarios import stripe_scenario


async def _key(keys: KeyStore, tenant: str, scope: str) -> str:
    key = new_key()
    await keys.create(
        digest=key_digest(key), prefix=key_prefix(key), tenant=tenant, scope=Scope.parse(scope)
    )
    return key


async def _get(session: aiohttp.ClientSession, url: str, key: str) -> tuple[int, Any]:
    async with session.get(url, headers={"Authorization": f"Bearer {key}"}) as response:
        return response.status, await response.json(content_type=None)


async def test_sync_run_writes_the_books_and_status_and_http_show_the_run(
    dsn: str, store: EventStore, config: Path, books: Books, tmp_path: Path
) -> None:
    write_config(config, "per_payout")
    scenario = stripe_scenario()
    async with running(dsn):
        await store.append(scenario.before_payout + scenario.payout_paid)
        await settle(books.conn, ("ledger", "accounting"))
    docs = await documents(books.conn)
    home = tmp_path / "home"

    code, out, err = await _cli(dsn, config, home, "sync", "run")
    assert code == 0, err
    assert f"{len(docs)} sent, 0 failed" in out
    bean_check(home / "sync" / "default.beancount")
    code, out, err = await _cli(dsn, config, home, "sync", "run")
    assert code == 0, err
    assert "0 sent" in out  # nothing new

    code, out, err = await _cli(dsn, config, home, "sync", "status", "--json")
    assert code == 0, err
    runs = orjson.loads(out)["runs"]
    assert [(r["tenant"], r["target"], r["sent"]) for r in runs] == [
        ("default", "beancount", 0),
        ("default", "beancount", len(docs)),
    ]
    assert all(r["ended_at"] is not None for r in runs)

    async with open_hub(dsn, Config()) as hub:
        operate = await _key(hub.keys, "*", "operate")
        other = await _key(hub.keys, "acme", "operate")
        read = await _key(hub.keys, "default", "read")
        async with serving(hub, port=0) as url, aiohttp.ClientSession() as session:
            status, body = await _get(session, f"{url}/v1/sync/runs?limit=1", operate)
            assert status == 200
            assert [r["sent"] for r in body["runs"]] == [0]
            status, body = await _get(session, f"{url}/v1/sync/runs?before={body['next']}", operate)
            assert [r["sent"] for r in body["runs"]] == [len(docs)]
            assert body["next"] is None
            status, body = await _get(session, f"{url}/v1/sync/runs", other)
            assert (status, body["runs"]) == (200, [])  # another tenant's key sees none
            status, body = await _get(session, f"{url}/v1/sync/runs", read)
            assert status == 403
            status, body = await _get(session, f"{url}/v1/sync/runs?limit=0", operate)
            assert status == 422


async def test_sync_run_without_a_target_fails_with_one_line(
    dsn: str, config: Path, tmp_path: Path
) -> None:
    code, _, err = await _cli(dsn, config, tmp_path, "sync", "run")
    assert code == 1
    assert "no tenant has a sync target" in err
    assert len(err.strip().splitlines()) == 1


async def test_serve_sends_in_the_background(
    dsn: str,
    store: EventStore,
    config: Path,
    books: Books,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from connectors.beancount import BeancountTarget
    from hub.cli.serve import accounting_sync
    from tests.accounting.targets import CHART

    write_config(config, "daily")
    monkeypatch.setenv("LEDGERHUB_HOME", str(tmp_path))
    monkeypatch.setenv("LEDGERHUB_SYNC_INTERVAL", "0.1")
    ledger = BeancountTarget(tmp_path / "sync" / "default.beancount", CHART)
    scenario = stripe_scenario()
    async with (
        running(dsn),
        open_hub(dsn, load_config(config)) as hub,  # serve hands its loaded config on
        serving(hub, port=0, background=[accounting_sync]),
    ):
        await store.append(scenario.before_payout + scenario.payout_paid)
        await settle(books.conn, ("ledger", "accounting"))
        wanted = {d["content_hash"] for d in (await documents(books.conn)).values()}
        assert wanted
        async with asyncio.timeout(30):
            while {h.content_hash for h in await ledger.held()} != wanted:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
    bean_check(ledger.path)
