"""The AcmePay connector: its declared parts (entry point ``ledgerhub.connectors``)."""

from __future__ import annotations

from typing import ClassVar

from hub.spi.connector import Connector
from hub.spi.mapper import FactMapper
from hub.spi.parser import PayloadParser
from hub.spi.verifier import WebhookVerifier
from ledgerhub_example.mapping import AcmePayMapper
from ledgerhub_example.webhook import AcmePayVerifier


class AcmePayConnector(Connector):
    """AcmePay, a card processor: signed webhooks for payments, refunds and payouts."""

    name = "acmepay"
    version = "1"
    event_types = ("acmepay.*",)
    verifier: ClassVar[WebhookVerifier | None] = AcmePayVerifier()
    parser: ClassVar[PayloadParser | None] = AcmePayMapper.parser
    mapper: ClassVar[FactMapper | None] = AcmePayMapper()
