"""Facts → balanced journal entries (pure; the projection stores what ``book`` returns).

How each fact is booked (debit first; P = presentment currency, S = settlement currency):

- Sale (paid or open): receivable total; discounts; / revenue (subtotal, less tax when prices
  include it), shipping, sales tax. Draft and void sales book nothing.
- Payment: clearing:<processor> net (S), fees fee (S) / receivable gross when it pays an order
  the log holds, unapplied when it names one the log does not hold (yet), else revenue (P). If
  S differs from P, the fx account balances each currency.
- Refund, order side: refunds (net), sales tax (tax), shipping (shipping) / receivable. The
  split is the source's own when it states one (``Refund.tax``), else ``split_refund`` of the
  order's figures. Processor side: receivable (order in the log), unapplied (order named but
  not in the log) or refunds (no order) (P), fees / clearing; and, for the part of it no
  order-side refund states (``Known.uncovered``), the order side as well: refunds, sales tax,
  shipping (``split_refund``) / receivable, so the tax given back leaves sales tax payable
  whichever side reports the refund, and a refund both sides report is booked once.
- Dispute withdrawn: disputes (P), fees / clearing; reinstated: the reverse; status only: nothing.
- Fee: fees / clearing. Adjustment: clearing, fees / adjustments, or reserves (an asset) for a
  reserve held or released (signs follow the amount).
- Payout (paid only): bank / clearing.
- Bank line: bank / the first matching rule's account, else suspense (money out: reversed);
  a rule with ``action = "ignore"`` books nothing (the payout booked it).
- Payroll run: wages gross, payroll taxes employer taxes / payroll liabilities (withholdings,
  deductions, employer taxes), bank net pay.
- Customer, inventory movement: nothing.
- Balance movement: nothing, and no entry at all: it is ``informational`` (the event's other
  facts book its money), so ``projections.ledger.booked_facts`` leaves it out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Literal, Protocol

from hub.domain.facts import (
    Adjustment,
    BalanceMovement,
    BankLine,
    Customer,
    Dispute,
    Fact,
    Fee,
    InventoryMovement,
    Payment,
    Payout,
    PayrollRun,
    Refund,
    Sale,
)
from hub.domain.money import Money
from hub.spi.config import Account, ConnectionBooks, TenantBooks


class Unbookable(ValueError):
    """The fact needs an account the chart does not have (names the role)."""


@dataclass(frozen=True)
class OrderFigures:
    """What a refund of an order is split by: the order's total, and the tax and shipping in
    it (all in the order's currency)."""

    total: Money
    tax: Money
    shipping: Money

    @classmethod
    def of(cls, sale: Sale) -> OrderFigures:
        """The figures of ``sale``."""
        return cls(sale.total, sale.tax, sale.shipping)


def _share(amount: int, part: int, whole: int) -> int:
    """``amount * part / whole`` rounded to the nearest integer, a half away from zero."""
    numerator = 2 * amount * part
    sign = -1 if (numerator < 0) != (whole < 0) else 1
    return sign * ((abs(numerator) + abs(whole)) // (2 * abs(whole)))


def split_refund(amount: Money, order: OrderFigures | None) -> tuple[Money, Money, Money]:
    """``(net, tax, shipping)`` of a refund of ``amount`` of ``order``, pro rata by the order's
    own figures, in integer minor units: the tax is the refund's share of the order's tax, and
    tax plus shipping its share of the order's tax plus shipping, each rounded to the nearest
    minor unit (a half rounded up); the net takes the rest, so the three add up to ``amount``
    exactly and a refund of the whole total gives back exactly the order's tax and shipping.
    No order, an order in another currency or of total zero: all of it is net."""
    zero = Money.zero(amount.currency)
    if order is None or order.total.currency != amount.currency or not order.total.minor:
        return amount, zero, zero
    whole = order.total.minor
    tax = _share(amount.minor, order.tax.minor, whole)
    tax_and_shipping = _share(amount.minor, order.tax.minor + order.shipping.minor, whole)
    currency = amount.currency
    return (
        Money.of(amount.minor - tax_and_shipping, currency),
        Money.of(tax, currency),
        Money.of(tax_and_shipping - tax, currency),
    )


class Known(Protocol):
    """What the log holds about orders, for booking a payment or refund that names one (the
    ledger keeps it, ``projections.ledger.links``). Without it (``book(..., known=None)``)
    every named order is taken to be in the log, and no processor refund books order-side
    figures: the stateless view the accounting sync takes of one event."""

    def order(self, ref: str) -> OrderFigures | None:
        """The figures of the order ``ref`` names, None when the log does not hold it."""
        ...

    def order_of(self, fact: Refund) -> str | None:
        """The order a refund is of: its own ``order_ref``, else its payment's."""
        ...

    def uncovered(self, key: str, fact: Refund) -> Money:
        """The part of the processor refund ``fact`` (entry ``key``) that no order-side refund
        of its order states, so that it books the order side itself."""
        ...


@dataclass(frozen=True)
class Posting:
    """One line of an entry: ``amount`` in minor units, debit positive, credit negative."""

    account: str
    currency: str
    amount: int


@dataclass(frozen=True)
class Entry:
    """A journal entry: balanced per currency (checked when built, and by the database)."""

    kind: str
    business_date: date
    description: str
    postings: tuple[Posting, ...]
    payee: str | None = None


BankStatus = Literal["categorized", "suspense", "ignored"]


def payee_key(payee: str | None) -> str | None:
    """``payee`` reduced for comparing lines: lower case, letters only, no reference numbers
    (``"GitHub, Inc. #5678"`` and ``"GITHUB INC 1234"`` are both ``"github inc"``)."""
    if not payee:
        return None
    words = re.sub(r"[^a-z0-9]+", " ", payee.lower()).split()
    kept = " ".join(w for w in words if not any(c.isdigit() for c in w))
    return kept or None


@dataclass(frozen=True)
class BankNote:
    """How a bank line was categorized (shown with suggestions; never changed silently)."""

    status: BankStatus
    account: str | None
    rule: str | None
    business_date: date
    amount: Money
    payee: str | None


@dataclass(frozen=True)
class Booking:
    """What a fact books: an entry (None: nothing, e.g. a draft sale) and, for a bank line,
    how it was categorized."""

    entry: Entry | None
    bank: BankNote | None = None


@dataclass
class _Lines:
    postings: list[Posting] = field(default_factory=list)

    def debit(self, account: Account, amount: Money) -> None:
        if amount.minor:
            self.postings.append(Posting(account.code, amount.currency, amount.minor))

    def credit(self, account: Account, amount: Money) -> None:
        self.debit(account, -amount)

    def entry(self, kind: str, when: date, description: str, payee: str | None = None) -> Entry:
        sums: dict[str, int] = {}
        for posting in self.postings:
            sums[posting.currency] = sums.get(posting.currency, 0) + posting.amount
        unbalanced = {c: s for c, s in sums.items() if s}
        if unbalanced:
            raise AssertionError(f"{kind} entry does not balance: {unbalanced}")
        return Entry(kind, when, description, tuple(self.postings), payee)


class _Accounts:
    """Role → account for one tenant and connection, naming the missing role when absent."""

    def __init__(self, books: TenantBooks, connection: ConnectionBooks) -> None:
        self.books = books
        self.connection = connection

    def role(self, role: str) -> Account:
        account = self.books.by_role(role)
        if account is None:
            raise Unbookable(f"tenant {self.books.name!r} has no account with role {role!r}")
        return account

    def code(self, code: str) -> Account:
        account = self.books.accounts.get(code)
        if account is None:
            raise Unbookable(f"account {code!r} is not in tenant {self.books.name!r}'s chart")
        return account

    def clearing(self, processor: str) -> Account:
        return self.role(f"clearing:{processor}")

    def bank(self, *, payout: bool = False) -> Account:
        chosen = self.connection.payout_account if payout else self.connection.ledger_account
        if chosen is not None:
            return self.code(chosen)
        name = self.connection.id.split(":", 1)[-1]
        account = self.books.by_role(f"bank:{name}") or self.books.first_bank()
        if account is None:
            raise Unbookable(f"tenant {self.books.name!r} has no bank account (role bank:…)")
        return account


def _settle(
    lines: _Lines, acc: _Accounts, counter: Account, gross: Money, settled: Money | None
) -> Money:
    """Book ``gross`` (P) against ``counter`` and return it in S, through fx when converted.

    Debits ``counter`` with ``gross``; the caller credits the returned settlement amount.
    """
    lines.debit(counter, gross)
    if settled is None or settled.currency == gross.currency:
        return gross if settled is None else settled
    fx = acc.role("fx")
    lines.credit(fx, gross)
    lines.debit(fx, settled)
    return settled


def _sale(fact: Sale, acc: _Accounts) -> Booking:
    if fact.status not in ("paid", "open"):
        return Booking(None)
    lines = _Lines()
    lines.debit(acc.role("receivable"), fact.total)
    lines.debit(acc.role("discounts"), fact.discounts)
    revenue = fact.subtotal - fact.tax if fact.taxes_included else fact.subtotal
    lines.credit(acc.role("revenue"), revenue)
    lines.credit(acc.role("shipping"), fact.shipping)
    lines.credit(acc.role("sales_tax"), fact.tax)
    label = f"order {fact.number or fact.order_id}"
    return Booking(lines.entry("sale", fact.business_date, label, fact.customer))


def _payment(fact: Payment, acc: _Accounts, known: Known | None) -> Booking:
    lines = _Lines()
    if fact.order_ref is None:
        counter = acc.role("revenue")
    elif known is not None and known.order(fact.order_ref) is None:
        counter = acc.role("unapplied")
    else:
        counter = acc.role("receivable")
    # credit the counter account in P, debit clearing in S: built as the negation of _settle
    settled = fact.settled or fact.gross
    lines.credit(counter, fact.gross)
    if settled.currency != fact.gross.currency:
        fx = acc.role("fx")
        lines.debit(fx, fact.gross)
        lines.credit(fx, settled)
    lines.debit(acc.clearing(fact.processor), fact.net)
    if fact.fee is not None:
        lines.debit(acc.role("fees"), fact.fee)
    label = f"{fact.processor} payment {fact.payment_id}"
    return Booking(lines.entry("payment", fact.business_date, label))


def _order_side(lines: _Lines, acc: _Accounts, split: tuple[Money, Money, Money]) -> None:
    """Debit refunds, sales tax and shipping with a refund's split; credit the receivable."""
    net, tax, shipping = split
    lines.debit(acc.role("refunds"), net)
    lines.debit(acc.role("sales_tax"), tax)
    if shipping.minor:
        lines.debit(acc.role("shipping"), shipping)
    lines.credit(acc.role("receivable"), net + tax + shipping)


def _stated_split(fact: Refund) -> tuple[Money, Money, Money] | None:
    """The split the source states (None: it states none)."""
    if fact.tax is None:
        return None
    shipping = fact.shipping or Money.zero(fact.amount.currency)
    return fact.amount - fact.tax - shipping, fact.tax, shipping


def _refund(fact: Refund, acc: _Accounts, key: str, known: Known | None) -> Booking:
    if fact.status not in ("succeeded", "pending"):
        return Booking(None)
    lines = _Lines()
    if fact.processor is None:
        split = _stated_split(fact)
        if split is None:
            order = known.order(fact.order_ref) if known and fact.order_ref else None
            split = split_refund(fact.amount, order)
        _order_side(lines, acc, split)
        label = f"refund {fact.refund_id} of order {fact.order_ref}"
        return Booking(lines.entry("refund", fact.business_date, label))
    ref = fact.order_ref if known is None else known.order_of(fact)
    order = None if known is None or ref is None else known.order(ref)
    if ref is None:
        counter = acc.role("refunds")
    elif known is not None and order is None:
        counter = acc.role("unapplied")
    else:
        counter = acc.role("receivable")
    settled = _settle(lines, acc, counter, fact.amount, fact.settled)
    clearing = acc.clearing(fact.processor)
    lines.credit(clearing, settled)
    if fact.fee is not None:
        lines.debit(acc.role("fees"), fact.fee)
        lines.credit(clearing, fact.fee)
    if known is not None and order is not None:
        uncovered = known.uncovered(key, fact)
        if uncovered.minor:
            _order_side(lines, acc, split_refund(uncovered, order))
    label = f"{fact.processor} refund {fact.refund_id}"
    return Booking(lines.entry("refund", fact.business_date, label))


def _dispute(fact: Dispute, acc: _Accounts) -> Booking:
    if fact.movement == "none":
        return Booking(None)
    lines = _Lines()
    clearing = acc.clearing(fact.processor)
    settled = _settle(lines, acc, acc.role("disputes"), fact.amount, fact.settled)
    lines.credit(clearing, settled)
    if fact.movement == "reinstated":
        lines.postings = [Posting(p.account, p.currency, -p.amount) for p in lines.postings]
    if fact.fee is not None:
        lines.debit(acc.role("fees"), fact.fee)
        lines.credit(clearing, fact.fee)
    label = f"{fact.processor} dispute {fact.dispute_id} {fact.movement}"
    return Booking(lines.entry("dispute", fact.business_date, label))


def _fee(fact: Fee, acc: _Accounts) -> Booking:
    lines = _Lines()
    lines.debit(acc.role("fees"), fact.amount)
    lines.credit(acc.clearing(fact.processor), fact.amount)
    label = f"{fact.processor} fee {fact.fee_id}"
    return Booking(lines.entry("fee", fact.business_date, label) if lines.postings else None)


def _adjustment(fact: Adjustment, acc: _Accounts) -> Booking:
    lines = _Lines()
    clearing = acc.clearing(fact.processor)
    lines.debit(clearing, fact.amount)
    # a reserve held (negative) or released (positive) moves the merchant's own money between
    # the processor balance and the reserve it keeps: an asset, never income or expense
    lines.credit(acc.role("reserves" if fact.reserve else "adjustments"), fact.amount)
    if fact.fee is not None:
        lines.debit(acc.role("fees"), fact.fee)
        lines.credit(clearing, fact.fee)
    label = f"{fact.processor} {fact.description or 'adjustment'} {fact.adjustment_id}"
    return Booking(lines.entry("adjustment", fact.business_date, label) if lines.postings else None)


def _payout(fact: Payout, acc: _Accounts) -> Booking:
    if fact.status != "paid":
        return Booking(None)
    lines = _Lines()
    lines.debit(acc.bank(payout=True), fact.amount)
    lines.credit(acc.clearing(fact.processor), fact.amount)
    label = f"{fact.processor} payout {fact.payout_id}"
    return Booking(lines.entry("payout", fact.arrival_date, label))


def _bank_line(fact: BankLine, acc: _Accounts) -> Booking:
    payee = fact.payee or fact.description or ""
    rule = next((r for r in acc.books.rules if r.matches(payee)), None)
    seen = (fact.business_date, fact.amount, fact.payee)
    if rule is not None and rule.action == "ignore":
        return Booking(None, BankNote("ignored", None, rule.label, *seen))
    if rule is not None and rule.account is not None:
        target = acc.code(rule.account)
        note = BankNote("categorized", rule.account, rule.label, *seen)
    else:
        target = acc.role("suspense")
        note = BankNote("suspense", target.code, None, *seen)
    lines = _Lines()
    lines.debit(acc.bank(), fact.amount)
    lines.credit(target, fact.amount)
    label = fact.description or fact.payee or f"bank line {fact.line_id}"
    return Booking(lines.entry("bank_line", fact.business_date, label, fact.payee), note)


def _payroll(fact: PayrollRun, acc: _Accounts) -> Booking:
    lines = _Lines()
    lines.debit(acc.role("wages"), fact.gross_wages)
    lines.debit(acc.role("payroll_taxes"), fact.employer_taxes)
    liabilities = acc.role("payroll_liabilities")
    lines.credit(liabilities, fact.employee_withholdings)
    lines.credit(liabilities, fact.benefits_deductions)
    lines.credit(liabilities, fact.employer_taxes)
    lines.credit(acc.bank(payout=True), fact.net_pay)
    label = f"payroll {fact.run_id} ({len(fact.employees)} employees)"
    return Booking(lines.entry("payroll", fact.business_date, label))


def book(
    fact: Fact,
    books: TenantBooks,
    connection: ConnectionBooks,
    known: Known | None = None,
    key: str = "",
) -> Booking:
    """What ``fact`` (entry ``key``) books in ``books`` for ``connection``, given what the log
    holds about orders (``known``; None: see ``Known``); ``Unbookable`` names a missing role."""
    acc = _Accounts(books, connection)
    match fact:
        case Sale():
            return _sale(fact, acc)
        case Payment():
            return _payment(fact, acc, known)
        case Refund():
            return _refund(fact, acc, key, known)
        case Dispute():
            return _dispute(fact, acc)
        case Fee():
            return _fee(fact, acc)
        case Adjustment():
            return _adjustment(fact, acc)
        case Payout():
            return _payout(fact, acc)
        case BankLine():
            return _bank_line(fact, acc)
        case PayrollRun():
            return _payroll(fact, acc)
        case Customer() | InventoryMovement() | BalanceMovement():
            return Booking(None)
    raise Unbookable(f"no booking for {type(fact).__name__}")
