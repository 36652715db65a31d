"""Plaid: a bank feed pulled from ``/transactions/sync`` (``connectors.plaid.puller``).

A Plaid connection (``plaid:NAME``) is a bank feed of its own: its lines are ``BankLine`` facts
of the bank accounts its ``accounts`` setting names (Plaid ``account_id`` → bank account).
"""

from __future__ import annotations

from typing import ClassVar

from connectors.plaid.mapping import PlaidMapper
from connectors.plaid.puller import PlaidPuller
from hub.spi.connector import Connector
from hub.spi.mapper import FactMapper
from hub.spi.parser import PayloadParser
from hub.spi.puller import Puller


class PlaidConnector(Connector):
    """Plaid Transactions: added, modified and removed transactions as bank lines."""

    name = "plaid"
    version = "1"
    event_types = ("plaid.transaction.*",)
    parser: ClassVar[PayloadParser | None] = PlaidMapper.parser
    mapper: ClassVar[FactMapper | None] = PlaidMapper()
    puller: ClassVar[Puller | None] = PlaidPuller()
