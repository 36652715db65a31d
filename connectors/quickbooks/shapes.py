"""Which QuickBooks Online entity a document becomes, and its body (pure functions of the
document, the tenant's chart and the QuickBooks ids the client looked up).

With the chart's roles (``bank:…`` and ``clearing:…`` accounts are QuickBooks *Bank* accounts,
or for receiving only *Other Current Asset* ones like Undeposited Funds):

- ``invoice`` with one receivable debit → an Invoice to the customer (else ``ledgerhub
  sales``): one ``SalesItemLineDetail`` line per credit (revenue, shipping, tax), each on the
  item of that account, and a debit (a discount) as the ``DiscountLineDetail`` line (a sale
  with two debits besides the receivable is a JournalEntry: QuickBooks takes one discount);
- ``payment`` of an order (a receivable credit, the processor's clearing debit, perhaps a fee)
  → a Payment applied to the order's Invoice (``LinkedTxn``), deposited to the clearing
  account, its fee a Purchase (Expense) from it; without an order (or before the Invoice is in
  QuickBooks) → a Deposit to the clearing account (the fee a negative line);
- ``expense`` (and any payment, fee or transfer with exactly one bank-type posting) → a
  Purchase (money out) or a Deposit (money in) of that account;
- ``transfer`` between two bank-type accounts → a Transfer;
- ``credit_note`` paid out of one bank-type account (a processor's refund) → a RefundReceipt;
- anything else (payroll, ``per_payout`` and ``daily`` summaries, order-side refunds, a shape
  that does not fit, no chart given) → a JournalEntry; a document in several currencies → one
  JournalEntry per currency.

Every entity carries ``[IDEMPOTENCY-KEY CONTENT-HASH]`` (plus a part: ``fee``, or a currency)
at the end of its ``PrivateNote`` so ``held`` finds ledgerhub's entities and what each was
written from. Amounts are exact decimals (``to_major``), never floats.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from hub.domain.documents import Document
from hub.domain.money import to_major

if TYPE_CHECKING:
    from hub.spi.config import Account

ShapeKind = Literal["invoice", "payment", "deposit", "purchase", "transfer", "refund", "journal"]
ENTITIES = (
    "Invoice",
    "Payment",
    "Purchase",
    "Deposit",
    "Transfer",
    "RefundReceipt",
    "JournalEntry",
)
"""The QuickBooks entities ledgerhub writes (and ``held`` reads back)."""
ENTITY: dict[ShapeKind, str] = {
    "invoice": "Invoice",
    "payment": "Payment",
    "deposit": "Deposit",
    "purchase": "Purchase",
    "transfer": "Transfer",
    "refund": "RefundReceipt",
    "journal": "JournalEntry",
}
SALES_CUSTOMER = "ledgerhub sales"
"""The customer of a sale (or refund, or receivable line) whose document names none."""
TAG = re.compile(r"\[(lh-[0-9a-f]+) ([0-9a-f]{64})(?: ([a-z0-9]+))?\]$")
"""The tag ending a ``PrivateNote``: idempotency key, content hash, optional part."""

Line = tuple[str, int]
"""(account code, amount in minor units as the QuickBooks line shows it)."""


@dataclass(frozen=True)
class Shape:
    """How one document is written to QuickBooks."""

    kind: ShapeKind
    currency: str = ""
    bank: str = ""
    """The bank-type account: deposited to, paid from, refunded from, a transfer's source."""
    to: str = ""
    """A transfer's destination account."""
    amount: int = 0
    """Invoice total, payment gross or transfer amount (minor units, positive)."""
    lines: tuple[Line, ...] = ()
    """Invoice, refund, deposit or purchase lines; for a payment, its Deposit form's lines."""
    fee: tuple[Line, ...] = ()
    """A payment's fee lines (its Purchase)."""
    customer: str = ""
    order: str | None = None


@dataclass(frozen=True)
class Refs:
    """The QuickBooks ids a body refers to, looked up (or created) by the client."""

    accounts: Mapping[str, str]
    """Chart code → QuickBooks Account Id."""
    items: Mapping[str, str] = field(default_factory=dict)
    """Chart code → the Id of the Service item whose income account it is."""
    customer: str = ""
    """The Customer Id (invoice, payment, refund; receivable lines)."""


def shape(document: Document, accounts: Mapping[str, Account] | None) -> Shape:
    """The QuickBooks entity ``document`` becomes (a JournalEntry when no other fits)."""
    currencies = {c for _, c, _ in document.postings}
    if accounts is None or len(currencies) != 1:
        return Shape("journal")
    currency = currencies.pop()

    def role(code: str) -> str:
        account = accounts.get(code)
        return (account.role or "") if account is not None else ""

    banks = [(a, v) for a, _, v in document.postings if role(a).startswith(("bank:", "clearing:"))]
    others = [(a, v) for a, _, v in document.postings if (a, v) not in banks]
    owed = [(a, v) for a, v in others if role(a) == "receivable"]
    if document.kind == "invoice":
        if banks or len(owed) != 1 or owed[0][1] <= 0:
            return Shape("journal")
        lines = tuple((a, -v) for a, v in others if role(a) != "receivable")
        if sum(1 for _, v in lines if v < 0) > 1:
            return Shape("journal")  # QuickBooks takes one discount line
        customer = document.customer or SALES_CUSTOMER
        return Shape("invoice", currency, amount=owed[0][1], lines=lines, customer=customer)
    if document.kind == "transfer" and len(banks) == 2 and not others:
        (low, _), (high, high_v) = sorted(banks, key=lambda b: b[1])
        return Shape("transfer", currency, bank=low, to=high, amount=high_v)
    if document.kind == "credit_note":
        # a refund of sales (refunds, tax, shipping) paid out of one account; one that gives back
        # a receivable or an unapplied payment (a customer's balance) is a JournalEntry
        settles = any(role(a) == "unapplied" for a, _ in others)
        if (
            len(banks) == 1
            and banks[0][1] < 0
            and not owed
            and not settles
            and all(v > 0 for _, v in others)
        ):
            return Shape("refund", currency, banks[0][0], lines=tuple(others),
                         customer=SALES_CUSTOMER)  # fmt: skip
        return Shape("journal")
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
            return Shape("payment", currency, bank, amount=-credits[0][1], lines=receive,
                         fee=fees, customer=SALES_CUSTOMER, order=document.order)  # fmt: skip
        return Shape("deposit", currency, bank, lines=receive, customer=SALES_CUSTOMER)
    return Shape("purchase", currency, bank, lines=tuple(others), customer=SALES_CUSTOMER)


def receivables(accounts: Mapping[str, Account] | None) -> set[str]:
    """The chart's receivable codes (their QuickBooks lines name a customer)."""
    return {c for c, a in (accounts or {}).items() if a.role == "receivable"}


def invoice_number(order: str) -> str:
    """The DocNumber of an order's Invoice (QuickBooks allows 21 characters): ``LH-<order>``,
    or ``LH-`` and a hash of a longer order id. How its payment finds it."""
    number = f"LH-{order}"
    if len(number) <= 21 and "'" not in number:
        return number
    return "LH-" + hashlib.sha256(order.encode()).hexdigest()[:18]


def note(document: Document, part: str = "", width: int = 300) -> str:
    """The ``PrivateNote``: the description (``width`` at most), then the ``[KEY HASH]`` tag
    (``part``: ``fee`` for a payment's fee, a currency for a journal's other currencies)."""
    suffix = f" {part}" if part else ""
    tag = f"[{document.idempotency_key} {document.content_hash}{suffix}]"
    return f"{document.description[:width]} {tag}"


def _money(minor: int, currency: str) -> Any:
    return to_major(minor, currency)


def _ref(value: str) -> dict[str, str]:
    return {"value": value}


def _sales_lines(
    document: Document, chosen: Shape, refs: Refs, *, discounts: bool
) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    for code, amount in chosen.lines:
        if amount < 0 and discounts:
            continue
        value = _money(amount, chosen.currency)
        lines.append({
            "Description": document.description[:4000],
            "Amount": value,
            "DetailType": "SalesItemLineDetail",
            "SalesItemLineDetail": {"ItemRef": _ref(refs.items[code]), "Qty": 1,
                                    "UnitPrice": value},
        })  # fmt: skip
    if discounts:
        for code, amount in chosen.lines:
            if amount < 0:
                lines.append({
                    "Amount": _money(-amount, chosen.currency),
                    "DetailType": "DiscountLineDetail",
                    "DiscountLineDetail": {"PercentBased": False,
                                           "DiscountAccountRef": _ref(refs.accounts[code])},
                })  # fmt: skip
    return lines


def invoice(document: Document, chosen: Shape, refs: Refs) -> dict[str, Any]:
    """An Invoice to the customer, due on its date."""
    body: dict[str, Any] = {
        "CustomerRef": _ref(refs.customer),
        "TxnDate": document.business_date.isoformat(),
        "DueDate": document.business_date.isoformat(),
        "CurrencyRef": _ref(chosen.currency),
        "PrivateNote": note(document),
        "Line": _sales_lines(document, chosen, refs, discounts=True),
    }
    if document.order:
        body["DocNumber"] = invoice_number(document.order)
    return body


def payment(
    document: Document, chosen: Shape, refs: Refs, invoice_id: str, customer_id: str
) -> dict[str, Any]:
    """A Payment of the Invoice ``invoice_id`` (of ``customer_id``), deposited to the clearing
    account."""
    amount = _money(chosen.amount, chosen.currency)
    return {
        "CustomerRef": _ref(customer_id),
        "TotalAmt": amount,
        "TxnDate": document.business_date.isoformat(),
        "CurrencyRef": _ref(chosen.currency),
        "DepositToAccountRef": _ref(refs.accounts[chosen.bank]),
        "PrivateNote": note(document),
        "Line": [{"Amount": amount, "LinkedTxn": [{"TxnId": invoice_id, "TxnType": "Invoice"}]}],
    }


def purchase(
    document: Document, chosen: Shape, refs: Refs, lines: tuple[Line, ...], part: str = ""
) -> dict[str, Any]:
    """An Expense (``PaymentType`` Cash) paid from the shape's bank-type account."""
    return {
        "PaymentType": "Cash",
        "AccountRef": _ref(refs.accounts[chosen.bank]),
        "TxnDate": document.business_date.isoformat(),
        "CurrencyRef": _ref(chosen.currency),
        "PrivateNote": note(document, part),
        "Line": [
            {"Description": document.description[:4000],
             "Amount": _money(amount, chosen.currency),
             "DetailType": "AccountBasedExpenseLineDetail",
             "AccountBasedExpenseLineDetail": {"AccountRef": _ref(refs.accounts[code])}}
            for code, amount in lines
        ],
    }  # fmt: skip


def deposit(document: Document, chosen: Shape, refs: Refs, receivable: set[str]) -> dict[str, Any]:
    """A Deposit to the shape's bank-type account, one line per source account (a receivable
    line names the customer, as QuickBooks requires)."""
    lines = []
    for code, amount in chosen.lines:
        detail: dict[str, Any] = {"AccountRef": _ref(refs.accounts[code])}
        if code in receivable:
            detail["Entity"] = {"value": refs.customer, "type": "Customer"}
        lines.append({"Description": document.description[:4000],
                      "Amount": _money(amount, chosen.currency),
                      "DetailType": "DepositLineDetail", "DepositLineDetail": detail})  # fmt: skip
    return {
        "DepositToAccountRef": _ref(refs.accounts[chosen.bank]),
        "TxnDate": document.business_date.isoformat(),
        "CurrencyRef": _ref(chosen.currency),
        "PrivateNote": note(document),
        "Line": lines,
    }


def transfer(document: Document, chosen: Shape, refs: Refs) -> dict[str, Any]:
    """A Transfer from the shape's bank-type account to ``to``."""
    return {
        "FromAccountRef": _ref(refs.accounts[chosen.bank]),
        "ToAccountRef": _ref(refs.accounts[chosen.to]),
        "Amount": _money(chosen.amount, chosen.currency),
        "TxnDate": document.business_date.isoformat(),
        "PrivateNote": note(document),
    }


def refund(document: Document, chosen: Shape, refs: Refs) -> dict[str, Any]:
    """A RefundReceipt paid out of the shape's bank-type account, one item line per account
    the refund debits."""
    return {
        "CustomerRef": _ref(refs.customer),
        "DepositToAccountRef": _ref(refs.accounts[chosen.bank]),
        "TxnDate": document.business_date.isoformat(),
        "CurrencyRef": _ref(chosen.currency),
        "PrivateNote": note(document),
        "Line": _sales_lines(document, chosen, refs, discounts=False),
    }


def journal_parts(document: Document) -> list[tuple[str, str]]:
    """(currency, part) of each JournalEntry the document becomes: the first currency
    (alphabetically) has no part, each other one its lower-cased code."""
    currencies = sorted({c for _, c, _ in document.postings})
    return [(c, "" if i == 0 else c.lower()) for i, c in enumerate(currencies)]


def journal(
    document: Document, currency: str, part: str, refs: Refs, receivable: set[str]
) -> dict[str, Any]:
    """A JournalEntry of the document's postings in ``currency`` (balanced, as every
    document is per currency): Debit lines for debits, Credit lines for credits."""
    lines = []
    for code, posted, amount in document.postings:
        if posted != currency:
            continue
        detail: dict[str, Any] = {
            "PostingType": "Debit" if amount > 0 else "Credit",
            "AccountRef": _ref(refs.accounts[code]),
        }
        if code in receivable:
            detail["Entity"] = {"Type": "Customer", "EntityRef": _ref(refs.customer)}
        lines.append({"Description": document.description[:4000],
                      "Amount": _money(abs(amount), currency),
                      "DetailType": "JournalEntryLineDetail",
                      "JournalEntryLineDetail": detail})  # fmt: skip
    return {
        "TxnDate": document.business_date.isoformat(),
        "CurrencyRef": _ref(currency),
        "PrivateNote": note(document, part),
        "Line": lines,
    }


def item_name(account: Account | None, code: str) -> str:
    """The name of the Service item whose income account is ``code`` (QuickBooks forbids
    ``:`` in names: it separates sub-items)."""
    label = account.name if account is not None else "account"
    return re.sub(r"[:\t\n]", " ", f"{label} ({code}) ledgerhub")[:100]
