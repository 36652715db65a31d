"""WooCommerce: signed webhooks (``X-WC-Webhook-Signature``)."""

from __future__ import annotations

from typing import ClassVar

from connectors.woocommerce.mapping import WooCommerceMapper
from connectors.woocommerce.webhook import WooCommerceVerifier
from hub.spi.connector import Connector
from hub.spi.health import DAY, Freshness
from hub.spi.mapper import FactMapper
from hub.spi.parser import PayloadParser
from hub.spi.verifier import WebhookVerifier


class WooCommerceConnector(Connector):
    """WooCommerce stores: orders, refunds, products."""

    name = "woocommerce"
    version = "1"
    event_types = ("woocommerce.*",)
    freshness: ClassVar[Freshness | None] = Freshness(2 * DAY, ("woocommerce.*",), what="webhook")
    verifier: ClassVar[WebhookVerifier | None] = WooCommerceVerifier()
    parser: ClassVar[PayloadParser | None] = WooCommerceMapper.parser
    mapper: ClassVar[FactMapper | None] = WooCommerceMapper()
