"""``bank.line`` events (from ``ledgerhub import bank``) → ``BankLine`` facts, and
``bank.balance`` events (a statement's closing balance) → ``StatementBalance`` facts.

The event's ``data`` is ``connectors.bank.lines.StatementLine.data``: ``account``, ``date``
(YYYY-MM-DD), ``amount_minor`` (positive = money in), ``currency``, ``description``, ``memo``,
``fitid``, ``kind``, ``check_number``, ``format`` and the file's ``original`` fields. The payee
the categorization rules match is the description by default (map ``payee`` from e.g.
``line.original.merchant_name`` for Plaid files).

A ``bank.balance`` event's ``data`` is ``connectors.bank.lines.StatementBalance.data``:
``account``, ``date`` (the as-of date, YYYY-MM-DD), ``amount_minor``, ``currency``, ``format``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from connectors.bank.models import BankParser
from hub.domain.facts import BankLine, Fact, StatementBalance
from hub.domain.mapping import KindSchema, spec
from hub.spi.mapper import FactMapper, Handler, MapContext, SourceEvent, money
from hub.spi.parser import PayloadParser

SCHEMA = {
    "bank_line": KindSchema(
        root="line",
        fields={
            "account": "text",
            "date": "date",
            "amount": "money",
            "currency": "text",
            "payee": "text",
            "description": "text",
        },
        defaults={
            "account": spec("line.account"),
            "date": spec("line.date", "iso_to_date"),
            "amount": spec("line.amount_minor", "cents"),
            "currency": spec("line.currency"),
            "payee": spec("line.description"),
            "description": spec("concat(line.description, ' ', line.memo)"),
        },
        required=frozenset({"date", "amount", "currency"}),
    ),
    "bank_balance": KindSchema(
        root="balance",
        fields={"account": "text", "date": "date", "amount": "money", "currency": "text"},
        defaults={
            "account": spec("balance.account"),
            "date": spec("balance.date", "iso_to_date"),
            "amount": spec("balance.amount_minor", "cents"),
            "currency": spec("balance.currency"),
        },
        required=frozenset({"date", "amount", "currency"}),
    ),
}


def _line(event: SourceEvent, ctx: MapContext) -> list[Fact]:
    f = ctx.fields("bank_line", event.data)
    return [
        BankLine(
            key=f"line:{event.external_id}",
            business_date=f["date"],
            line_id=event.external_id,
            amount=money(f, "amount"),
            payee=(f["payee"] or "").strip() or None,
            description=(f["description"] or "").strip() or None,
            account=f["account"],
        )
    ]


def _balance(event: SourceEvent, ctx: MapContext) -> list[Fact]:
    f = ctx.fields("bank_balance", event.data)
    return [
        StatementBalance(
            key=f"balance:{f['date'].isoformat()}",
            business_date=f["date"],
            amount=money(f, "amount"),
            account=f["account"],
        )
    ]


class BankMapper(FactMapper):
    """Statement lines and closing balances, whatever file they came from."""

    schema = SCHEMA
    parser: ClassVar[PayloadParser | None] = BankParser()
    handlers: ClassVar[Mapping[str, Handler]] = {"bank.line": _line, "bank.balance": _balance}
