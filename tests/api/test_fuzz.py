"""Hypothesis against the running routes: whatever arrives, the answer is never a 5xx, and
every error is problem+json."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.api.context import HubContext
from tests.api.conftest import bearer, event_body, make_key

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
