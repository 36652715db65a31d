"""Xero's webhook scheme.

``x-xero-signature`` is base64 HMAC-SHA256 of the raw body under the webhook key. Before Xero
turns a webhook on it sends "intent to receive" deliveries: an empty ``events`` list, some
correctly signed and some not; the endpoint must answer 200 to the first and 401 to the others
(within 5 s). Such a delivery holds no events, so nothing is stored.

A delivery may carry several events; Xero gives them no id, so the external id is built from
what identifies the change: tenant, category, resource, type and ``eventDateUtc``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from hub.domain.events import utc_problem
from hub.errors import InvalidInput
from hub.spi.verifier import (
    DeliveredEvent,
    WebhookDelivery,
    WebhookVerifier,
    event_type,
    json_object,
    require_base64_hmac,
)

SIGNATURE_HEADER = "x-xero-signature"


class XeroVerifier(WebhookVerifier):
    """Verifies ``x-xero-signature``; zero (handshake) or more events per delivery."""

    signature_headers: ClassVar[tuple[str, ...]] = (SIGNATURE_HEADER,)
    empty_response: ClassVar[bool] = True  # Xero: "there is no body in the response"

    def verify(self, delivery: WebhookDelivery, secret: bytes, *, now: datetime | None) -> None:
        require_base64_hmac(delivery, SIGNATURE_HEADER, secret)

    def events(self, delivery: WebhookDelivery) -> list[DeliveredEvent]:
        body = json_object(delivery.body, what="the Xero webhook body")
        items = body.get("events")
        if not isinstance(items, list):
            raise InvalidInput("a Xero delivery needs an events list")
        return [_event(index, item) for index, item in enumerate(items)]


def _event(index: int, item: Any) -> DeliveredEvent:
    fields = ("tenantId", "eventCategory", "resourceId", "eventType", "eventDateUtc")
    if not isinstance(item, dict) or not all(isinstance(item.get(f), str) for f in fields):
        raise InvalidInput(
            f"Xero event {index} needs {', '.join(fields)}",
            errors=[{"index": index, "field": "events", "message": "missing fields"}],
        )
    try:
        occurred = datetime.fromisoformat(item["eventDateUtc"].replace("Z", "+00:00"))
    except ValueError:
        problem: str | None = "is not a time"
    else:
        if occurred.tzinfo is None:
            occurred = occurred.replace(tzinfo=UTC)  # Xero documents it as UTC
        problem = utc_problem(occurred)
    if problem is not None:
        raise InvalidInput(
            f"Xero event {index}: eventDateUtc {problem}",
            errors=[{"index": index, "field": "eventDateUtc", "message": problem}],
        )
    return DeliveredEvent(
        external_id=":".join(item[f] for f in fields),
        type=event_type("xero", item["eventCategory"], item["eventType"]),
        occurred_at=occurred,
        data=item,
        entity=f"{item['tenantId']}/{item['resourceId']}",
        meta={"delivery_index": index},
    )
