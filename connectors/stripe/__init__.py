"""Stripe: signed webhooks (``Stripe-Signature``), one Stripe ``event`` object per delivery;
and pulls of the API (``connectors.stripe.puller``) for history and missed webhooks."""

from __future__ import annotations

from typing import ClassVar

from connectors.stripe.mapping import StripeMapper
from connectors.stripe.puller import StripePuller
from connectors.stripe.webhook import StripeVerifier
from hub.spi.connector import Connector
from hub.spi.health import DAY, Freshness
from hub.spi.mapper import FactMapper
from hub.spi.parser import PayloadParser
from hub.spi.puller import Puller
from hub.spi.verifier import WebhookVerifier


class StripeConnector(Connector):
    """Stripe payments: charges, refunds, disputes, payouts, balance transactions."""

    name = "stripe"
    version = "1"
    event_types = ("stripe.*",)
    freshness: ClassVar[Freshness | None] = Freshness(2 * DAY, ("stripe.*",), what="webhook")
    verifier: ClassVar[WebhookVerifier | None] = StripeVerifier()
    parser: ClassVar[PayloadParser | None] = StripeMapper.parser
    mapper: ClassVar[FactMapper | None] = StripeMapper()
    puller: ClassVar[Puller | None] = StripePuller()
