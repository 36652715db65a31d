"""Signed sample deliveries, built the way Stripe and Shopify send them (``webhooks send``).

The samples ship here (``samples/``); the signature comes from the installed connector's
verifier (``connector(provider).verifier.sign``), so it is the one its receiver checks.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any, Literal

import orjson

from hub.errors import ConfigError
from hub.spi.registry import connector
from hub.spi.verifier import WebhookVerifier

Provider = Literal["stripe", "shopify"]
PROVIDERS: tuple[Provider, ...] = ("stripe", "shopify")


@dataclass(frozen=True)
class SignedDelivery:
    """A request ready to send: body bytes and headers, signature included."""

    body: bytes
    headers: dict[str, str]
    external_id: str


def _samples(name: str) -> Any:
    return orjson.loads(resources.files("hub.usecases").joinpath("samples", name).read_bytes())


def _verifier(provider: Provider) -> WebhookVerifier:
    plugin = connector(provider)
    if plugin is None or plugin.verifier is None:
        raise ConfigError(f"no installed connector {provider!r} verifies webhooks")
    return plugin.verifier


def sample_count(provider: Provider) -> int:
    """How many samples there are for ``provider``."""
    if provider == "stripe":
        return len(_samples("stripe_events.json")["events"])
    return len(_samples("shopify_deliveries.json")["deliveries"])


def sample_titles(provider: Provider) -> list[str]:
    """One line per sample of ``provider``, in order: its event id and type (Stripe) or topic
    (Shopify), for ``ledgerhub webhooks send --list``."""
    if provider == "stripe":
        return [f"{e['id']} {e['type']}" for e in _samples("stripe_events.json")["events"]]
    deliveries = _samples("shopify_deliveries.json")["deliveries"]
    return [f"{d['event_id']} {d['topic']}" for d in deliveries]


def signed_sample(
    provider: Provider, index: int, secret: bytes, *, fresh_id: bool = False, url: str = ""
) -> SignedDelivery:
    """Sample ``index`` of ``provider`` signed with ``secret`` for sending to ``url``
    (``fresh_id``: a new event id); ``SigningUnsupported`` if the installed connector's
    verifier cannot sign."""
    verifier = _verifier(provider)
    now = datetime.now(UTC)
    if provider == "stripe":
        event = dict(_samples("stripe_events.json")["events"][index])
        if fresh_id:
            event["id"] = f"evt_{uuid.uuid4().hex[:24]}"
        body = orjson.dumps(event)
        signed = verifier.sign(body, secret, now=now, url=url)
        return SignedDelivery(body, {"Content-Type": "application/json", **signed}, event["id"])
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
            **verifier.sign(body, secret, now=now, url=url),
        },
        event_id,
    )
