"""Square: signed webhooks (``x-square-hmacsha256-signature`` over notification URL + body)."""

from __future__ import annotations

from typing import ClassVar

from connectors.square.webhook import SquareVerifier
from hub.spi.connector import Connector
from hub.spi.health import DAY, Freshness
from hub.spi.verifier import WebhookVerifier


class SquareConnector(Connector):
    """Square sellers: payments, refunds, payouts."""

    name = "square"
    version = "1"
    event_types = ("square.*",)
    freshness: ClassVar[Freshness | None] = Freshness(2 * DAY, ("square.*",), what="webhook")
    verifier: ClassVar[WebhookVerifier | None] = SquareVerifier()
