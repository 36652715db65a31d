"""Bank statements: OFX/QFX files, CSV with a column mapping, Plaid transactions JSON.

Each statement line becomes one ``bank.line`` event (see ``connectors.bank.lines``).
"""

from __future__ import annotations

from typing import ClassVar

from connectors.bank.mapping import BankMapper
from hub.spi.connector import Connector


class BankConnector(Connector):
    """Bank accounts, imported from files (``ledgerhub import bank``)."""

    name = "bank"
    version = "1"
    event_types = ("bank.line",)
    parser: ClassVar[PayloadParser | None] = BankMapper.parser
    mapper: ClassVar[FactMapper | None] = BankMapper()
