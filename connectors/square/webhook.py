"""Square's webhook scheme.

``x-square-hmacsha256-signature`` is base64 HMAC-SHA256 of the notification URL (exactly as
registered with Square) followed by the raw body, under the subscription's signature key. The
body carries ``event_id`` (the external id), ``type`` and ``created_at``, all covered by the
signature. Square retries a delivery with the same signature, so freshness is not judged; the
event id absorbs replays.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

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

SIGNATURE_HEADER = "x-square-hmacsha256-signature"


class SquareVerifier(WebhookVerifier):
    """Verifies ``x-square-hmacsha256-signature``; one event per delivery."""

    signature_headers: ClassVar[tuple[str, ...]] = (
        SIGNATURE_HEADER,
        "square-initial-delivery-timestamp",
        "square-retry-number",
    )

    def verify(self, delivery: WebhookDelivery, secret: bytes, *, now: datetime | None) -> None:
        # the URL exactly as registered with Square, then the body
        message = delivery.url.encode() + delivery.body
        require_base64_hmac(delivery, SIGNATURE_HEADER, secret, message=message)

    def events(self, delivery: WebhookDelivery) -> list[DeliveredEvent]:
        body = json_object(delivery.body, what="the Square notification")
        event_id, kind, created = body.get("event_id"), body.get("type"), body.get("created_at")
        if not isinstance(event_id, str) or not event_id or not isinstance(kind, str):
            raise InvalidInput("a Square notification needs event_id and type")
        occurred = _created_at(created)
        data = body.get("data")
        entity = data.get("id") if isinstance(data, dict) else None
        return [
            DeliveredEvent(
                external_id=event_id,
                type=event_type("square", kind),
                occurred_at=occurred,
                data=body,
                entity=entity if isinstance(entity, str) and entity else None,
            )
        ]


def _created_at(created: object) -> datetime:
    """The notification's ``created_at`` as a time the log can hold, else 422 naming it."""
    try:
        occurred = datetime.fromisoformat(str(created).replace("Z", "+00:00"))
    except ValueError:
        problem: str | None = "is not a time"
    else:
        problem = utc_problem(occurred)
        if problem is None:
            return occurred
    shown = repr(created) if len(repr(created)) <= 60 else f"{repr(created)[:57]}..."
    raise InvalidInput(
        f"the Square notification's created_at {shown} {problem}",
        errors=[{"index": None, "field": "created_at", "message": problem}],
    )
