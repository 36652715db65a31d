"""Webhook receivers through a real server: valid, invalid, stale and replayed deliveries for
every provider scheme, Xero's handshake, and re-verification of what was stored."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson
import pytest

from hub.api.context import HubContext
from hub.errors import SignatureInvalid
from hub.spi.registry import connector as installed_connector
from hub.spi.registry import connectors as installed_connectors
from hub.spi.verifier import SigningUnsupported, WebhookDelivery, WebhookVerifier
from hub.usecases.signatures import verify_signatures
from hub.usecases.webhook_samples import PROVIDERS as SAMPLE_PROVIDERS
from hub.usecases.webhook_samples import signed_sample
from tests.api import deliveries
from tests.api.conftest import CONNECTIONS, SECRETS
from tests.api.deliveries import Delivery

PROVIDERS: dict[str, Callable[..., Delivery]] = {
    "stripe": deliveries.stripe,
    "shopify": deliveries.shopify,
    "woocommerce": deliveries.woocommerce,
    "square": deliveries.square,
    "xero": deliveries.xero,
}


def url_of(api: str, connector: str) -> str:
    return f"{api}/v1/webhooks/{connector}/{CONNECTIONS[connector].split(':', 1)[1]}"


async def deliver(
    http: aiohttp.ClientSession, api: str, connector: str, delivery: Delivery
) -> tuple[int, dict[str, Any]]:
    async with http.post(url_of(api, connector), data=delivery.body, headers=delivery.headers) as r:
        raw = await r.read()
        return r.status, orjson.loads(raw) if raw else {}


@pytest.mark.parametrize("connector", PROVIDERS)
async def test_valid_delivery_is_stored_with_its_raw_body_and_signature(
    api: str, hub: HubContext, http: aiohttp.ClientSession, connector: str
) -> None:
    delivery = PROVIDERS[connector]()
    status, body = await deliver(http, api, connector, delivery)
    assert status == 200, body
    if connector == "xero":
        assert body == {}  # Xero wants a 200 with no body
    else:
        assert [r["status"] for r in body["results"]] == ["appended"]
    [event] = await hub.store.read_after(0)
    assert event.source == CONNECTIONS[connector]
    assert event.external_id == delivery.external_ids[0]
    assert event.type.startswith(f"{connector}.")
    assert event.raw == delivery.body  # the exact bytes
    kept = event.meta["webhook"]["headers"]
    signature_header = next(
        h for h in delivery.headers if "sig" in h.lower() or "hmac" in h.lower()
    )
    assert kept[signature_header.lower()] == delivery.headers[signature_header]
    assert event.meta["webhook"]["signature_verified"] is True


@pytest.mark.parametrize("connector", PROVIDERS)
async def test_invalid_signature_is_401_and_nothing_is_stored(
    api: str, hub: HubContext, http: aiohttp.ClientSession, connector: str
) -> None:
    forged = PROVIDERS[connector](b"not-the-secret")
    status, body = await deliver(http, api, connector, forged)
    assert status == 401
    assert body["status"] == 401
    genuine = PROVIDERS[connector]()
    tampered = Delivery(genuine.body.replace(b"1", b"2", 1), genuine.headers, [])
    assert (await deliver(http, api, connector, tampered))[0] == 401
    unsigned = Delivery(genuine.body, {"Content-Type": "application/json"}, [])
    assert (await deliver(http, api, connector, unsigned))[0] == 401
    assert await hub.store.head() == 0


@pytest.mark.parametrize("connector", PROVIDERS)
async def test_replayed_delivery_is_200_and_still_one_event(
    api: str, hub: HubContext, http: aiohttp.ClientSession, connector: str
) -> None:
    delivery = PROVIDERS[connector]()
    first = await deliver(http, api, connector, delivery)
    again = await deliver(http, api, connector, delivery)
    assert first[0] == again[0] == 200
    if connector != "xero":
        assert [r["status"] for r in again[1]["results"]] == ["duplicate"]
        assert again[1]["results"][0]["position"] == first[1]["results"][0]["position"]
    assert await hub.store.head() == 1


async def test_stale_stripe_signature_is_401(
    api: str, hub: HubContext, http: aiohttp.ClientSession
) -> None:
    stale = deliveries.stripe(at=int(time.time()) - 301)
    assert (await deliver(http, api, "stripe", stale))[0] == 401
    recent = deliveries.stripe(at=int(time.time()) - 200)
    assert (await deliver(http, api, "stripe", recent))[0] == 200
    assert await hub.store.head() == 1


@pytest.mark.parametrize("connector", ["shopify", "woocommerce", "square", "xero"])
async def test_stale_delivery_of_unsigned_time_schemes_adds_nothing(
    api: str, hub: HubContext, http: aiohttp.ClientSession, connector: str
) -> None:
    """These schemes sign no timestamp, so age cannot be judged; an old delivery replayed
    long after is recognised by its signed identity and adds nothing."""
    old = PROVIDERS[connector]()
    assert (await deliver(http, api, connector, old))[0] == 200
    before = await hub.store.head()
    status, body = await deliver(http, api, connector, old)
    assert status == 200
    if connector != "xero":
        assert {r["status"] for r in body["results"]} == {"duplicate"}
    assert await hub.store.head() == before


async def test_stripe_secret_rotation_accepts_any_v1(
    api: str, hub: HubContext, http: aiohttp.ClientSession
) -> None:
    new = deliveries.stripe()
    old = deliveries.stripe(b"whsec_old_secret", at=int(new.headers["Stripe-Signature"][2:12]))
    old_v1 = old.headers["Stripe-Signature"].split(",")[1]
    both = dict(new.headers)
    both["Stripe-Signature"] = (
        f"{both['Stripe-Signature'].split(',')[0]},{old_v1},{new.headers['Stripe-Signature'].split(',')[1]}"
    )
    assert (await deliver(http, api, "stripe", Delivery(new.body, both, [])))[0] == 200
    only_old = dict(new.headers)
    only_old["Stripe-Signature"] = f"{both['Stripe-Signature'].split(',')[0]},{old_v1}"
    second = deliveries.stripe(evt="evt_other")
    assert (await deliver(http, api, "stripe", Delivery(second.body, only_old, [])))[0] == 401


async def test_xero_intent_to_receive_handshake(
    api: str, hub: HubContext, http: aiohttp.ClientSession
) -> None:
    good = deliveries.xero(intent=True)
    assert await deliver(http, api, "xero", good) == (200, {})  # 200, no body
    bad = deliveries.xero(b"wrong-key", intent=True)
    assert (await deliver(http, api, "xero", bad))[0] == 401
    assert await hub.store.head() == 0


async def test_square_signature_covers_the_notification_url(
    api: str, hub: HubContext, http: aiohttp.ClientSession
) -> None:
    elsewhere = deliveries.square(url="https://attacker.example/hook")
    assert (await deliver(http, api, "square", elsewhere))[0] == 401


async def test_unknown_connection_is_404_problem(api: str, http: aiohttp.ClientSession) -> None:
    async with http.post(f"{api}/v1/webhooks/stripe/acct_unknown", data=b"{}") as r:
        assert (r.status, r.content_type) == (404, "application/problem+json")
    async with http.post(f"{api}/v1/webhooks/nonesuch/x", data=b"{}") as r:
        assert r.status == 404


async def test_stored_deliveries_reverify_and_tampering_is_found(
    api: str, hub: HubContext, http: aiohttp.ClientSession
) -> None:
    for connector, make in PROVIDERS.items():
        assert (await deliver(http, api, connector, make()))[0] == 200
    report = await verify_signatures(hub.store, hub.config)
    assert report.ok
    assert report.checked == len(PROVIDERS)
    # the same log checked against a rotated secret no longer verifies
    import tempfile
    from pathlib import Path

    from hub.config import load_config
    from tests.api.conftest import write_config

    with tempfile.TemporaryDirectory() as tmp:
        rotated = load_config(write_config(Path(tmp), {**SECRETS, "shopify": b"other"}))
    report = await verify_signatures(hub.store, rotated)
    assert [f.source for f in report.failures] == ["shopify:acme-store"]


SIGNERS = ("stripe", "shopify")
"""The verifiers that implement ``sign`` (``ledgerhub webhooks send`` uses them)."""


def verifier_of(name: str) -> WebhookVerifier:
    plugin = installed_connector(name)
    assert plugin is not None
    assert plugin.verifier is not None
    return plugin.verifier


def as_received(headers: dict[str, str], body: bytes) -> WebhookDelivery:
    return WebhookDelivery(url="", headers={k.lower(): v for k, v in headers.items()}, body=body)


@pytest.mark.parametrize("connector", SIGNERS)
def test_a_verifier_accepts_what_it_signs_and_refuses_a_changed_body(connector: str) -> None:
    verifier = verifier_of(connector)
    body = PROVIDERS[connector]().body
    secret = SECRETS[connector]
    now = datetime.now(UTC)
    headers = verifier.sign(body, secret, now=now)
    verifier.verify(as_received(headers, body), secret, now=now)
    verifier.verify(as_received(headers, body), secret, now=None)  # re-verified years later
    changed = body.replace(b"1", b"2", 1)
    assert changed != body
    with pytest.raises(SignatureInvalid):
        verifier.verify(as_received(headers, changed), secret, now=now)
    with pytest.raises(SignatureInvalid):
        verifier.verify(as_received(headers, body), b"another-secret", now=now)


def test_signatures_are_the_providers_own() -> None:
    """``sign`` computes what the providers send (the test deliveries compute it independently)."""
    at = 1_700_000_000
    stripe = deliveries.stripe(at=at)
    signed = verifier_of("stripe").sign(
        stripe.body, SECRETS["stripe"], now=datetime.fromtimestamp(at, UTC)
    )
    assert signed == {"Stripe-Signature": stripe.headers["Stripe-Signature"]}
    shopify = deliveries.shopify()
    signed = verifier_of("shopify").sign(shopify.body, SECRETS["shopify"], now=datetime.now(UTC))
    assert signed == {"X-Shopify-Hmac-Sha256": shopify.headers["X-Shopify-Hmac-Sha256"]}


def test_a_verifier_that_cannot_sign_says_so() -> None:
    verifiers = {n: p.verifier for n, p in installed_connectors().items() if p.verifier}
    signing = {n for n, v in verifiers.items() if type(v).sign is not WebhookVerifier.sign}
    assert set(SIGNERS) <= signing
    assert "xero" not in signing
    for name in sorted(set(verifiers) - signing):
        expected = f"^{type(verifiers[name]).__name__} cannot sign webhook deliveries$"
        with pytest.raises(SigningUnsupported, match=expected):
            verifiers[name].sign(b"{}", b"secret", now=datetime.now(UTC))


@pytest.mark.parametrize("provider", SAMPLE_PROVIDERS)
def test_signed_samples_verify_with_their_connectors_verifier(provider: str) -> None:
    verifier = verifier_of(provider)
    sample = signed_sample(provider, 0, b"s3cret", fresh_id=True)  # type: ignore[arg-type]
    received = as_received(sample.headers, sample.body)
    verifier.verify(received, b"s3cret", now=datetime.now(UTC))
    assert [e.external_id for e in verifier.events(received)] == [sample.external_id]
