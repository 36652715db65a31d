"""The runs log of imports and sync runs: ``ledgerhub import bank`` and ``ledgerhub sync run``
write their rows, ``GET /v1/runs`` and ``ledgerhub runs`` show them (kind filter, paging, a bad
parameter named in a problem), and a scheduled sync run with nothing to do writes none."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import orjson

from hub.api.server import open_hub, serving
from hub.config import Config, load_config
from hub.domain.keys import Scope, key_digest, key_prefix, new_key
from hub.spi.registry import document_source
from hub.store import EventStore
from hub.store.keys import KeyStore
from hub.sync.sender import Sender
from hub.sync.tenants import open_targets
from tests.accounting.harness import cli, documents, running, settle, write_config
from tests.ledger.conftest import books, config
from tests.ledger.harness import Books
from tests.ledger.scenarios import stripe_scenario

__all__ = ["books", "config"]

OFX = Path(__file__).parent.parent / "fixtures" / "ofx"
FIELDS = {
    "id", "kind", "tenant", "connection", "started_at", "ended_at", "status", "records", "errors",
    "api_calls", "error",
}  # fmt: skip


async def _key(keys: KeyStore, tenant: str, scope: str) -> str:
    key = new_key()
    await keys.create(
        digest=key_digest(key), prefix=key_prefix(key), tenant=tenant, scope=Scope.parse(scope)
    )
    return key


async def _get(session: aiohttp.ClientSession, url: str, key: str) -> tuple[int, str, Any]:
    async with session.get(url, headers={"Authorization": f"Bearer {key}"}) as response:
        return response.status, response.content_type, await response.json(content_type=None)


async def test_imports_and_sync_runs_are_in_the_runs_log(
    dsn: str, store: EventStore, config: Path, books: Books, tmp_path: Path
) -> None:
    write_config(config, "per_payout")
    scenario = stripe_scenario()
    async with running(dsn):
        await store.append(scenario.before_payout + scenario.payout_paid)
        await settle(books.conn, ("ledger", "accounting"))
    docs = await documents(books.conn)
    home = tmp_path / "home"
    ofx = str(OFX / "checking.ofx")

    # its 3 lines and its closing balance (LEDGERBAL): 4 events
    code, out, err = await cli(dsn, config, home, "import", "bank", ofx, "--account", "checking")
    assert (code, "4 new" in out) == (0, True), err
    code, out, err = await cli(dsn, config, home, "import", "bank", ofx, "--account", "checking")
    assert (code, "0 new, 4 already in the log" in out) == (0, True), err
    broken = str(OFX / "bank_small.ofx")
    code, _, err = await cli(dsn, config, home, "import", "bank", broken, "--account", "checking")
    assert code == 1
    assert "no bank or card statement" in err

    # a scheduled run that sends writes a row, one that finds nothing to send writes none;
    # a person's run always does
    async with open_targets(load_config(config), home) as pairs:
        [(tenant, target)] = pairs
        sender = Sender(store, document_source())
        for _ in range(2):
            assert await sender.run(tenant, target, scheduled=True) is not None
    code, out, err = await cli(dsn, config, home, "sync", "run")
    assert code == 0, err
    assert "0 sent" in out

    code, out, err = await cli(dsn, config, home, "runs", "--json")
    assert code == 0, err
    listed = orjson.loads(out)
    assert listed["next"] is None
    runs = listed["runs"]
    assert all(set(r) == FIELDS for r in runs)
    shown = [(r["kind"], r["connection"], r["status"], r["records"]) for r in runs]
    assert shown == [
        ("sync", "sync:beancount", "succeeded", 0),
        ("sync", "sync:beancount", "succeeded", len(docs)),
        ("import", "bank:checking", "failed", 0),
        ("import", "bank:checking", "succeeded", 0),
        ("import", "bank:checking", "succeeded", 4),
    ]
    assert all(r["tenant"] == "default" and r["ended_at"] is not None for r in runs)
    sent, failed = runs[1], runs[2]
    assert sent["api_calls"] >= len(docs)
    assert sent["errors"] == 0
    assert failed["errors"] == 1
    assert "no bank or card statement" in failed["error"]
    assert runs[0]["api_calls"] == 0  # nothing new: no call to the target

    code, out, err = await cli(dsn, config, home, "runs", "--kind", "import")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split("\t")[:3] == ["id", "kind", "tenant"]
    assert [line.split("\t")[1] for line in lines[1:]] == ["import"] * 3
    code, _, err = await cli(dsn, config, home, "runs", "--kind", "nope")
    assert code == 2
    assert "--kind" in err

    async with open_hub(dsn, Config()) as hub:
        operate = await _key(hub.keys, "*", "operate")
        other = await _key(hub.keys, "acme", "operate")
        read = await _key(hub.keys, "default", "read")
        async with serving(hub, port=0) as url, aiohttp.ClientSession() as session:
            status, _, body = await _get(session, f"{url}/v1/runs", operate)
            assert (status, body) == (200, listed)
            status, _, body = await _get(session, f"{url}/v1/runs?kind=sync&limit=1", operate)
            assert status == 200
            assert body["runs"] == runs[:1]
            assert body["next"] == runs[0]["id"]
            page = f"{url}/v1/runs?kind=sync&limit=1&before={body['next']}"
            status, _, body = await _get(session, page, operate)
            assert status == 200
            assert body["runs"] == runs[1:2]
            page = f"{url}/v1/runs?kind=sync&limit=1&before={body['next']}"
            status, _, body = await _get(session, page, operate)
            assert (status, body) == (200, {"runs": [], "next": None})
            status, _, body = await _get(session, f"{url}/v1/runs?kind=import", operate)
            assert body["runs"] == runs[2:]
            status, _, body = await _get(session, f"{url}/v1/runs", other)
            assert (status, body["runs"]) == (200, [])  # another tenant's key sees none
            status, _, body = await _get(session, f"{url}/v1/runs", read)
            assert status == 403
            status, media, body = await _get(session, f"{url}/v1/runs?kind=pulls", operate)
            assert (status, media) == (422, "application/problem+json")
            assert [e["field"] for e in body["errors"]] == ["kind"]
            assert "kind" in body["detail"]
