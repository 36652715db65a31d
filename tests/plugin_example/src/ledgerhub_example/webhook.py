"""AcmePay's webhook scheme (made up, in the usual shape).

``Acme-Signature: t=<unix seconds>,v1=<hex>``: HMAC-SHA256 of ``"{t}.{body}"`` under the
endpoint's secret. A timestamp more than 300 s old is refused when the delivery arrives (not
when a stored one is re-verified). The body is one event: ``{"id", "type", "created_at",
"object"}``.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import ClassVar

from hub.errors import InvalidInput, SignatureInvalid
from hub.spi.signing import hmac_sha256, same_text
from hub.spi.verifier import (
    DeliveredEvent,
    WebhookDelivery,
    WebhookVerifier,
    event_type,
    json_object,
)

HEADER = "acme-signature"
TOLERANCE_SECONDS = 300


def sign(body: bytes, secret: bytes, timestamp: int | None = None) -> dict[str, str]:
    """The headers AcmePay sends with ``body``, signed with ``secret`` at ``timestamp``."""
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac_sha256(secret, f"{t}.".encode() + body).hex()
    return {"Acme-Signature": f"t={t},v1={digest}", "Content-Type": "application/json"}


class AcmePayVerifier(WebhookVerifier):
    """Verifies ``Acme-Signature``; one event per delivery."""

    signature_headers: ClassVar[tuple[str, ...]] = (HEADER,)

    def verify(self, delivery: WebhookDelivery, secret: bytes, *, now: datetime | None) -> None:
        header = delivery.header(HEADER)
        if not header:
            raise SignatureInvalid("the Acme-Signature header is missing")
        parts: dict[str, str] = {}
        for item in header.split(","):
            key, _, value = item.strip().partition("=")
            parts[key] = value
        timestamp, given = parts.get("t", ""), parts.get("v1", "")
        if not timestamp.isdigit() or not given:
            raise SignatureInvalid("the Acme-Signature header has no t=… and v1=… values")
        expected = hmac_sha256(secret, f"{timestamp}.".encode() + delivery.body).hex()
        if not same_text(given, expected):
            raise SignatureInvalid("Acme-Signature does not match this connection's secret")
        if now is not None and now.timestamp() - int(timestamp) > TOLERANCE_SECONDS:
            raise SignatureInvalid(f"Acme-Signature is more than {TOLERANCE_SECONDS} s old")

    def events(self, delivery: WebhookDelivery) -> list[DeliveredEvent]:
        event = json_object(delivery.body, what="the AcmePay event")
        event_id, kind, created = event.get("id"), event.get("type"), event.get("created_at")
        if not isinstance(event_id, str) or not event_id:
            raise InvalidInput("the AcmePay event has no id")
        if not isinstance(kind, str) or not isinstance(created, str):
            raise InvalidInput("the AcmePay event needs a type and a created_at")
        try:
            occurred_at = datetime.fromisoformat(created)
        except ValueError as exc:
            raise InvalidInput(f"the AcmePay event's created_at: {exc}") from exc
        if occurred_at.tzinfo is None:
            raise InvalidInput("the AcmePay event's created_at has no offset")
        obj = event.get("object")
        entity = obj.get("id") if isinstance(obj, dict) else None
        return [
            DeliveredEvent(
                external_id=event_id,
                type=event_type("acmepay", kind),
                occurred_at=occurred_at,
                data=event,
                entity=entity if isinstance(entity, str) and entity else None,
            )
        ]
