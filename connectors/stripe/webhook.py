"""Stripe's webhook scheme.

``Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>…]``; each v1 is HMAC-SHA256 of
``"{t}.{body}"`` under the endpoint secret. Several v1 values appear while a secret is rolled,
so any one matching is enough. A timestamp older than the tolerance (300 s) is refused, which
stops a captured delivery from being replayed later; Stripe re-signs each retry.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import ClassVar

from hub.domain.events import utc_problem
from hub.errors import InvalidInput, SignatureInvalid
from hub.spi.signing import hmac_sha256, same_text
from hub.spi.verifier import (
    DeliveredEvent,
    WebhookDelivery,
    WebhookVerifier,
    event_type,
    json_object,
)

TOLERANCE_SECONDS = 300
HEADER = "stripe-signature"
_MAX_TIMESTAMP_DIGITS = 12
"""A ``t=`` longer than this is no Unix time in seconds (Stripe's are 10 digits until 2286)."""


def signature_header(secret: bytes, body: bytes, timestamp: int) -> str:
    """The ``Stripe-Signature`` value Stripe would send for ``body`` at ``timestamp``."""
    digest = hmac_sha256(secret, str(timestamp).encode() + b"." + body).hex()
    return f"t={timestamp},v1={digest}"


class StripeVerifier(WebhookVerifier):
    """Verifies ``Stripe-Signature`` and reads the Stripe ``event`` in the body."""

    signature_headers: ClassVar[tuple[str, ...]] = (HEADER,)

    def sign(self, body: bytes, secret: bytes, *, now: datetime, url: str = "") -> dict[str, str]:
        """``Stripe-Signature`` for ``body`` signed at ``now`` (whole seconds)."""
        return {"Stripe-Signature": signature_header(secret, body, int(now.timestamp()))}

    def verify(self, delivery: WebhookDelivery, secret: bytes, *, now: datetime | None) -> None:
        header = delivery.header(HEADER)
        if not header:
            raise SignatureInvalid("the Stripe-Signature header is missing")
        timestamp: int | None = None
        candidates: list[str] = []
        for item in header.split(","):
            key, _, value = item.strip().partition("=")
            if key == "t" and _seconds(value):
                timestamp = int(value)
            elif key == "v1" and value:
                candidates.append(value)
        if timestamp is None or not candidates:
            raise SignatureInvalid("the Stripe-Signature header has no t=… and v1=… values")
        expected = hmac_sha256(secret, str(timestamp).encode() + b"." + delivery.body).hex()
        matched = False
        for candidate in candidates:  # check all of them: no early exit on a match
            matched |= same_text(candidate, expected)
        if not matched:
            raise SignatureInvalid(
                "no v1 signature in Stripe-Signature matches this endpoint's secret"
            )
        if now is not None and now.timestamp() - timestamp > TOLERANCE_SECONDS:
            raise SignatureInvalid(
                f"the Stripe-Signature timestamp is more than {TOLERANCE_SECONDS} s old (a replay?)"
            )

    def events(self, delivery: WebhookDelivery) -> list[DeliveredEvent]:
        event = json_object(delivery.body, what="the Stripe event")
        event_id, kind, created = event.get("id"), event.get("type"), event.get("created")
        if not isinstance(event_id, str) or not event_id:
            raise InvalidInput("the Stripe event has no id")
        if not isinstance(kind, str) or not isinstance(created, int) or isinstance(created, bool):
            raise InvalidInput("the Stripe event needs a string type and an integer created")
        obj = event.get("data", {}).get("object") if isinstance(event.get("data"), dict) else None
        entity = obj.get("id") if isinstance(obj, dict) else None
        return [
            DeliveredEvent(
                external_id=event_id,
                type=event_type("stripe", kind),
                occurred_at=_created(created),
                data=event,
                entity=entity if isinstance(entity, str) and entity else None,
            )
        ]


def _seconds(value: str) -> bool:
    """Whether ``value`` is a Unix time in whole seconds as Stripe writes one (ASCII digits)."""
    return value.isascii() and value.isdigit() and len(value) <= _MAX_TIMESTAMP_DIGITS


def _created(created: int) -> datetime:
    """The event's ``created`` (Unix seconds) as a time the log can hold, else 422 naming it."""
    try:
        occurred = datetime.fromtimestamp(created, UTC)
    except (ValueError, OverflowError, OSError):
        message = "must be a Unix time in seconds within years 1 to 9999"
    else:
        problem = utc_problem(occurred)
        if problem is None:
            return occurred
        message = problem
    raise InvalidInput(
        f"the Stripe event's created {created} {message}",
        errors=[{"index": None, "field": "created", "message": message}],
    )
