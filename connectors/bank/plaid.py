"""Plaid transactions JSON: a ``/transactions/get`` (or ``/sync``) response, or a sandbox
custom user's ``override_accounts``. Plaid's sign is the opposite of OFX's: a positive Plaid
amount is money out, so it is negated here.

Numbers are read exactly, never as floats: a fraction as ``Decimal``, an integer as ``int`` (as
``Decimal`` beyond 20 digits, which Python would refuse to read). A transaction's fields are
kept in the event's ``original`` as the file wrote them, every fraction and every integer beyond
64 bits as its decimal text. ``NaN`` and ``Infinity`` are not JSON: a transaction holding one is
refused.
"""

from __future__ import annotations

import json
import re
from datetime import date
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from connectors.bank.lines import BankFileError, StatementLine, midnight, minor_units, quoted

_INT64 = range(-(2**63), 2**63)


class _NotJson:
    """``NaN``, ``Infinity`` or ``-Infinity``: accepted by Python's reader, not JSON."""

    def __init__(self, token: str) -> None:
        self.token = token

    def __str__(self) -> str:
        return self.token


def _integer(text: str) -> int | Decimal:
    return int(text) if len(text) <= 20 else Decimal(text)


def _load(name: str, data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data, parse_float=Decimal, parse_int=_integer, parse_constant=_NotJson)
    except json.JSONDecodeError as exc:
        raise BankFileError(name, f"line {exc.lineno}", f"not valid JSON: {exc.msg}") from exc
    except UnicodeDecodeError as exc:
        raise BankFileError(name, "line 1", f"not UTF-8, -16 or -32 text: {exc.reason}") from exc
    except RecursionError as exc:
        raise BankFileError(name, "line 1", "not a Plaid file: nested too deeply") from exc
    if not isinstance(value, dict):
        raise BankFileError(name, "line 1", "expected a JSON object")
    return value


def _original(value: Any, path: str) -> Any:
    """``value`` as the event keeps it: fractions and integers beyond 64 bits as their text;
    ``ValueError`` naming the field for a ``NaN`` or an ``Infinity``, or for text that is not
    Unicode (JSON's ``\\ud800`` escape, half of a surrogate pair, stands for no character)."""
    if isinstance(value, _NotJson):
        raise ValueError(f"{path} is {value.token}, which is not a JSON number")
    if isinstance(value, str):
        _unicode(value, path)
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, int) and not isinstance(value, bool) and value not in _INT64:
        return str(value)
    if isinstance(value, dict):
        return {_unicode(k, path): _original(v, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_original(v, f"{path}[{i}]") for i, v in enumerate(value)]
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
    numbers = [_account_number(a, i) for i, a in enumerate(accounts)]
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


def _unicode(text: str, path: str) -> str:
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"{path} holds a lone surrogate, which is not Unicode text") from None
    return text


def _text(value: Any) -> str:
    """A field that should have been text, as JSON text."""
    return json.dumps(_original(value, "the description"), ensure_ascii=False)


def _account_number(account: Any, index: int) -> str:
    """The account's ``numbers.account``, else its index in the list."""
    numbers = account.get("numbers") if isinstance(account, dict) else None
    number = numbers.get("account", index) if isinstance(numbers, dict) else index
    return str(number)


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
    original = _original(tx, "the transaction")
    amount = tx.get("amount")
    if isinstance(amount, bool) or not isinstance(amount, int | Decimal):
        raise ValueError(f"amount {quoted(original.get('amount'))} is not a number")
    currency = (
        tx.get("iso_currency_code") or tx.get("currency") or tx.get("unofficial_currency_code")
    )
    if not isinstance(currency, str) or not re.fullmatch(r"[A-Za-z]{3}", currency):
        raise ValueError(f"currency {quoted(currency)} is not a currency code")
    currency = currency.upper()
    posted_text = tx.get("date_posted") or tx.get("date")
    try:
        posted = date.fromisoformat(str(posted_text))
    except ValueError as exc:
        raise ValueError(f"date {quoted(posted_text)} is not YYYY-MM-DD") from exc
    description = tx.get("description") or tx.get("name") or tx.get("merchant_name") or ""
    try:
        minor = minor_units(Decimal(amount), currency)
    except ValueError as exc:
        raise ValueError(f"amount {exc}") from None
    return StatementLine(
        account=account,
        posted_on=posted,
        occurred_at=midnight(posted, zone),
        amount_minor=-minor,  # Plaid: positive = money out
        currency=currency,
        description=description if isinstance(description, str) else _text(description),
        where=where,
        fitid=tx.get("transaction_id") if isinstance(tx.get("transaction_id"), str) else None,
        original=original,
    )
