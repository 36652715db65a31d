"""The operator routes over real HTTP: scopes, jobs, parked events (the runtime in this loop)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hub.api.server import open_hub, serving
from hub.config import Config
from hub.domain.keys import Scope, key_digest, key_prefix, new_key
from hub.store import EventStore
from hub.store.keys import KeyStore
from tests.factories import event
from tests.projections.count import CountByType
from tests.runtime.harness import ReadModel, running, wait_until


class Api:
    """A client of the served API holding one key per scope under test."""

    def __init__(self, url: str, session: aiohttp.ClientSession, keys: dict[str, str]) -> None:
        self.url = url
        self.session = session
        self.keys = keys

    async def call(
        self, method: str, path: str, *, key: str | None = "operate", json: Any = None
    ) -> tuple[int, Any, aiohttp.ClientResponse]:
        headers = {"Authorization": f"Bearer {self.keys[key]}"} if key else {}
        async with self.session.request(
            method, self.url + path, headers=headers, json=json
        ) as response:
            return response.status, await response.json(content_type=None), response


async def _key(keys: KeyStore, tenant: str, scope: str) -> str:
    key = new_key()
    await keys.create(
        digest=key_digest(key), prefix=key_prefix(key), tenant=tenant, scope=Scope.parse(scope)
    )
    return key


@pytest.fixture
async def api(dsn: str) -> AsyncIterator[Api]:
    async with open_hub(dsn, Config()) as hub:
        keys = {
            "operate": await _key(hub.keys, "*", "operate"),
            "operate_acme": await _key(hub.keys, "acme", "operate"),
            "read": await _key(hub.keys, "default", "read"),
        }
        async with (
            serving(hub, port=0) as url,
            aiohttp.ClientSession() as session,
        ):
            yield Api(url, session, keys)


async def _follow(api: Api, job_id: int) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        status, job, _ = await api.call("GET", f"/v1/jobs/{job_id}")
        assert status == 200
        return job if job["state"] in ("done", "failed") else None

    job: dict[str, Any] = await wait_until(done, what=f"job {job_id}")
    return job


async def test_operator_routes_need_an_operate_key(api: Api) -> None:
    status, body, response = await api.call("GET", "/v1/projections", key=None)
    assert status == 401
    assert response.content_type == "application/problem+json"
    status, body, _ = await api.call("GET", "/v1/projections", key="read")
    assert status == 403
    assert body["status"] == 403
    status, body, _ = await api.call("GET", "/v1/projections")
    assert (status, body) == (200, {"projections": []})
    status, spec, _ = await api.call("GET", "/openapi.json")
    assert status == 200
    for path in ("/v1/projections", "/v1/projections/{name}/replay", "/v1/parked/{id}/retry"):
        assert path in spec["paths"], path
    replay = spec["paths"]["/v1/projections/{name}/replay"]["post"]
    assert replay["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/ReplayIn"
    )


async def test_status_replay_and_rebuild_over_http(
    api: Api, dsn: str, store: EventStore, model: ReadModel
) -> None:
    await store.append([event(f"h{i}") for i in range(6)])
    async with running(dsn, CountByType):
        await wait_until(model.caught_up, what="the projection to catch up")
        status, body, _ = await api.call("GET", "/v1/projections")
        assert status == 200
        (mine,) = body["projections"]
        assert mine["name"] == "count_by_type"
        assert (mine["state"], mine["position"], mine["head"], mine["lag_events"]) == (
            "running", 6, 6, 0,
        )  # fmt: skip
        assert mine["holder"] is not None

        status, job, response = await api.call(
            "POST", "/v1/projections/count_by_type/replay", json={"from": 2, "to": 4}
        )
        assert status == 202
        assert response.headers["Location"] == f"/v1/jobs/{job['id']}"
        assert (await _follow(api, job["id"]))["state"] == "done"
        assert {p for p, n in (await model.applications()).items() if n == 2} == {2, 3, 4}

        status, job, _ = await api.call("POST", "/v1/projections/count_by_type/rebuild")
        assert status == 202
        finished = await _follow(api, job["id"])
        # the 6 events, and the audit events of the replay and of the rebuild (hub.domain.audit)
        assert (finished["state"], finished["done"], finished["total"]) == ("done", 8, 8)
    assert set((await model.applications()).values()) == {1}, "the rebuilt tables are fresh"


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/v1/projections/nope/rebuild", None, 404),
        ("/v1/projections/count_by_type/replay", {"from": 5, "to": 2}, 422),
        ("/v1/projections/count_by_type/replay", {"from": 1, "to": 999}, 422),
        ("/v1/projections/count_by_type/replay", {"from": 1}, 422),
        ("/v1/jobs/77", None, 404),
    ],
)
async def test_operator_mistakes_are_problems(
    api: Api, dsn: str, store: EventStore, model: ReadModel, path: str, body: Any, status: int
) -> None:
    await store.append([event("m")])
    async with running(dsn, CountByType):
        await wait_until(model.caught_up, what="the projection to catch up")
    method = "GET" if path.startswith("/v1/jobs") else "POST"
    got, problem, response = await api.call(method, path, json=body)
    assert got == status
    assert response.content_type == "application/problem+json"
    assert problem["detail"]


async def test_parked_events_over_http_per_tenant(
    api: Api, dsn: str, store: EventStore, model: ReadModel, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("LEDGERHUB_TEST_DIR", str(tmp_path))
    await store.append(
        [
            event("fine"),
            event("bad-default", data={"poison": True}),
            event("bad-acme", tenant="acme", data={"poison": True}),
        ]
    )
    async with running(dsn, CountByType):
        await wait_until(model.caught_up, what="the projection to pass the poison events")
        status, page, _ = await api.call("GET", "/v1/parked")
        assert status == 200
        assert [p["position"] for p in page["parked"]] == [2, 3]
        assert page["next"] is None
        status, page, _ = await api.call("GET", "/v1/parked", key="operate_acme")
        assert [p["position"] for p in page["parked"]] == [3], "a tenant's key sees its own"
        acme_id = page["parked"][0]["id"]
        status, _, _ = await api.call(
            "POST", "/v1/projections/count_by_type/rebuild", key="operate_acme"
        )
        assert status == 403, "a rebuild touches every tenant"

        await asyncio.to_thread((tmp_path / "fixed").touch)
        status, parked, _ = await api.call(
            "POST", f"/v1/parked/{acme_id}/retry", key="operate_acme"
        )
        assert (status, parked["status"]) == (202, "retry")

        async def resolved() -> bool:
            _, event, _ = await api.call("GET", "/v1/parked?status=all")
            return any(p["id"] == acme_id and p["status"] == "resolved" for p in event["parked"])

        await wait_until(resolved, what="the retried event to be applied")
        _, page, _ = await api.call("GET", "/v1/parked")
        (other,) = page["parked"]
        status, _, _ = await api.call("POST", f"/v1/parked/{other['id']}/skip", key="operate_acme")
        assert status == 404, "another tenant's parked event is not there for this key"
        status, skipped, _ = await api.call("POST", f"/v1/parked/{other['id']}/skip")
        assert (status, skipped["status"]) == (200, "skipped")
    assert 3 in await model.applications()
    assert 2 not in await model.applications()
