"""Plaid transactions JSON: a ``/transactions/get`` (or ``/sync``) response, or a sandbox
custom user's ``override_accounts``. Plaid's sign is the opposite of OFX's: a positive Plaid
amount is money out, so it is negated here. Amounts are read as ``Decimal``, never as floats.
"""

from __future__ import annotations

import json
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from connectors.bank.lines import BankFileError, StatementLine
from hub.domain.money import to_minor


def _load(name: str, data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data, parse_float=Decimal)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        line = getattr(exc, "lineno", 1)
        raise BankFileError(name, f"line {line}", f"not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise BankFileError(name, "line 1", "expected a JSON object")
    return value


def _transactions(
    name: str, doc: dict[str, Any], select: str | None
) -> list[tuple[str, dict[str, Any]]]:
    """(where, transaction) pairs of the chosen account."""
    if isinstance(doc.get("added"), list):  # /transactions/sync
        doc = {**doc, "transactions": doc["added"]}
    if isinstance(doc.get("transactions"), list):
        items = [(f"transactions[{i}]", t) for i, t in enumerate(doc["transactions"])]
        ids = sorted({str(t.get("account_id")) for _, t in items if isinstance(t, dict)})
        if select is not None:
            items = [
                (w, t) for w, t in items if isinstance(t, dict) and t.get("account_id") == select
            ]
        elif len(ids) > 1:
            raise BankFileError(
                name,
                "transactions",
                f"transactions of {len(ids)} accounts ({', '.join(ids)}): "
                "choose one with --statement-account",
            )
        return items
    accounts = doc.get("override_accounts")
    if not isinstance(accounts, list):
        raise BankFileError(
            name, "line 1", "neither a Plaid transactions response nor override_accounts"
        )
    numbers = [
        str((a.get("numbers") or {}).get("account", i)) if isinstance(a, dict) else str(i)
        for i, a in enumerate(accounts)
    ]
    if select is not None:
        if select not in numbers:
            raise BankFileError(
                name, "override_accounts", f"no account {select}; it has {', '.join(numbers)}"
            )
        chosen = numbers.index(select)
    elif len(accounts) != 1:
        raise BankFileError(
            name,
            "override_accounts",
            f"{len(accounts)} accounts ({', '.join(numbers)}): choose one with --statement-account",
        )
    else:
        chosen = 0
    account_doc = accounts[chosen]
    txs = account_doc.get("transactions") if isinstance(account_doc, dict) else None
    if not isinstance(txs, list):
        raise BankFileError(name, f"override_accounts[{chosen}]", "has no transactions list")
    return [(f"override_accounts[{chosen}].transactions[{i}]", t) for i, t in enumerate(txs)]


def parse_plaid(
    name: str, data: bytes, *, account: str, zone: ZoneInfo, select: str | None = None
) -> list[StatementLine]:
    """Every posted transaction of the file's account, money in positive.

    Pending transactions are left out: Plaid sends them again, posted, under a new id.
    """
    lines: list[StatementLine] = []
    problems: list[BankFileError] = []
    for where, tx in _transactions(name, _load(name, data), select):
        if isinstance(tx, dict) and tx.get("pending") is True:
            continue
        try:
            lines.append(_line(tx, account=account, zone=zone, where=where))
        except (ValueError, TypeError, KeyError) as exc:
            problems.append(BankFileError(name, where, str(exc)))
    if problems:
        raise BankFileError.combine(problems)
    return lines


def _line(tx: Any, *, account: str, zone: ZoneInfo, where: str) -> StatementLine:
    if not isinstance(tx, dict):
        raise ValueError("a transaction must be an object")
    amount = tx.get("amount")
    if isinstance(amount, bool) or not isinstance(amount, int | Decimal):
        raise ValueError(f"amount {amount!r} is not a number")
    currency = (
        tx.get("iso_currency_code") or tx.get("currency") or tx.get("unofficial_currency_code")
    )
    if not isinstance(currency, str) or len(currency) != 3:
        raise ValueError(f"currency {currency!r} is not a currency code")
    posted_text = tx.get("date_posted") or tx.get("date")
    try:
        posted = date.fromisoformat(str(posted_text))
    except ValueError as exc:
        raise ValueError(f"date {posted_text!r} is not YYYY-MM-DD") from exc
    description = tx.get("description") or tx.get("name") or tx.get("merchant_name") or ""
    original = {k: (str(v) if isinstance(v, Decimal) else v) for k, v in tx.items()}
    return StatementLine(
        account=account,
        posted_on=posted,
        occurred_at=datetime.combine(posted, time(), zone),
        amount_minor=-to_minor(Decimal(amount), currency.upper()),  # Plaid: positive = money out
        currency=currency.upper(),
        description=str(description),
        where=where,
        fitid=tx.get("transaction_id") if isinstance(tx.get("transaction_id"), str) else None,
        original=original,
    )
