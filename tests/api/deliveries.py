"""Provider deliveries signed the way each provider signs them (computed here, independently of
the verifiers), from the real sample payloads in tests/fixtures where the reference has them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from tests.api.conftest import SECRETS, SQUARE_URL

FIXTURES = Path(__file__).parent.parent / "fixtures"


@dataclass(frozen=True)
class Delivery:
    body: bytes
    headers: dict[str, str]
    external_ids: list[str]


def _b64_hmac(secret: bytes, message: bytes) -> str:
    return base64.b64encode(hmac.new(secret, message, hashlib.sha256).digest()).decode()


def stripe(secret: bytes = SECRETS["stripe"], *, at: int | None = None, evt: str = "") -> Delivery:
    event = orjson.loads((FIXTURES / "stripe" / "event_and_charge.json").read_bytes())["event"]
    if evt:
        event["id"] = evt
    body = orjson.dumps(event)
    t = int(time.time()) if at is None else at
    sig = hmac.new(secret, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    headers = {"Stripe-Signature": f"t={t},v1={sig}", "Content-Type": "application/json"}
    return Delivery(body, headers, [event["id"]])


def shopify(secret: bytes = SECRETS["shopify"], *, event_id: str = "b54557e4-bdd9") -> Delivery:
    body = orjson.dumps(orjson.loads((FIXTURES / "shopify" / "order.json").read_bytes())["order"])
    headers = {
        "X-Shopify-Hmac-Sha256": _b64_hmac(secret, body),
        "X-Shopify-Topic": "orders/paid",
        "X-Shopify-Event-Id": event_id,
        "X-Shopify-Triggered-At": "2026-11-01T12:00:00.000000Z",
        "X-Shopify-Shop-Domain": "acme-store.myshopify.com",
        "Content-Type": "application/json",
    }
    return Delivery(body, headers, [event_id])


def woocommerce(secret: bytes = SECRETS["woocommerce"], *, modified: str = "") -> Delivery:
    order = {
        "id": 727,
        "status": "processing",
        "currency": "USD",
        "date_created_gmt": "2026-11-01T12:00:00",
        "date_modified_gmt": modified or "2026-11-01T12:05:00",
        "total": "29.35",
        "total_tax": "1.35",
        "line_items": [{"id": 315, "name": "Woo Single #1", "quantity": 2, "total": "28.00"}],
    }
    body = orjson.dumps(order)
    headers = {
        "X-WC-Webhook-Signature": _b64_hmac(secret, body),
        "X-WC-Webhook-Topic": "order.updated",
        "X-WC-Webhook-Resource": "order",
        "X-WC-Webhook-Event": "updated",
        "X-WC-Webhook-ID": "12",
        "X-WC-Webhook-Delivery-ID": "8c1f2",
        "Content-Type": "application/json",
    }
    return Delivery(body, headers, [f"order:727@{order['date_modified_gmt']}"])


def square(
    secret: bytes = SECRETS["square"], *, url: str = SQUARE_URL, event_id: str = ""
) -> Delivery:
    event_id = event_id or "6a8f5f28-54a1-4eb0-a98a-3111513fd4fc"
    notification = {
        "merchant_id": "6SSW7HV8K2ST5",
        "type": "payment.updated",
        "event_id": event_id,
        "created_at": "2026-11-01T12:00:00.469Z",
        "data": {
            "type": "payment",
            "id": "hYy9pRFVxpDsO1FB05SunFWUe9JZY",
            "object": {
                "payment": {
                    "id": "hYy9pRFVxpDsO1FB05SunFWUe9JZY",
                    "amount_money": {"amount": 100, "currency": "USD"},
                    "status": "COMPLETED",
                }
            },
        },
    }
    body = orjson.dumps(notification)
    headers = {
        "x-square-hmacsha256-signature": _b64_hmac(secret, url.encode() + body),
        "Content-Type": "application/json",
    }
    return Delivery(body, headers, [event_id])


def xero(secret: bytes = SECRETS["xero"], *, intent: bool = False) -> Delivery:
    payload: dict[str, Any]
    if intent:
        payload = {"events": [], "firstEventSequence": 0, "lastEventSequence": 0, "entropy": "S0ME"}
    else:
        payload = orjson.loads((FIXTURES / "xero" / "credit_note_create.json").read_bytes())
    body = orjson.dumps(payload)
    ids = [
        ":".join(
            e[f] for f in ("tenantId", "eventCategory", "resourceId", "eventType", "eventDateUtc")
        )
        for e in payload["events"]
    ]
    return Delivery(
        body, {"x-xero-signature": _b64_hmac(secret, body), "Content-Type": "application/json"}, ids
    )
