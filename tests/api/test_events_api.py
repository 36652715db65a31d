"""POST/GET /v1/events through a real server: duplicates, 422, 413, 415, 409, paging, problems."""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from hub.api.context import ApiLimits, HubContext
from hub.api.models import EventIn
from hub.api.routing import PUBLIC, ApiRoute
from hub.api.server import serving
from hub.store import EventStore
from tests.api.conftest import bearer, event_body, make_key

PROBLEM = "application/problem+json"


async def post_events(
    http: aiohttp.ClientSession, api: str, key: str, events: list[dict[str, object]]
) -> tuple[int, dict[str, Any], str]:
    """POST ``events``; the status, the decoded JSON object body and its media type."""
    async with http.post(f"{api}/v1/events", json={"events": events}, headers=bearer(key)) as r:
        return r.status, orjson.loads(await r.read()), r.content_type


async def test_batch_with_duplicates_answers_in_request_order(
    api: str, hub: HubContext, http: aiohttp.ClientSession
) -> None:
    key = await make_key(hub, "ingest:stripe:acct_1")
    status, body, _ = await post_events(
        http, api, key, [event_body("evt_a"), event_body("evt_b"), event_body("evt_a")]
    )
    assert status == 200
    assert body["results"] == [
        {"external_id": "evt_a", "status": "appended", "position": 1},
        {"external_id": "evt_b", "status": "appended", "position": 2},
        {"external_id": "evt_a", "status": "duplicate", "position": 1},
    ]
    status, body, _ = await post_events(http, api, key, [event_body("evt_c"), event_body("evt_b")])
    assert status == 200
    assert body["results"] == [
        {"external_id": "evt_c", "status": "appended", "position": 3},
        {"external_id": "evt_b", "status": "duplicate", "position": 2},
    ]
    stored = await hub.store.read_after(0)
    assert [e.external_id for e in stored] == ["evt_a", "evt_b", "evt_c"]
    assert stored[0].tenant == "default"  # the key's tenant
    assert stored[0].meta["api_key"] == key[:9]


async def test_malformed_item_is_422_naming_index_and_field_and_nothing_is_written(
    api: str, hub: HubContext, http: aiohttp.ClientSession
) -> None:
    key = await make_key(hub, "ingest:*")
    events = [
        event_body("ok_1"),
        event_body("ok_2"),
        event_body("bad", occurred_at="2026-11-01T12:00:00"),  # no UTC offset
    ]
    status, body, content_type = await post_events(http, api, key, events)
    assert status == 422
    assert content_type == PROBLEM
    assert body["status"] == 422
    assert body["errors"][0]["index"] == 2
    assert body["errors"][0]["field"] == "occurred_at"
    assert "event 2" in body["detail"]
    assert await hub.store.head() == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [("type", "Not A Type"), ("source", ""), ("data", [1, 2]), ("expected_version", -1)],
)
async def test_each_bad_field_is_named(
    api: str, hub: HubContext, http: aiohttp.ClientSession, field: str, value: object
) -> None:
    key = await make_key(hub, "ingest:*")
    bad = event_body("x")
    bad[field] = value
    status, body, _ = await post_events(http, api, key, [bad])
    assert status == 422
    assert body["errors"][0] == {
        "index": 0,
        "field": field,
        "message": body["errors"][0]["message"],
    }
    assert await hub.store.head() == 0


async def test_unknown_field_is_refused(
    api: str, hub: HubContext, http: aiohttp.ClientSession
) -> None:
    key = await make_key(hub, "ingest:*")
    status, body, _ = await post_events(http, api, key, [event_body("x", colour="red")])
    assert status == 422
    assert body["errors"][0]["field"] == "colour"


async def test_more_than_1000_events_is_413_and_nothing_written(
    api: str, hub: HubContext, http: aiohttp.ClientSession
) -> None:
    key = await make_key(hub, "ingest:*")
    status, body, content_type = await post_events(
        http, api, key, [event_body(f"e{i}") for i in range(1001)]
    )
    assert (status, content_type) == (413, PROBLEM)
    assert "1000" in body["detail"]
    assert await hub.store.head() == 0


async def test_a_full_batch_of_1000_is_accepted(
    api: str, hub: HubContext, http: aiohttp.ClientSession
) -> None:
    key = await make_key(hub, "ingest:*")
    status, body, _ = await post_events(http, api, key, [event_body(f"e{i}") for i in range(1000)])
    assert status == 200
    assert len(body["results"]) == 1000
    assert await hub.store.head() == 1000


class TestBodyLimit:
    @pytest.fixture
    def limits(self) -> ApiLimits:
        return ApiLimits(max_body_bytes=16 * 1024)

    async def test_body_over_the_limit_is_413_problem(
        self, api: str, hub: HubContext, http: aiohttp.ClientSession
    ) -> None:
        key = await make_key(hub, "ingest:*")
        big = [event_body(f"e{i}", data={"pad": "x" * 1000}) for i in range(20)]
        status, body, content_type = await post_events(http, api, key, big)
        assert (status, content_type) == (413, PROBLEM)
        assert body["status"] == 413
        assert await hub.store.head() == 0
        # just under the limit is fine
        status, _, _ = await post_events(http, api, key, big[:5])
        assert status == 200


async def test_expected_version_conflict_is_409_and_nothing_of_the_batch_is_written(
    api: str, hub: HubContext, http: aiohttp.ClientSession
) -> None:
    key = await make_key(hub, "ingest:*")
    first = event_body("v1", stream="stripe:acct_1/ch_1", expected_version=0)
    assert (await post_events(http, api, key, [first]))[0] == 200
    stale = [
        event_body("other"),
        event_body("v2", stream="stripe:acct_1/ch_1", expected_version=0),
    ]
    status, body, content_type = await post_events(http, api, key, stale)
    assert (status, content_type) == (409, PROBLEM)
    assert body["errors"][0]["index"] == 1
    assert await hub.store.head() == 1


async def test_wrong_media_type_is_415_and_bad_json_is_400(
    api: str, hub: HubContext, http: aiohttp.ClientSession
) -> None:
    key = await make_key(hub, "ingest:*")
    async with http.post(
        f"{api}/v1/events", data=b"events", headers={**bearer(key), "Content-Type": "text/plain"}
    ) as r:
        assert (r.status, r.content_type) == (415, PROBLEM)
    async with http.post(
        f"{api}/v1/events",
        data=b'{"events": [',
        headers={**bearer(key), "Content-Type": "application/json"},
    ) as r:
        assert (r.status, r.content_type) == (400, PROBLEM)
        assert "JSON" in (await r.json(content_type=None))["detail"]


async def test_404_and_405_are_problem_json(api: str, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{api}/nowhere") as r:
        body = await r.json(content_type=None)
        assert (r.status, r.content_type, body["status"]) == (404, PROBLEM, 404)
    async with http.delete(f"{api}/v1/events") as r:
        body = await r.json(content_type=None)
        assert (r.status, r.content_type, body["status"]) == (405, PROBLEM, 405)
        assert "POST" in r.headers["Allow"]


async def test_an_unhandled_error_is_a_500_problem_without_the_traceback(
    hub: HubContext, http: aiohttp.ClientSession
) -> None:
    async def explode(request: web.Request) -> web.Response:
        raise RuntimeError("internal detail that must not leak")

    route = ApiRoute("GET", "/explode", explode, "test", auth=PUBLIC)
    async with serving(hub, "127.0.0.1", 0, extra_routes=[route]) as url:
        r = await http.get(f"{url}/explode")
        text = await r.text()
        assert (r.status, r.content_type) == (500, PROBLEM)
    assert "must not leak" not in text
    assert "Traceback" not in text
    assert orjson.loads(text)["status"] == 500


async def test_read_pages_with_next_after_and_only_the_keys_tenant(
    api: str, hub: HubContext, store: EventStore, http: aiohttp.ClientSession
) -> None:
    writer = await make_key(hub, "ingest:*")
    other = await make_key(hub, "ingest:*", tenant="t2")
    await post_events(http, api, writer, [event_body(f"e{i}") for i in range(5)])
    await post_events(http, api, other, [event_body("theirs")])
    reader = await make_key(hub, "read")
    seen: list[str] = []
    after = 0
    while True:
        async with http.get(
            f"{api}/v1/events", params={"after": after, "limit": 2}, headers=bearer(reader)
        ) as r:
            assert r.status == 200
            page = await r.json()
        seen += [e["external_id"] for e in page["events"]]
        if not page["events"]:
            assert page["next_after"] == after
            break
        after = page["next_after"]
    assert seen == [f"e{i}" for i in range(5)]
    async with http.get(
        f"{api}/v1/events", params={"source": "nope:x"}, headers=bearer(reader)
    ) as r:
        assert (await r.json())["events"] == []
    async with http.get(f"{api}/v1/events", params={"limit": 0}, headers=bearer(reader)) as r:
        body = await r.json(content_type=None)
        assert (r.status, body["errors"][0]["field"]) == (422, "limit")


async def test_health_ready_and_openapi_generated_from_the_models(
    api: str, hub: HubContext, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{api}/healthz") as r:
        assert (r.status, await r.json()) == (200, {"status": "ok"})
    async with http.get(f"{api}/readyz") as r:
        assert (r.status, await r.json()) == (200, {"status": "ready"})
    key = await make_key(hub, "read")
    async with http.get(f"{api}/openapi.json", headers=bearer(key)) as r:
        spec = await r.json()
    assert spec["openapi"].startswith("3.")
    assert set(spec["paths"]) >= {
        "/v1/events",
        "/v1/webhooks/{connector}/{name}",
        "/healthz",
        "/readyz",
        "/openapi.json",
    }
    schema = spec["components"]["schemas"]["EventIn"]
    assert set(schema["properties"]) == set(EventIn.model_fields)
    post = spec["paths"]["/v1/events"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/EventBatchIn"
    )
    assert {"401", "403", "413", "422"} <= set(post["responses"])
    assert spec["paths"]["/healthz"]["get"]["security"] == []
