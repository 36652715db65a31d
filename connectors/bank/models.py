"""The typed ``bank.line`` and ``bank.balance`` payloads (``connectors.bank.lines``'
``StatementLine.data`` and ``StatementBalance.data``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import ClassVar

from pydantic import StrictInt

from hub.spi.parser import Parse, PayloadParser, ProviderModel, model


class BankLineData(ProviderModel):
    """One statement line: ``amount_minor`` > 0 is money in."""

    account: str
    date: date
    amount_minor: StrictInt
    currency: str
    description: str
    memo: str | None = None
    fitid: str | None = None


class BankBalanceData(ProviderModel):
    """A statement's closing balance: what the account held at the end of ``date``."""

    account: str
    date: date
    amount_minor: StrictInt
    currency: str


class BankParser(PayloadParser):
    """``bank.line`` → ``BankLineData``, ``bank.balance`` → ``BankBalanceData``."""

    parsers: ClassVar[Mapping[str, Parse]] = {
        "bank.line": model(BankLineData),
        "bank.balance": model(BankBalanceData),
    }
