"""Every route but health and the webhook receivers needs a key; the scope matrix."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from hub.api.app import build_app
from hub.api.context import ROUTE_AUTH, HubContext
from hub.api.routing import Auth
from hub.store.keys import KeyStore
from tests.api.conftest import bearer, event_body, make_key

OPEN_ROUTES = {("GET", "/healthz"), ("GET", "/readyz")}
SIGNED_ROUTES = {("POST", "/v1/webhooks/{connector}/{name}")}


def app_routes(hub: HubContext) -> list[tuple[str, str, Auth | None]]:
    app = build_app(hub)
    declared = app[ROUTE_AUTH]
    return [
        (route.method, route.resource.canonical, declared.get(route))
        for route in app.router.routes()
        if route.resource is not None
    ]


async def test_every_route_but_health_and_webhooks_requires_a_key(
    api: str, hub: HubContext, http: aiohttp.ClientSession
) -> None:
    routes = app_routes(hub)
    assert len(routes) >= 5
    mounted = {(method, path) for method, path, _ in routes}
    assert {("GET", "/v1/ledger/trial-balance"), ("POST", "/v1/reconciliation/resolutions")} <= (
        mounted
    ), "the projections' routes are mounted, and so checked here too"
    for method, path, auth in routes:
        assert auth is not None, f"{method} {path} declares no auth"
        if (method, path) in OPEN_ROUTES:
            assert auth.kind == "public"
            continue
        if (method, path) in SIGNED_ROUTES:
            assert auth.kind == "signature"
            continue
        if auth.kind == "session":  # the web console's own sign-in: tests/console
            assert path.startswith("/console")
            continue
        assert auth.kind == "key", f"{method} {path} must require a key"
        url = api + re.sub(r"{[^}]+}", "x", path)
        for headers in ({}, {"Authorization": "Bearer lh_not_a_key"}, {"Authorization": "Basic x"}):
            async with http.request(method, url, headers=headers, json={}) as r:
                assert r.status == 401, f"{method} {path} with {headers} → {r.status}"
                assert r.content_type == "application/problem+json"
                assert r.headers["WWW-Authenticate"].startswith("Bearer")


async def test_health_routes_need_no_key(api: str, http: aiohttp.ClientSession) -> None:
    for _, path in OPEN_ROUTES:
        async with http.get(api + path) as r:
            assert r.status == 200


async def status_of(
    http: aiohttp.ClientSession, api: str, key: str, what: str, **event: str
) -> int:
    if what == "append":
        body = {"events": [event_body(f"e-{datetime.now(UTC).timestamp()}", **event)]}
        async with http.post(f"{api}/v1/events", json=body, headers=bearer(key)) as r:
            return r.status
    async with http.get(f"{api}/v1/events", headers=bearer(key)) as r:
        return r.status


@pytest.mark.parametrize(
    ("scope", "tenant", "action", "event", "expected"),
    [
        ("ingest:stripe:acct_1", "default", "append", {"source": "stripe:acct_1"}, 200),
        ("ingest:stripe:acct_1", "default", "append", {"source": "shopify:x"}, 403),
        ("ingest:stripe:acct_1", "default", "append", {"source": "stripe:acct_2"}, 403),
        (
            "ingest:stripe:acct_1",
            "default",
            "append",
            {"source": "stripe:acct_1", "tenant": "t2"},
            403,
        ),
        ("ingest:stripe:acct_1", "default", "read", {}, 403),
        ("ingest:*", "default", "append", {"source": "shopify:x"}, 200),
        ("ingest:*", "default", "append", {"source": "custom:anything"}, 200),
        ("ingest:*", "default", "append", {"source": "shopify:x", "tenant": "t2"}, 403),
        ("ingest:*", "default", "read", {}, 403),
        ("read", "default", "read", {}, 200),
        ("read", "default", "append", {"source": "stripe:acct_1"}, 403),
        ("operate", "*", "append", {"source": "stripe:acct_1"}, 403),
        ("operate", "*", "read", {}, 403),
    ],
)
async def test_scope_matrix(
    api: str,
    hub: HubContext,
    http: aiohttp.ClientSession,
    scope: str,
    tenant: str,
    action: str,
    event: dict[str, str],
    expected: int,
) -> None:
    key = await make_key(hub, scope, tenant=tenant)
    assert await status_of(http, api, key, action, **event) == expected
    if expected == 403 and action == "append":
        assert await hub.store.head() == 0


async def test_expired_and_revoked_keys_are_401(
    api: str, hub: HubContext, http: aiohttp.ClientSession
) -> None:
    expired = await make_key(hub, "read", expires_at=datetime.now(UTC) - timedelta(seconds=1))
    assert await status_of(http, api, expired, "read") == 401
    later = await make_key(hub, "read", expires_at=datetime.now(UTC) + timedelta(hours=1))
    assert await status_of(http, api, later, "read") == 200
    revoked = await hub.keys.revoke(later[:9])
    assert revoked is not None
    async with http.get(f"{api}/v1/events", headers=bearer(later)) as r:
        assert r.status == 401
        assert "revoked" in (await r.json(content_type=None))["detail"]


async def test_openapi_needs_any_valid_key(
    api: str, hub: HubContext, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{api}/openapi.json") as r:
        assert r.status == 401
    key = await make_key(hub, "ingest:stripe:acct_1")
    async with http.get(f"{api}/openapi.json", headers=bearer(key)) as r:
        assert r.status == 200


async def test_a_revocation_in_another_process_reaches_the_key_cache(
    api: str, hub: HubContext, http: aiohttp.ClientSession, dsn: str
) -> None:
    key = await make_key(hub, "read")
    assert await status_of(http, api, key, "read") == 200
    assert hub.key_cache is not None
    assert len(hub.key_cache) == 1  # the lookup is cached
    elsewhere = await KeyStore.open(dsn)  # another pool, as `ledgerhub keys revoke` would use
    try:
        assert await elsewhere.revoke(key[:9]) is not None
    finally:
        await elsewhere.close()
    for _ in range(200):  # wait for the NOTIFY to arrive (not a timing assertion)
        if len(hub.key_cache) == 0:
            break
        await asyncio.sleep(0.025)
    assert len(hub.key_cache) == 0
    assert await status_of(http, api, key, "read") == 401


async def test_the_key_is_checked_before_the_parameters_and_both_answers_are_documented(
    api: str, hub: HubContext, http: aiohttp.ClientSession
) -> None:
    """A caller without the right key learns nothing about its parameters: 401 or 403 come
    first, whatever the request holds; the document lists both for every keyed route."""
    reader = await make_key(hub, "read")
    url = f"{api}/v1/events?limit=1.0&source=a%00b"
    answers = []
    for headers in ({}, bearer(await make_key(hub, "ingest:*")), bearer(reader)):
        async with http.get(url, headers=headers) as r:
            answers.append(r.status)
    async with http.get(f"{api}/openapi.json", headers=bearer(reader)) as r:
        document = await r.json()
    assert answers == [401, 403, 422]
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            if operation["security"]:
                assert {"401", "403"} <= set(operation["responses"]), (method, path)
