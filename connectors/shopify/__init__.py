"""Shopify: signed webhooks (``X-Shopify-Hmac-Sha256``); topic and event id in headers; and
pulls of the REST Admin API (``connectors.shopify.puller``)."""

from __future__ import annotations

from typing import ClassVar

from connectors.shopify.mapping import ShopifyMapper
from connectors.shopify.puller import ShopifyPuller
from connectors.shopify.webhook import ShopifyVerifier
from hub.spi.connector import Connector
from hub.spi.health import DAY, Freshness
from hub.spi.mapper import FactMapper
from hub.spi.parser import PayloadParser
from hub.spi.puller import Puller
from hub.spi.verifier import WebhookVerifier


class ShopifyConnector(Connector):
    """Shopify stores: orders, refunds, Shopify Payments payouts."""

    name = "shopify"
    version = "1"
    event_types = ("shopify.*",)
    freshness: ClassVar[Freshness | None] = Freshness(2 * DAY, ("shopify.*",), what="webhook")
    verifier: ClassVar[WebhookVerifier | None] = ShopifyVerifier()
    parser: ClassVar[PayloadParser | None] = ShopifyMapper.parser
    mapper: ClassVar[FactMapper | None] = ShopifyMapper()
    puller: ClassVar[Puller | None] = ShopifyPuller()
