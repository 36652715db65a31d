"""The connector plugin interface: what a spoke's package declares so the hub can use it.

A connector is a class with declared parts, like a singer-sdk ``Stream``::

    class StripeConnector(Connector):
        name = "stripe"
        version = "1"
        event_types = ("stripe.*",)
        verifier = StripeVerifier()
        mapper = StripeMapper()

and an entry point in the ``ledgerhub.connectors`` group (the built-ins register the same way)::

    [project.entry-points."ledgerhub.connectors"]
    stripe = "connectors.stripe:StripeConnector"

Parts, each optional: ``verifier`` (webhook signature check, and the events a delivery holds:
``hub.spi.verifier``), ``parser`` (a raw event's payload to typed models: ``hub.spi.parser``),
``mapper`` (typed models to canonical facts, with the connection's mapping config:
``hub.spi.mapper``), ``importer`` (statement files to events: ``hub.spi.importer``),
``puller`` (the spoke's API read for history and missed changes: ``hub.spi.puller``) and
``freshness`` (the health check of a connection that only receives: ``hub.spi.health``).
Accounting targets are plugins of their own (``hub.spi.target``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from hub.spi.parser import PayloadParser
from hub.spi.verifier import WebhookVerifier

if TYPE_CHECKING:
    from hub.spi.health import Freshness
    from hub.spi.importer import FileImporter
    from hub.spi.mapper import FactMapper
    from hub.spi.puller import Puller


class Connector:
    """A spoke's plugin: subclass, fill the parts you have, register the entry point."""

    name: ClassVar[str]
    """The connector's name: the first part of its connections' ids (``stripe``)."""
    version: ClassVar[str] = "0"
    """Recorded in each event's ``meta`` so a mapping can tell payload generations apart."""
    event_types: ClassVar[tuple[str, ...]] = ()
    """The event types it produces, as patterns (``stripe.*``, ``bank.line``)."""
    verifier: ClassVar[WebhookVerifier | None] = None
    """Webhook verification, for spokes that push signed webhooks."""
    parser: ClassVar[PayloadParser | None] = None
    """A raw event's payload to typed models of the provider's own objects."""
    mapper: ClassVar[FactMapper | None] = None
    """Raw events to canonical facts, given the connection's mapping config."""
    importer: ClassVar[FileImporter | None] = None
    """Statement files (OFX, CSV, …) to events, for ``ledgerhub import``."""
    puller: ClassVar[Puller | None] = None
    """Reads the spoke's API (streams with cursors), for ``ledgerhub pull`` and scheduled pulls."""
    freshness: ClassVar[Freshness | None] = None
    """The health check of a connection that only receives (webhooks, statement files): how
    old its newest event may be (``hub.spi.health``). A connection with pull credentials is
    checked by its puller's ``health_check`` instead."""
