"""The webhook verifier a connector puts in its ``verifier`` slot: check a provider's signature,
then read the events out of the delivery; optionally sign a body the way the provider does (for
test deliveries, ``ledgerhub webhooks send``); and helpers for the common schemes.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from hub.errors import InvalidInput, SignatureInvalid
from hub.spi.signing import hmac_sha256_base64, same_text


@dataclass(frozen=True)
class WebhookDelivery:
    """A provider's webhook request as received: ``headers`` keyed in lower case."""

    url: str
    """The URL the provider sent to (and, for Square, signed)."""
    headers: Mapping[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        """A header's value by case-insensitive name."""
        return self.headers.get(name.lower())


@dataclass(frozen=True)
class DeliveredEvent:
    """One event found in a verified delivery, before the hub adds tenant and source."""

    external_id: str
    type: str
    occurred_at: datetime
    data: dict[str, Any]
    entity: str | None = None
    """The entity it concerns (stream ``{source}/{entity}``); None: one stream per event."""
    meta: dict[str, Any] = field(default_factory=dict)


class SigningUnsupported(InvalidInput):
    """The verifier cannot sign deliveries (its ``sign`` is not implemented)."""


class WebhookVerifier(ABC):
    """A provider's webhook scheme: check the signature, then read the events out of the body."""

    signature_headers: ClassVar[tuple[str, ...]] = ()
    """Headers (lower case) kept with each event so the signature can be re-checked later."""
    empty_response: ClassVar[bool] = False
    """True when the provider wants a bare ``200`` with no body (Xero); else the results."""

    @abstractmethod
    def verify(self, delivery: WebhookDelivery, secret: bytes, *, now: datetime | None) -> None:
        """Raise ``SignatureInvalid`` unless ``delivery`` is signed with ``secret``.

        ``now`` is the time to judge a signed timestamp's freshness against; None skips the
        freshness check (re-verifying a stored delivery long after it arrived).
        """

    @abstractmethod
    def events(self, delivery: WebhookDelivery) -> list[DeliveredEvent]:
        """The events a verified delivery carries (none for a handshake such as Xero's).

        Raises ``InvalidInput`` when the body is not what the provider sends.
        """

    def sign(self, body: bytes, secret: bytes, *, now: datetime, url: str = "") -> dict[str, str]:
        """The signature headers the provider would send with ``body`` at ``now`` (to ``url``,
        for schemes that sign it), such that ``verify`` accepts them: for test deliveries.

        Optional: by default a verifier cannot sign (``SigningUnsupported``).
        """
        raise SigningUnsupported(f"{type(self).__name__} cannot sign webhook deliveries")


def require_base64_hmac(
    delivery: WebhookDelivery, header: str, secret: bytes, *, message: bytes | None = None
) -> None:
    """``SignatureInvalid`` unless ``header`` holds the base64 HMAC-SHA256 of ``message`` (the
    body by default) under ``secret``, compared in constant time (Shopify, WooCommerce, Square,
    Xero)."""
    given = delivery.header(header)
    if not given:
        raise SignatureInvalid(f"the {header} header is missing")
    signed = delivery.body if message is None else message
    if not same_text(given.strip(), hmac_sha256_base64(secret, signed)):
        raise SignatureInvalid(f"{header} does not match this connection's secret")


_TYPE_PART = re.compile(r"[^a-z0-9_]+")


def event_type(connector: str, *parts: str) -> str:
    """``connector.part.part`` in the log's type alphabet (``orders/paid`` → ``orders.paid``)."""
    words = [connector]
    for part in parts:
        words += [
            w
            for w in (_TYPE_PART.sub("_", p.lower()).strip("_") for p in re.split(r"[./]", part))
            if w
        ]
    if len(words) < 2:
        raise InvalidInput(f"the delivery names no event type for {connector}")
    return ".".join(words)


def json_object(body: bytes, *, what: str) -> dict[str, Any]:
    """The body parsed as a JSON object, or ``InvalidInput`` naming ``what`` it should be."""
    import orjson

    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"{what} is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise InvalidInput(f"{what} is not a JSON object")
    return value
