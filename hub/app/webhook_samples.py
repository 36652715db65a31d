"""Signed sample deliveries, built the way Stripe and Shopify send them (``webhooks send``)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

import orjson

from connectors.stripe.webhook import signature_header
from hub.spi.signing import hmac_sha256_base64

Provider = Literal["stripe", "shopify"]
PROVIDERS: tuple[Provider, ...] = ("stripe", "shopify")


@dataclass(frozen=True)
class SignedDelivery:
    """A request ready to send: body bytes and headers, signature included."""

    body: bytes
    headers: dict[str, str]
    external_id: str


def _samples(name: str) -> Any:
    return orjson.loads(resources.files("hub.app").joinpath("samples", name).read_bytes())


def sample_count(provider: Provider) -> int:
    """How many samples there are for ``provider``."""
    if provider == "stripe":
        return len(_samples("stripe_events.json")["events"])
    return len(_samples("shopify_deliveries.json")["deliveries"])


def signed_sample(
    provider: Provider, index: int, secret: bytes, *, fresh_id: bool = False
) -> SignedDelivery:
    """Sample ``index`` of ``provider`` signed with ``secret`` (``fresh_id``: a new event id)."""
    if provider == "stripe":
        event = dict(_samples("stripe_events.json")["events"][index])
        if fresh_id:
            event["id"] = f"evt_{uuid.uuid4().hex[:24]}"
        body = orjson.dumps(event)
        header = signature_header(secret, body, int(time.time()))
        return SignedDelivery(
            body, {"Content-Type": "application/json", "Stripe-Signature": header}, event["id"]
        )
    delivery = _samples("shopify_deliveries.json")["deliveries"][index]
    event_id = str(uuid.uuid4()) if fresh_id else delivery["event_id"]
    body = orjson.dumps(delivery["body"])
    return SignedDelivery(
        body,
        {
            "Content-Type": "application/json",
            "X-Shopify-Topic": delivery["topic"],
            "X-Shopify-Event-Id": event_id,
            "X-Shopify-Triggered-At": delivery["occurred_at"],
            "X-Shopify-Hmac-Sha256": hmac_sha256_base64(secret, body),
        },
        event_id,
    )
