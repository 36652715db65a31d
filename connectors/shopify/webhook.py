"""Shopify's webhook scheme.

``X-Shopify-Hmac-Sha256`` is base64 HMAC-SHA256 of the raw body under the app's secret. The event
id (``X-Shopify-Event-Id``; older API versions only send ``X-Shopify-Webhook-Id``) is the external
id, so Shopify's redeliveries are duplicates. The topic (``orders/paid``) is the event type. The
scheme signs no timestamp, so freshness cannot be judged; replays are absorbed by the event id.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import ClassVar

from hub.domain.events import utc_problem
from hub.errors import InvalidInput
from hub.spi.signing import hmac_sha256_base64
from hub.spi.verifier import (
    DeliveredEvent,
    WebhookDelivery,
    WebhookVerifier,
    event_type,
    json_object,
    require_base64_hmac,
)

HMAC_HEADER = "x-shopify-hmac-sha256"
TOPIC_HEADER = "x-shopify-topic"
EVENT_ID_HEADERS = ("x-shopify-event-id", "x-shopify-webhook-id")
TRIGGERED_AT_HEADER = "x-shopify-triggered-at"


class ShopifyVerifier(WebhookVerifier):
    """Verifies ``X-Shopify-Hmac-Sha256``; one event per delivery."""

    signature_headers: ClassVar[tuple[str, ...]] = (
        HMAC_HEADER,
        TOPIC_HEADER,
        *EVENT_ID_HEADERS,
        TRIGGERED_AT_HEADER,
        "x-shopify-shop-domain",
        "x-shopify-api-version",
    )

    def verify(self, delivery: WebhookDelivery, secret: bytes, *, now: datetime | None) -> None:
        require_base64_hmac(delivery, HMAC_HEADER, secret)

    def sign(self, body: bytes, secret: bytes, *, now: datetime, url: str = "") -> dict[str, str]:
        """``X-Shopify-Hmac-Sha256`` for ``body`` (the scheme signs no time and no URL)."""
        return {"X-Shopify-Hmac-Sha256": hmac_sha256_base64(secret, body)}

    def events(self, delivery: WebhookDelivery) -> list[DeliveredEvent]:
        body = json_object(delivery.body, what="the Shopify webhook body")
        event_id = next((v for h in EVENT_ID_HEADERS if (v := delivery.header(h))), None)
        topic = delivery.header(TOPIC_HEADER)
        if not event_id or not topic:
            raise InvalidInput("a Shopify delivery needs X-Shopify-Event-Id and X-Shopify-Topic")
        entity = body.get("id")
        return [
            DeliveredEvent(
                external_id=event_id,
                type=event_type("shopify", topic),
                occurred_at=_occurred_at(delivery, body),
                data=body,
                entity=str(entity) if isinstance(entity, int | str) and entity != "" else None,
                meta={"topic": topic},
            )
        ]


def _occurred_at(delivery: WebhookDelivery, body: dict[str, object]) -> datetime:
    """When it happened: the trigger time, else the resource's own timestamps, else now.

    A candidate that is no time with an offset is passed over; one that is, but falls outside
    years 1-9999 in UTC, is refused (422 naming it): the log cannot hold it.
    """
    candidates = [
        ("X-Shopify-Triggered-At", delivery.header(TRIGGERED_AT_HEADER)),
        ("updated_at", body.get("updated_at")),
        ("created_at", body.get("created_at")),
    ]
    for field, value in candidates:
        if isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                continue
            if parsed.tzinfo is None:
                continue
            problem = utc_problem(parsed)
            if problem is not None:
                shown = repr(value) if len(value) <= 60 else f"{value[:57]!r}..."
                raise InvalidInput(
                    f"the Shopify delivery's {field} {shown} {problem}",
                    errors=[{"index": None, "field": field, "message": problem}],
                )
            return parsed
    return datetime.now(UTC)
