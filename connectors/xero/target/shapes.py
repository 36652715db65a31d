"""Which Xero object a document becomes, and its body (pure functions of the document and the
tenant's chart).

With the chart's roles (``bank:…`` and ``clearing:…`` accounts are Xero bank accounts):

- ``invoice`` with one receivable debit → an ``ACCREC`` Invoice (``AUTHORISED``), one line per
  other posting (credits positive: revenue, shipping, tax; a discount is a negative line);
- ``payment`` of an order (a receivable credit, the processor's clearing debit, perhaps a fee)
  → a Payment of the order's invoice into the clearing account, its fee a ``SPEND`` from it;
  without an order (or before the invoice is in Xero) → a ``RECEIVE`` into the clearing account
  (the fee a negative line);
- ``expense`` (and any other per-transaction document with exactly one bank-type posting) → a
  ``SPEND`` (money out) or ``RECEIVE`` (money in) of that account;
- ``transfer`` between two bank-type accounts → a BankTransfer;
- anything else (journals, credit notes, summaries, several currencies, a shape that does not
  fit, no chart given) → a ManualJournal.

Every object carries ``[IDEMPOTENCY-KEY CONTENT-HASH]`` at the end of its Reference (Narration
for a journal) so ``held`` finds ledgerhub's objects and what each was written from.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from hub.domain.documents import Document
from hub.domain.money import to_major

if TYPE_CHECKING:
    from hub.spi.config import Account

ShapeKind = Literal["invoice", "payment", "receive", "spend", "transfer", "journal"]
COLLECTIONS = ("Invoices", "Payments", "BankTransactions", "BankTransfers", "ManualJournals")
"""The Xero collections ledgerhub writes, each with its id field in ``ID_FIELD``."""
ID_FIELD = {
    "Invoices": "InvoiceID",
    "Payments": "PaymentID",
    "BankTransactions": "BankTransactionID",
    "BankTransfers": "BankTransferID",
    "ManualJournals": "ManualJournalID",
    "Contacts": "ContactID",
}
SALES_CONTACT = "ledgerhub sales"
"""The contact of a sale whose customer the document does not name."""
TAG = re.compile(r"\[(lh-[0-9a-f]+) ([0-9a-f]{64})( fee)?\]$")

Line = tuple[str, int]
"""(account code, amount in minor units as the Xero line shows it)."""


@dataclass(frozen=True)
class Shape:
    """How one document is written to Xero."""

    kind: ShapeKind
    currency: str = ""
    bank: str = ""
    """The bank-type account: the payment's or bank transaction's, a transfer's source."""
    to: str = ""
    """A transfer's destination account."""
    amount: int = 0
    """Invoice total, payment gross or transfer amount (minor units, positive)."""
    lines: tuple[Line, ...] = ()
    """Invoice lines; for a payment, the lines of its ``RECEIVE`` form."""
    fee: tuple[Line, ...] = ()
    """A payment's fee lines (its ``SPEND``)."""
    contact: str = ""
    """The contact's name (invoice, payment's ``RECEIVE`` form, bank transaction)."""
    payee: str = ""
    """The contact of a payment's fee ``SPEND``."""
    order: str | None = None


def shape(document: Document, accounts: Mapping[str, Account] | None) -> Shape:
    """The Xero object ``document`` becomes (a ManualJournal when no other fits)."""
    currencies = {c for _, c, _ in document.postings}
    if accounts is None or len(currencies) != 1:
        return Shape("journal")
    currency = currencies.pop()

    def role(code: str) -> str:
        account = accounts.get(code)
        return (account.role or "") if account is not None else ""

    banks = [(a, v) for a, _, v in document.postings if role(a).startswith(("bank:", "clearing:"))]
    others = [(a, v) for a, _, v in document.postings if (a, v) not in banks]
    if document.kind == "invoice":
        owed = [(a, v) for a, v in others if role(a) == "receivable"]
        if banks or len(owed) != 1 or owed[0][1] <= 0:
            return Shape("journal")
        lines = tuple((a, -v) for a, v in others if role(a) != "receivable")
        contact = document.customer or SALES_CONTACT
        return Shape("invoice", currency, amount=owed[0][1], lines=lines, contact=contact)
    if document.kind == "transfer" and len(banks) == 2 and not others:
        (low, _), (high, high_v) = sorted(banks, key=lambda b: b[1])
        return Shape("transfer", currency, bank=low, to=high, amount=high_v)
    if document.kind not in ("payment", "expense", "transfer") or len(banks) != 1:
        return Shape("journal")
    bank, amount = banks[0]
    if amount > 0:
        receive = tuple((a, -v) for a, v in others)
        credits = [(a, v) for a, v in others if v < 0]
        fees = tuple((a, v) for a, v in others if v > 0)
        if (
            document.kind == "payment"
            and document.order
            and len(credits) == 1
            and role(credits[0][0]) == "receivable"
            and all(role(a) == "fees" for a, _ in fees)
        ):
            gross = -credits[0][1]
            return Shape("payment", currency, bank, amount=gross, lines=receive, fee=fees,
                         contact=SALES_CONTACT, payee=_payee(role(bank)),
                         order=document.order)  # fmt: skip
        return Shape("receive", currency, bank, lines=receive, contact=SALES_CONTACT)
    spend = tuple((a, v) for a, v in others)
    return Shape("spend", currency, bank, lines=spend, contact=_payee(role(bank)))


def _payee(bank_role: str) -> str:
    kind, _, name = bank_role.partition(":")
    return name if kind == "clearing" and name else "ledgerhub expenses"


def invoice_number(order: str) -> str:
    """The InvoiceNumber of an order's invoice: how its payment finds it."""
    return f"LH-{order}"[:255]


def reference(document: Document, part: str = "", width: int = 120) -> str:
    """The document's description (``width`` at most), then its ``[KEY HASH]`` tag (``part``:
    ``fee`` for a payment's fee)."""
    suffix = f" {part}" if part else ""
    tag = f"[{document.idempotency_key} {document.content_hash}{suffix}]"
    return f"{document.description[:width]} {tag}"


def _items(document: Document, currency: str, lines: tuple[Line, ...]) -> list[dict[str, Any]]:
    return [
        {"Description": document.description[:400], "Quantity": 1,
         "UnitAmount": to_major(v, currency), "LineAmount": to_major(v, currency),
         "AccountCode": code}
        for code, v in lines
    ]  # fmt: skip


def invoice(document: Document, chosen: Shape, contact_id: str) -> dict[str, Any]:
    """An ``ACCREC`` invoice, ``AUTHORISED``, due on its date."""
    body: dict[str, Any] = {
        "Type": "ACCREC",
        "Contact": {"ContactID": contact_id},
        "Date": document.business_date.isoformat(),
        "DueDate": document.business_date.isoformat(),
        "LineAmountTypes": "NoTax",
        "LineItems": _items(document, chosen.currency, chosen.lines),
        "Reference": reference(document),
        "CurrencyCode": chosen.currency,
        "Status": "AUTHORISED",
    }
    if document.order:
        body["InvoiceNumber"] = invoice_number(document.order)
    return body


def payment(document: Document, chosen: Shape, invoice_id: str) -> dict[str, Any]:
    """A payment of the invoice ``invoice_id`` into the clearing account."""
    return {
        "Invoice": {"InvoiceID": invoice_id},
        "Account": {"Code": chosen.bank},
        "Date": document.business_date.isoformat(),
        "Amount": to_major(chosen.amount, chosen.currency),
        "Reference": reference(document),
    }


def bank_transaction(
    document: Document,
    chosen: Shape,
    kind: Literal["RECEIVE", "SPEND"],
    lines: tuple[Line, ...],
    contact_id: str,
    part: str = "",
) -> dict[str, Any]:
    """Money in (``RECEIVE``) or out (``SPEND``) of the shape's bank account."""
    return {
        "Type": kind,
        "Contact": {"ContactID": contact_id},
        "BankAccount": {"Code": chosen.bank},
        "Date": document.business_date.isoformat(),
        "LineAmountTypes": "NoTax",
        "LineItems": _items(document, chosen.currency, lines),
        "Reference": reference(document, part),
        "CurrencyCode": chosen.currency,
        "Status": "AUTHORISED",
    }


def transfer(document: Document, chosen: Shape) -> dict[str, Any]:
    """A transfer from the shape's bank account to ``to``."""
    return {
        "FromBankAccount": {"Code": chosen.bank},
        "ToBankAccount": {"Code": chosen.to},
        "Amount": to_major(chosen.amount, chosen.currency),
        "Date": document.business_date.isoformat(),
        "Reference": reference(document),
    }


def journal(document: Document) -> dict[str, Any]:
    """A posted manual journal, one line per posting (debits positive)."""
    lines = [
        {"LineAmount": to_major(amount, currency), "AccountCode": code,
         "Description": document.description[:400]}
        for code, currency, amount in document.postings
    ]  # fmt: skip
    return {
        "Narration": reference(document, width=300),
        "Date": document.business_date.isoformat(),
        "Status": "POSTED",
        "LineAmountTypes": "NoTax",
        "JournalLines": lines,
    }
