"""The canonical facts connectors map raw events to; the ledger books them.

Every fact has a ``kind`` (the discriminator), a ``key`` naming the business object it is about
within its source (``charge:ch_123``, ``sale:450789469``; a later event with the same key
describes the same object and replaces it), and a ``business_date`` (the event's time in the
tenant's time zone). Amounts are ``Money`` (integer minor units); signs are documented per field.

Most facts are booked. A ``BalanceMovement`` is not: it states what one balance transaction did
to the processor balance, money the same event's other facts already book, so that
reconciliation can compose payouts and tie out clearing accounts for any processor without
reading its payloads. Its class says so (``informational``); the ledger and the accounting sync
skip such facts. A ``StatementBalance`` is informational too: it moves no money, it states what
the bank says an account held (the accounting sync asserts it where a target can).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hub.domain.money import Money, total


class _Fact(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    informational: ClassVar[bool] = False
    """True for a fact that books nothing because other facts book its money (a
    ``BalanceMovement``): the ledger and the accounting sync leave it out entirely."""

    key: str = Field(min_length=1)
    business_date: date


def _check_settled(amount: Money, settled: Money | None) -> None:
    if settled is not None and settled.currency == amount.currency and settled != amount:
        raise ValueError(f"settled {settled} differs from {amount} in the same currency")


class SaleLine(BaseModel):
    """One order line: ``amount`` is the line's price times quantity, before discounts."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    description: str
    sku: str | None = None
    quantity: int = 1
    amount: Money


class TaxLine(BaseModel):
    """One tax charged on an order (``rate`` as the spoke wrote it, for display only)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    title: str
    rate: str | None = None
    amount: Money


SaleStatus = Literal["paid", "open", "draft", "void"]
"""``paid`` and ``open`` (owed) are booked; ``draft`` and ``void`` are not (yet)."""


class Sale(_Fact):
    """An order: lines, discounts, shipping and taxes that add up to ``total``.

    ``total = subtotal - discounts + shipping + (taxes unless taxes_included)``, checked.
    ``subtotal`` is the lines before discounts as the spoke states it; ``lines`` are the detail
    (a spoke may list lines its subtotal no longer counts, e.g. removed ones).
    """

    kind: Literal["sale"] = "sale"
    order_id: str
    number: str | None = None
    status: SaleStatus
    currency: str
    lines: list[SaleLine]
    subtotal: Money
    discounts: Money
    shipping: Money
    tax_lines: list[TaxLine]
    taxes_included: bool = False
    total: Money
    customer: str | None = None

    @property
    def tax(self) -> Money:
        """All taxes of the order."""
        return total([t.amount for t in self.tax_lines], self.currency)

    @property
    def lines_total(self) -> Money:
        """The order lines before discounts."""
        return total([line.amount for line in self.lines], self.currency)

    @model_validator(mode="after")
    def _adds_up(self) -> Sale:
        taxes = Money.zero(self.currency) if self.taxes_included else self.tax
        expected = self.subtotal - self.discounts + self.shipping + taxes
        if expected != self.total:
            raise ValueError(
                f"order {self.order_id}: subtotal - discounts + shipping + taxes = {expected}, "
                f"but the total is {self.total}"
            )
        return self


class Payment(_Fact):
    """Money a processor collected for the merchant.

    ``gross`` is in the presentment currency. ``settled`` is the gross in the settlement
    currency when the processor converted it (``exchange_rate`` as the processor wrote it).
    ``fee`` (a cost, in the settlement currency) when the event knows it; ``net`` is what
    reaches the processor balance. ``order_ref`` names the sale it pays, if any (then it settles
    the receivable; otherwise it is itself the sale).
    """

    kind: Literal["payment"] = "payment"
    processor: str
    payment_id: str
    gross: Money
    settled: Money | None = None
    exchange_rate: str | None = None
    fee: Money | None = None
    order_ref: str | None = None
    balance_transaction: str | None = None
    payout_id: str | None = None
    description: str | None = None

    @model_validator(mode="after")
    def _settles(self) -> Payment:
        _check_settled(self.gross, self.settled)
        return self

    @property
    def net(self) -> Money:
        """What reaches the processor balance: the settled gross less the fee."""
        settled = self.settled or self.gross
        return settled - self.fee if self.fee is not None else settled


RefundStatus = Literal["succeeded", "pending", "failed", "canceled"]
"""``succeeded`` and ``pending`` refunds are booked; ``failed`` and ``canceled`` are not."""


class Refund(_Fact):
    """Money given back. ``processor`` None: the order-side refund (revenue, shipping and tax
    reduced); else the processor returning it (its clearing account pays). ``tax`` and
    ``shipping`` are the parts of ``amount`` that were tax and shipping when the source states
    the split (``tax`` None: it does not, and the ledger splits the refund pro rata by its
    order's figures); ``fee`` a cost the processor took with it (settlement currency)."""

    kind: Literal["refund"] = "refund"
    processor: str | None
    refund_id: str
    status: RefundStatus = "succeeded"
    amount: Money
    tax: Money | None = None
    shipping: Money | None = None
    settled: Money | None = None
    fee: Money | None = None
    order_ref: str | None = None
    payment_ref: str | None = None

    @model_validator(mode="after")
    def _settles(self) -> Refund:
        _check_settled(self.amount, self.settled)
        return self


DisputeMovement = Literal["withdrawn", "reinstated", "none"]


class Dispute(_Fact):
    """A chargeback. ``movement`` says what it did to the processor balance: ``withdrawn``
    (``amount`` taken), ``reinstated`` (given back) or ``none`` (a status change only)."""

    kind: Literal["dispute"] = "dispute"
    processor: str
    dispute_id: str
    amount: Money
    settled: Money | None = None
    movement: DisputeMovement
    status: str
    fee: Money | None = None
    payment_ref: str | None = None

    @model_validator(mode="after")
    def _settles(self) -> Dispute:
        _check_settled(self.amount, self.settled)
        return self


class Fee(_Fact):
    """A processor fee taken from the balance (positive = a cost to the merchant)."""

    kind: Literal["fee"] = "fee"
    processor: str
    fee_id: str
    amount: Money
    description: str | None = None
    payout_id: str | None = None


class Adjustment(_Fact):
    """Any other processor balance movement (reserves, corrections); positive = credited to the
    merchant's balance. ``fee`` (positive = a cost) is taken with it."""

    kind: Literal["adjustment"] = "adjustment"
    processor: str
    adjustment_id: str
    amount: Money
    fee: Money | None = None
    description: str | None = None
    payout_id: str | None = None
    reserve: bool = False
    """Funds the processor holds back (negative) or releases (positive): still the merchant's
    money, so the books keep them on an asset account, not as income or expense."""


PayoutStatus = Literal["pending", "in_transit", "paid", "failed", "canceled"]


class PayoutComposition(BaseModel):
    """What a payout is made of, as the processor itself states it (e.g. a Shopify payout's
    ``summary``), each part signed the way it moved the processor balance, so the parts add up
    to the payout amount (``total``) when the statement is complete:

    - ``gross``: charges (positive);
    - ``refunds``: money given back (negative; a failed refund positive);
    - ``fees``: every fee of every movement (negative = a cost; a fee refund positive);
    - ``disputes``: chargebacks (negative; a won dispute's reversal positive);
    - ``adjustments``: everything else, signed (reserved and released funds, corrections,
      credits, debits, retried payouts).

    All five are in the payout's currency.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    gross: Money
    refunds: Money
    fees: Money
    disputes: Money
    adjustments: Money

    @model_validator(mode="after")
    def _one_currency(self) -> PayoutComposition:
        currencies = {self.gross.currency, self.refunds.currency, self.fees.currency,
                      self.disputes.currency, self.adjustments.currency}  # fmt: skip
        if len(currencies) != 1:
            raise ValueError(f"a payout's composition is in one currency, not {currencies}")
        return self

    @property
    def total(self) -> Money:
        """What the parts add up to (the payout amount when the statement is complete)."""
        return self.gross + self.refunds + self.fees + self.disputes + self.adjustments


class Payout(_Fact):
    """The processor sending its balance to the bank. Only a ``paid`` payout moves money in the
    books; ``settles`` lists the balance transactions it carries, when known; ``composition``
    is the processor's own statement of what it is made of, when the processor gives one (else
    reconciliation composes it from the ``BalanceMovement`` facts that name the payout)."""

    kind: Literal["payout"] = "payout"
    processor: str
    payout_id: str
    amount: Money
    arrival_date: date
    status: PayoutStatus
    settles: list[str] = Field(default_factory=list)
    description: str | None = None
    composition: PayoutComposition | None = None

    @model_validator(mode="after")
    def _composed_in_its_currency(self) -> Payout:
        if self.composition is not None and self.composition.gross.currency != self.amount.currency:
            raise ValueError(
                f"payout {self.payout_id} is in {self.amount.currency} but its composition is "
                f"in {self.composition.gross.currency}"
            )
        return self


MovementCategory = Literal["charge", "refund", "dispute", "fee", "payout", "adjustment"]
"""What a balance movement was, in canonical terms (each mapper maps its processor's own names):

- ``charge``: money collected for the merchant (a card charge, a payment);
- ``refund``: money given back (and a refund's failure or reversal, which returns it);
- ``dispute``: a chargeback withdrawn, or its reversal reinstating the funds;
- ``fee``: a fee charged on its own (billing, application fees), not with another movement;
- ``payout``: the balance sent to the bank, or such a transfer failing, reversed or canceled
  (what a payout settles, not part of it);
- ``adjustment``: anything else (reserved or released funds, corrections, credits, debits).
"""


class BalanceMovement(_Fact):
    """One balance transaction as the processor reports it: what it did to the processor
    balance, and the payout that carries it (None: not paid out yet, or not known). Books
    nothing (``informational``): the event's other facts (a payment, refund, fee, dispute or
    adjustment) book its money; reconciliation reads it to compose payouts and tie out the
    clearing account.

    ``amount`` is the gross, signed as it moved the balance (a charge positive, a refund or a
    dispute withdrawal negative); ``fee`` is what the processor took with it (positive = a
    cost); ``net`` is what reached the balance as the processor states it (usually
    ``amount - fee``; it is kept as stated so the tie-out follows the processor to the cent).
    All three are in the balance's (settlement) currency. For a ``fee`` movement, ``amount``
    and ``net`` are the (negative) charge and ``fee`` is usually zero. ``description`` is the
    processor's own name for what it was (e.g. Stripe's ``reporting_category``), for people.
    """

    kind: Literal["balance_movement"] = "balance_movement"
    informational: ClassVar[bool] = True
    processor: str
    movement_id: str
    payout_id: str | None = None
    category: MovementCategory
    amount: Money
    fee: Money
    net: Money
    description: str | None = None

    @model_validator(mode="after")
    def _one_currency(self) -> BalanceMovement:
        if not self.amount.currency == self.fee.currency == self.net.currency:
            raise ValueError(
                f"movement {self.movement_id}: amount, fee and net must be in one currency"
            )
        return self


class BankLine(_Fact):
    """A bank statement line: ``amount`` positive = money in, negative = money out."""

    kind: Literal["bank_line"] = "bank_line"
    line_id: str
    amount: Money
    payee: str | None = None
    description: str | None = None
    account: str | None = None


class StatementBalance(_Fact):
    """What a bank statement says an account held at the end of ``business_date`` (its as-of
    date, e.g. OFX's ``LEDGERBAL``): ``amount`` positive = money the business has. Books nothing
    (``informational``): the account's lines book its movements; this is what the books of the
    account should add up to, for a target to assert (a Beancount ``balance``)."""

    kind: Literal["statement_balance"] = "statement_balance"
    informational: ClassVar[bool] = True
    amount: Money
    account: str | None = None


class PayrollEmployee(BaseModel):
    """One employee's pay in a run: ``gross = withholdings + benefits_deductions + net_pay``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    employee_id: str
    name: str | None = None
    gross_wages: Money
    employee_withholdings: Money
    employer_taxes: Money
    benefits_deductions: Money
    net_pay: Money

    @model_validator(mode="after")
    def _adds_up(self) -> PayrollEmployee:
        parts = self.employee_withholdings + self.benefits_deductions + self.net_pay
        if parts != self.gross_wages:
            raise ValueError(
                f"employee {self.employee_id}: withholdings + deductions + net pay = {parts}, "
                f"but gross wages are {self.gross_wages}"
            )
        return self


_PAYROLL_TOTALS = (
    "gross_wages",
    "employee_withholdings",
    "employer_taxes",
    "benefits_deductions",
    "net_pay",
)


class PayrollRun(_Fact):
    """A payroll run: per employee and totals (each total = the sum over employees, checked)."""

    kind: Literal["payroll_run"] = "payroll_run"
    run_id: str
    currency: str
    pay_period_start: date | None = None
    pay_period_end: date | None = None
    employees: list[PayrollEmployee]
    gross_wages: Money
    employee_withholdings: Money
    employer_taxes: Money
    benefits_deductions: Money
    net_pay: Money

    @model_validator(mode="after")
    def _totals(self) -> PayrollRun:
        for name in _PAYROLL_TOTALS:
            summed = total([getattr(e, name) for e in self.employees], self.currency)
            if summed != getattr(self, name):
                raise ValueError(
                    f"payroll {self.run_id}: {name} is {getattr(self, name)} but the employees "
                    f"add up to {summed}"
                )
        return self


class Customer(_Fact):
    """A customer record (no money: the ledger does not book it)."""

    kind: Literal["customer"] = "customer"
    customer_id: str
    name: str | None = None
    email: str | None = None


class InventoryMovement(_Fact):
    """Stock of an item changing at a location: ``quantity`` is the change (or, with
    ``absolute``, the new level); ``unit_cost`` when the spoke knows it."""

    kind: Literal["inventory_movement"] = "inventory_movement"
    item_id: str
    location_id: str | None = None
    quantity: int
    absolute: bool = False
    unit_cost: Money | None = None


Fact = Annotated[
    Sale
    | Payment
    | Refund
    | Dispute
    | Fee
    | Adjustment
    | Payout
    | BalanceMovement
    | BankLine
    | StatementBalance
    | PayrollRun
    | Customer
    | InventoryMovement,
    Field(discriminator="kind"),
]
"""Any canonical fact (a tagged union on ``kind``)."""
