"""Hypothesis against the running routes: whatever arrives, the answer is never a 5xx, every
error is problem+json, and every status is one the OpenAPI document lists for the route."""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Any
from urllib.parse import quote

import aiohttp
import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from yarl import URL

from hub.api.app import api_routes
from hub.api.context import HubContext
from hub.api.openapi import openapi_document
from hub.api.routing import ApiRoute, query_parameters
from hub.domain.keys import Access
from hub.store import EventStore
from hub.usecases.demo import sample_events
from tests.api.conftest import bearer, event_body, make_key
from tests.reconciliation.harness import Recon, books_running
from tests.reconciliation.scenarios import statement, stripe_month

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = [
    "source",
    "external_id",
    "type",
    "occurred_at",
    "data",
    "stream",
    "expected_version",
    "meta",
    "tenant",
]
mutated_events = st.builds(
    lambda field, value, drop: (
        {k: v for k, v in {**event_body("evt_fuzz"), field: value}.items() if k != drop}
    ),
    st.sampled_from(FIELDS),
    json_values
    | st.sampled_from(["2026-13-45T00:00:00Z", "x\x00y", "a" * 600, "stripe.ok", -1, 2**40]),
    st.none() | st.sampled_from(FIELDS),
)
bodies = (
    json_values
    | st.builds(lambda events: {"events": events}, st.lists(mutated_events, max_size=3))
    | st.builds(lambda events: {"events": events}, json_values)
)


def assert_sane(status: int, content_type: str) -> None:
    assert status < 500, status
    if status >= 400:
        assert content_type == "application/problem+json"


@FUZZ
@given(body=bodies)
async def test_post_events_never_5xx(
    api: str, hub: HubContext, http: aiohttp.ClientSession, body: Any
) -> None:
    key = await make_key(hub, "ingest:*")
    async with http.post(
        f"{api}/v1/events",
        data=json.dumps(body),
        headers={**bearer(key), "Content-Type": "application/json"},
    ) as r:
        assert_sane(r.status, r.content_type)


@FUZZ
@given(
    raw=st.binary(max_size=200),
    content_type=st.sampled_from(
        ["application/json", "text/plain", "application/x-www-form-urlencoded", ""]
    ),
)
async def test_post_events_raw_bytes_never_5xx(
    api: str, hub: HubContext, http: aiohttp.ClientSession, raw: bytes, content_type: str
) -> None:
    key = await make_key(hub, "ingest:*")
    headers = {**bearer(key), "Content-Type": content_type} if content_type else bearer(key)
    async with http.post(f"{api}/v1/events", data=raw, headers=headers) as r:
        assert_sane(r.status, r.content_type)


@FUZZ
@given(
    params=st.dictionaries(
        st.sampled_from(["after", "limit", "source", "type", "stream", "tenant", "x"]),
        st.text(max_size=25) | st.integers(min_value=-(2**70), max_value=2**70).map(str),
        max_size=4,
    )
)
async def test_get_events_never_5xx(
    api: str, hub: HubContext, http: aiohttp.ClientSession, params: dict[str, str]
) -> None:
    key = await make_key(hub, "read")
    async with http.get(f"{api}/v1/events", params=params, headers=bearer(key)) as r:
        assert_sane(r.status, r.content_type)


segment = st.text(
    alphabet=st.characters(codec="ascii", exclude_characters="/?#%"), min_size=1, max_size=15
)


@FUZZ
@given(
    connector=st.sampled_from(["stripe", "shopify", "woocommerce", "square", "xero"]) | segment,
    name=st.sampled_from(["acct_1", "acme-store", "shop", "seller", "org"]) | segment,
    body=st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()),
    signature=st.text(max_size=80),
)
async def test_webhooks_never_5xx(
    api: str, http: aiohttp.ClientSession, connector: str, name: str, body: bytes, signature: str
) -> None:
    headers = {
        "Stripe-Signature": signature,
        "X-Shopify-Hmac-Sha256": signature,
        "X-Shopify-Topic": "orders/paid",
        "X-Shopify-Event-Id": "e1",
        "X-WC-Webhook-Signature": signature,
        "X-WC-Webhook-Topic": "order.updated",
        "x-square-hmacsha256-signature": signature,
        "x-xero-signature": signature,
    }
    headers = {k: v for k, v in headers.items() if v.isprintable()}
    async with http.post(f"{api}/v1/webhooks/{connector}/{name}", data=body, headers=headers) as r:
        assert_sane(r.status, r.content_type)


READS = [r for r in api_routes() if r.method == "GET" and (r.query is not None or "{" in r.path)]
"""Every route that reads parameters from its URL (and answers GET)."""
DOCUMENT = openapi_document(api_routes())
parameter_values = (
    st.text(max_size=20)
    | st.sampled_from(["", "\x00", "a\x00b", "0.0", "1.0", "-1", "+5", "true", "yes", "|", "a|b"])
    | st.integers(min_value=-(2**70), max_value=2**70).map(str)
    | st.dates().map(date.isoformat)
    | st.builds(lambda day, rest: f"{day.isoformat()}|{rest}", st.dates(), st.text(max_size=15))
)


@pytest.fixture
async def books(dsn: str, store: EventStore) -> None:
    """The ledger and reconciliation built over a month of processor, shop and bank activity,
    so the routes' parameters reach their queries."""
    month = stripe_month()
    conn = await asyncpg.connect(dsn)
    try:
        async with books_running(dsn):
            await store.append(sample_events())
            await store.append([*month.events, *statement(month).lines])
            await Recon(dsn, conn).settle()
            await Recon(dsn, conn).settle(projection="ledger")
    finally:
        await conn.close()


@pytest.fixture
async def reader_keys(hub: HubContext) -> dict[Access, str]:
    return {
        Access.READ: await make_key(hub, "read"),
        Access.OPERATE: await make_key(hub, "operate", tenant="*"),
    }


def _target(route: ApiRoute, query: dict[str, str], path: list[str]) -> URL:
    parts = iter(path)
    filled = re.sub(r"{\w+}", lambda _: quote(next(parts, "1"), safe=""), route.path)
    return URL(filled, encoded=True).with_query(query)


@FUZZ
@given(data=st.data())
async def test_read_routes_never_5xx_on_any_parameter_and_answer_as_documented(
    books: None,
    reader_keys: dict[Access, str],
    api: str,
    http: aiohttp.ClientSession,
    data: st.DataObject,
) -> None:
    route = data.draw(st.sampled_from(READS), label="route")
    names = [p.name for p in query_parameters(route.query)] if route.query else []
    query = data.draw(
        st.dictionaries(st.sampled_from([*names, "x"]), parameter_values, max_size=4),
        label="query",
    )
    path = data.draw(st.lists(parameter_values, min_size=2, max_size=2), label="path")
    key = reader_keys[route.auth.access or Access.READ]
    async with http.get(URL(api).join(_target(route, query, path)), headers=bearer(key)) as r:
        assert_sane(r.status, r.content_type)
        documented = DOCUMENT["paths"][route.path]["get"]["responses"]
        assert str(r.status) in documented, (route.path, r.status, await r.text())
