"""Bank statements: OFX/QFX files, CSV with a column mapping, Plaid transactions JSON.

Each statement line becomes one ``bank.line`` event, and an OFX statement's closing balance one
``bank.balance`` event (see ``connectors.bank.lines``): the ``importer``
(``connectors.bank.importer``) reads the files for ``ledgerhub import bank``, the ``mapper``
(``connectors.bank.mapping``) turns them into ``BankLine`` and ``StatementBalance`` facts.
"""

from __future__ import annotations

from typing import ClassVar

from connectors.bank.importer import BankImporter
from connectors.bank.mapping import BankMapper
from hub.spi.connector import Connector
from hub.spi.health import DAY, Freshness
from hub.spi.importer import FileImporter
from hub.spi.mapper import FactMapper
from hub.spi.parser import PayloadParser


class BankConnector(Connector):
    """Bank accounts, imported from files (``ledgerhub import bank``)."""

    name = "bank"
    version = "1"
    event_types = ("bank.line", "bank.balance")
    freshness: ClassVar[Freshness | None] = Freshness(
        7 * DAY, ("bank.line",), what="statement line", occurred=True
    )
    parser: ClassVar[PayloadParser | None] = BankMapper.parser
    mapper: ClassVar[FactMapper | None] = BankMapper()
    importer: ClassVar[FileImporter | None] = BankImporter()
