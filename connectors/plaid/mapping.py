"""Plaid ``/transactions/sync`` events → ``BankLine`` facts.

Each event's ``data`` is ``{"line": {...}, "transaction": {...}}`` (``removed`` instead of
``transaction`` for a removal): ``line`` is the bank line as the bank connector's lines are
(``account``, ``date``, ``amount_minor`` positive = money in, ``currency``, ``description``,
``memo``) plus ``transaction_id``; the other key holds Plaid's object as received (fractions as
their decimal text). The field mapping is the bank connector's (kind ``bank_line``, root
``line``), so a mapping written for bank files works here.

Every event of a transaction is keyed ``line:{transaction_id}``, so the later state replaces the
earlier one in the books: ``modified`` restates the line, and ``removed`` states it with amount 0
(a line the bank withdrew books nothing; the ledger keeps its key so an older event cannot
revive it).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import ClassVar

from pydantic import StrictInt

from connectors.bank.mapping import SCHEMA as BANK_SCHEMA
from hub.domain.facts import BankLine, Fact
from hub.spi.mapper import FactMapper, Handler, MapContext, SourceEvent, money
from hub.spi.parser import Parse, PayloadParser, ProviderModel, model

ADDED = "plaid.transaction.added"
MODIFIED = "plaid.transaction.modified"
REMOVED = "plaid.transaction.removed"


class PlaidLine(ProviderModel):
    """The bank line an event states."""

    account: str
    date: date
    amount_minor: StrictInt
    currency: str
    description: str
    transaction_id: str


class PlaidTransactionEvent(ProviderModel):
    """An added or modified transaction: the line, and Plaid's ``Transaction``."""

    line: PlaidLine
    transaction: dict[str, object]


class PlaidRemovedEvent(ProviderModel):
    """A removed transaction: the line at amount 0, and Plaid's ``RemovedTransaction``."""

    line: PlaidLine
    removed: dict[str, object]


class PlaidParser(PayloadParser):
    """``plaid.transaction.*`` → their typed models."""

    parsers: ClassVar[Mapping[str, Parse]] = {
        ADDED: model(PlaidTransactionEvent),
        MODIFIED: model(PlaidTransactionEvent),
        REMOVED: model(PlaidRemovedEvent),
    }


def _line(event: SourceEvent, ctx: MapContext) -> list[Fact]:
    line = event.data["line"]
    f = ctx.fields("bank_line", line)
    return [
        BankLine(
            key=f"line:{line['transaction_id']}",
            business_date=f["date"],
            line_id=str(line["transaction_id"]),
            amount=money(f, "amount"),
            payee=(f["payee"] or "").strip() or None,
            description=(f["description"] or "").strip() or None,
            account=f["account"],
        )
    ]


class PlaidMapper(FactMapper):
    """Plaid transactions, added, modified and removed, as bank lines (one key each)."""

    schema = BANK_SCHEMA
    parser: ClassVar[PayloadParser | None] = PlaidParser()
    handlers: ClassVar[Mapping[str, Handler]] = {ADDED: _line, MODIFIED: _line, REMOVED: _line}
