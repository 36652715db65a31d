"""WooCommerce's webhook scheme.

``X-WC-Webhook-Signature`` is base64 HMAC-SHA256 of the raw body under the webhook's secret; the
topic (``order.updated``) is in ``X-WC-Webhook-Topic``. WooCommerce gives a change no id of its own
(``X-WC-Webhook-Delivery-ID`` is new on every attempt), so the external id is the resource, its id
and its ``date_modified_gmt`` from the signed body: a redelivery of the same change is a duplicate,
a later change of the same order is a new event. The scheme signs no timestamp.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any, ClassVar

from hub.errors import InvalidInput
from hub.spi.verifier import (
    DeliveredEvent,
    WebhookDelivery,
    WebhookVerifier,
    event_type,
    json_object,
    require_base64_hmac,
)

SIGNATURE_HEADER = "x-wc-webhook-signature"
TOPIC_HEADER = "x-wc-webhook-topic"


class WooCommerceVerifier(WebhookVerifier):
    """Verifies ``X-WC-Webhook-Signature``; one event per delivery."""

    signature_headers: ClassVar[tuple[str, ...]] = (
        SIGNATURE_HEADER,
        TOPIC_HEADER,
        "x-wc-webhook-resource",
        "x-wc-webhook-event",
        "x-wc-webhook-id",
        "x-wc-webhook-delivery-id",
        "x-wc-webhook-source",
    )

    def verify(self, delivery: WebhookDelivery, secret: bytes, *, now: datetime | None) -> None:
        require_base64_hmac(delivery, SIGNATURE_HEADER, secret)

    def events(self, delivery: WebhookDelivery) -> list[DeliveredEvent]:
        topic = delivery.header(TOPIC_HEADER)
        if not topic:
            raise InvalidInput("a WooCommerce delivery needs X-WC-Webhook-Topic")
        body = json_object(delivery.body, what="the WooCommerce webhook body")
        resource = topic.split(".", 1)[0]
        entity = body.get("id")
        modified = body.get("date_modified_gmt")
        if isinstance(entity, int | str) and isinstance(modified, str) and modified:
            external_id = f"{resource}:{entity}@{modified}"
        else:  # no id or modification time: the body itself is the identity
            external_id = f"{resource}:sha256:{hashlib.sha256(delivery.body).hexdigest()}"
        return [
            DeliveredEvent(
                external_id=external_id,
                type=event_type("woocommerce", topic),
                occurred_at=_gmt(modified)
                or _gmt(body.get("date_created_gmt"))
                or datetime.now(UTC),
                data=body,
                entity=f"{resource}:{entity}" if isinstance(entity, int | str) else None,
                meta={"topic": topic},
            )
        ]


def _gmt(value: Any) -> datetime | None:
    """WooCommerce's ``*_gmt`` fields are UTC without an offset."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    except ValueError:
        return None
