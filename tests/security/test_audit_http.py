"""The audit trail of operator actions over HTTP: each action is an event in the log with the
key's id and the client address (``--trust-proxy`` honoured), listed by ``GET /v1/audit`` and
``ledgerhub audit``; the projections go on past these events."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from hub.api.context import HubContext
from hub.domain.audit import AUDIT_SOURCE
from hub.domain.keys import parse_network
from hub.spi.registry import discover
from hub.store import EventStore
from hub.store.projections import ProjectionStore
from projections.ledger import Ledger
from tests.factories import event
from tests.projections.count import CountByType
from tests.runtime.harness import ReadModel, cli, running, wait_until
from tests.security.conftest import create_key, serve


async def call(
    url: str,
    method: str,
    path: str,
    key: str,
    *,
    source_ip: str = "127.0.0.1",
    json_body: Any = None,
    **headers: str,
) -> tuple[int, Any]:
    """One request from ``source_ip``; its status and JSON answer."""
    connector = aiohttp.TCPConnector(local_addr=(source_ip, 0))
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.request(
            method,
            url + path,
            json=json_body,
            headers={"Authorization": f"Bearer {key}", **headers},
        ) as response,
    ):
        return response.status, await response.json(content_type=None)


@pytest.fixture
async def model(dsn: str) -> Any:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        yield ReadModel(conn)
    finally:
        await conn.close()


async def audit_events(store: EventStore) -> list[Any]:
    return await store.read_after(0, source=AUDIT_SOURCE)


async def test_each_operator_action_over_http_is_in_the_log_with_its_key_and_address(
    hub: HubContext,
    dsn: str,
    store: EventStore,
    model: ReadModel,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LEDGERHUB_TEST_DIR", str(tmp_path))
    operator, op = await create_key(hub, "operate", tenant="*")
    acme_operator, acme = await create_key(hub, "operate", tenant="acme")
    await store.append(
        [
            event("fine"),
            event("bad-default", data={"poison": True}),
            event("bad-acme", tenant="acme", data={"poison": True}),
        ]
    )
    async with serve(hub) as served, running(dsn, CountByType):
        url = served.url
        await wait_until(model.caught_up, what="the projection to pass the poison events")
        status, job = await call(
            url, "POST", "/v1/projections/count_by_type/replay", operator,
            json_body={"from": 1, "to": 2},
        )  # fmt: skip
        assert status == 202, job
        status, rebuild = await call(url, "POST", "/v1/projections/count_by_type/rebuild", operator)
        assert status == 202, rebuild

        async def rebuilt() -> bool:  # the parked events to act on are the new generation's
            state = await model.conn.fetchval(
                "SELECT state FROM ledgerhub.projection_jobs WHERE id = $1", rebuild["id"]
            )
            return bool(state == "done")

        await wait_until(rebuilt, what="the rebuild to be swapped in")

        async def parked() -> list[dict[str, Any]]:
            _, page = await call(url, "GET", "/v1/parked", operator)
            found: list[dict[str, Any]] = page["parked"]
            return found if len(found) == 2 else []

        by_position = {p["position"]: p for p in await wait_until(parked, what="parked events")}
        await asyncio.to_thread((tmp_path / "fixed").touch)
        status, _ = await call(
            url, "POST", f"/v1/parked/{by_position[3]['id']}/retry", acme_operator,
            source_ip="127.0.0.2",
        )  # fmt: skip
        assert status == 202
        status, _ = await call(url, "POST", f"/v1/parked/{by_position[2]['id']}/skip", operator)
        assert status == 200
        retried = by_position[3]["id"]

        async def resolved() -> bool:
            _, page = await call(url, "GET", "/v1/parked?status=all", operator)
            return any(p["id"] == retried and p["status"] == "resolved" for p in page["parked"])

        await wait_until(resolved, what="the retried event to be applied")
        # refused actions are not audited: a resolved event cannot be skipped, a tenant's key
        # may not rebuild, there is no projection nope
        status, _ = await call(url, "POST", f"/v1/parked/{retried}/skip", operator)
        assert status == 422
        status, _ = await call(url, "POST", "/v1/projections/count_by_type/rebuild", acme_operator)
        assert status == 403
        status, _ = await call(url, "POST", "/v1/projections/nope/rebuild", operator)
        assert status == 404

        status, listed = await call(url, "GET", "/v1/audit?limit=10", operator)
        assert status == 200
        status, acme_listed = await call(url, "GET", "/v1/audit", acme_operator)
        assert status == 200
        await wait_until(model.caught_up, what="the projection to pass the audit events")

    logged = await audit_events(store)
    assert [(e.type, e.tenant) for e in logged] == [
        ("audit.projection.replay", "*"),
        ("audit.projection.rebuild", "*"),
        ("audit.parked.retry", "acme"),
        ("audit.parked.skip", "default"),
    ]
    who = [(e.data["by"], e.data["key_prefix"], e.data["from"]) for e in logged]
    assert who == [
        (str(op.id), op.prefix, "127.0.0.1"),
        (str(op.id), op.prefix, "127.0.0.1"),
        (str(acme.id), acme.prefix, "127.0.0.2"),
        (str(op.id), op.prefix, "127.0.0.1"),
    ]
    assert logged[0].data["subject"] == {
        "projection": "count_by_type", "from": 1, "to": 2, "send": False, "partition": None,
    }  # fmt: skip
    assert logged[2].data["subject"] == {
        "parked_id": by_position[3]["id"], "projection": "count_by_type", "position": 3,
    }  # fmt: skip
    assert all(e.meta.get("request_id") for e in logged)
    text = json.dumps([[e.data, e.meta] for e in logged])
    assert operator not in text, "never a key"
    assert acme_operator not in text

    entries = listed["entries"]
    assert [e["action"] for e in entries] == [
        "parked.skip", "parked.retry", "projection.rebuild", "projection.replay",
    ]  # fmt: skip
    assert [e["position"] for e in entries] == sorted((e.position for e in logged), reverse=True)
    assert (entries[1]["by"], entries[1]["from"]) == (str(acme.id), "127.0.0.2")
    assert listed["next"] is None
    assert [e["action"] for e in acme_listed["entries"]] == ["parked.retry"], "its tenant's"
    counts = await model.counts()
    assert {t: n for t, n in counts.items() if t.startswith("audit.")} == {
        "audit.projection.replay": 1,
        "audit.projection.rebuild": 1,
        "audit.parked.retry": 1,
        "audit.parked.skip": 1,
    }, "the projection applied the audit events like any other, and caught up"

    shown = cli(dsn, tmp_path, "audit", "--json", "--limit", "2")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["entries"] == entries[:2]


async def test_behind_a_trusted_proxy_the_audit_names_the_forwarded_client(
    hub: HubContext, dsn: str, store: EventStore, model: ReadModel
) -> None:
    operator, op = await create_key(hub, "operate", tenant="*")
    await store.append([event("one")])
    async with (
        serve(hub, trusted=[parse_network("127.0.0.2/32")]) as served,
        running(dsn, CountByType),
    ):
        await wait_until(model.caught_up, what="the projection to catch up")
        status, _ = await call(
            served.url, "POST", "/v1/projections/count_by_type/rebuild", operator,
            source_ip="127.0.0.2", **{"X-Forwarded-For": "198.51.100.9, 203.0.113.7"},
        )  # fmt: skip
        assert status == 202
        # from an untrusted peer the header is not believed
        status, _ = await call(
            served.url, "POST", "/v1/projections/count_by_type/rebuild", operator,
            **{"X-Forwarded-For": "203.0.113.7"},
        )  # fmt: skip
        assert status == 202
    assert [e.data["from"] for e in await audit_events(store)] == ["203.0.113.7", "127.0.0.1"]
    assert {e.data["by"] for e in await audit_events(store)} == {str(op.id)}


async def test_the_installed_projections_go_on_past_audit_events_and_park_nothing(
    hub: HubContext,
    dsn: str,
    store: EventStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = tmp_path / "ledgerhub.toml"
    config.write_text('[tenants.default]\ntimezone = "America/New_York"\n')
    monkeypatch.setenv("LEDGERHUB_CONFIG", str(config))
    operator, _ = await create_key(hub, "operate", tenant="*")
    projections = discover()
    assert {"ledger", "reconciliation"} <= set(projections)
    async with (
        serve(hub) as served,
        running(dsn, *projections.values()),
        ProjectionStore.over(store) as runtime,
    ):

        async def registered() -> bool:
            return set(projections) <= set(await runtime.names())

        await wait_until(registered, what="the projections to be registered")
        for name in ("ledger", "reconciliation"):
            status, _ = await call(
                served.url, "POST", f"/v1/projections/{name}/replay", operator,
                json_body={"from": 1, "to": 1},
            )  # fmt: skip
            assert status in (202, 422)  # 422: nothing reached yet, audited all the same
        head = await store.head()
        assert head >= 2

        async def caught_up() -> bool:
            statuses = await runtime.status()
            return all(s.position == head for s in statuses)

        await wait_until(caught_up, what="every projection past the audit events")
        assert all(s.parked == 0 for s in await runtime.status()), "nothing parked"
    conn = await asyncpg.connect(dsn)
    try:  # an operator's action is not business activity the books failed to map
        listed = await conn.fetchval(
            f"SELECT count(*) FROM {Ledger.view('unmapped')} WHERE source = $1", AUDIT_SOURCE
        )
    finally:
        await conn.close()
    assert listed == 0
