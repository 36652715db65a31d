"""The demo's month: October 2026 at a small New York tea shop, as its providers would send it.

Everything is generated here, deterministically, in the shapes of the public samples in
``../shared/reference/`` (Shopify's order, refund, payout and payout balance transaction; Stripe's
charge, refund, dispute, balance transaction and payout; an OFX 1.x bank statement; a Gusto
payroll). The month is fixed, not "last month": the same command prints the same books every
time, and the month is over (every payout's arrival window has closed), so a payout the bank never
received is a ``missing_deposit`` rather than ``pending``.

The story:

- 14 Shopify orders (New York sales tax 8.875 % on the goods after discounts; 6.95 shipping
  below 75.00; two discount codes); 9 paid through Shopify Payments, 5 through Stripe (the
  charge names the order in ``metadata.order_id``);
- processor fees 2.9 % + 0.30 per charge; a partial refund of a returned whisk through Shopify
  Payments (the shop's refund and the processor's), a full refund through Stripe, and a lost
  Stripe dispute (the charge back plus a 15.00 dispute fee);
- Shopify Payments holds 100.00 in reserve and releases 60.00 of it (40.00 still held at the
  month's end);
- weekly payouts: 5 from Shopify Payments, 4 from Stripe, each the net of the balance
  transactions it settles;
- the checking account's statements (OFX, one for 1-15 October and one for 16-31 October, each
  with its closing balance): the owner's capital, rent, postage, software, electricity, a tea
  supplier, Gusto's net pay and tax debits, and the payout deposits, except two planted
  problems, both in the second half: Stripe's payout of 23 October never arrives, and
  Shopify's of 20 October arrives one cent short (so the books agree with the first
  statement's closing balance and not with the second's);
- one Gusto payroll run for two employees (check date 30 October).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

ZONE = ZoneInfo("America/New_York")
CURRENCY = "USD"
MONTH = "2026-10"
MONTH_END = date(2026, 10, 31)
STRIPE = "stripe:acct_demo"
SHOPIFY = "shopify:acme-store"
BANK = "bank:checking"
PAYROLL = "payroll:gusto"
TAX_RATE = Decimal("0.08875")
SHIPPING = Decimal("6.95")
FREE_SHIPPING_FROM = Decimal("75.00")
CENT = Decimal("0.01")

PRODUCTS = {
    "SEN-100": ("Sencha 100 g", Decimal("18.00")),
    "EG-250": ("Earl Grey 250 g", Decimal("24.00")),
    "POT-1": ("Cast iron teapot", Decimal("45.00")),
    "MAT-30": ("Ceremonial matcha 30 g", Decimal("32.00")),
    "WSK-1": ("Bamboo matcha whisk", Decimal("12.00")),
}
CUSTOMERS = [
    ("Ava", "Patel"), ("Ben", "Okafor"), ("Chloe", "Martin"), ("Diego", "Reyes"),
    ("Emma", "Larsen"), ("Farid", "Haddad"), ("Grace", "Kim"),
]  # fmt: skip


@dataclass(frozen=True)
class OrderSpec:
    """One order of the month."""

    number: int
    day: int
    at: str
    items: tuple[tuple[str, int], ...]
    gateway: str
    discount: tuple[str, Decimal] | None = None


ORDERS = (
    OrderSpec(1001, 1, "10:12", (("SEN-100", 2),), "shopify_payments"),
    OrderSpec(1002, 2, "14:40", (("POT-1", 1), ("EG-250", 1)), "shopify_payments"),
    OrderSpec(1003, 3, "09:05", (("EG-250", 2), ("WSK-1", 1)), "shopify_payments"),
    OrderSpec(1004, 5, "19:30", (("SEN-100", 1), ("MAT-30", 1)), "stripe"),
    OrderSpec(1005, 7, "11:00", (("POT-1", 2),), "shopify_payments", ("WELCOME10", Decimal(10))),
    OrderSpec(1006, 9, "21:15", (("EG-250", 1),), "stripe"),  # 01:15 UTC on the 10th
    OrderSpec(1007, 11, "08:20", (("SEN-100", 3),), "shopify_payments"),
    OrderSpec(1008, 14, "16:45", (("MAT-30", 2), ("WSK-1", 1)), "stripe"),
    OrderSpec(1009, 16, "13:10", (("POT-1", 1), ("SEN-100", 2)), "shopify_payments"),
    OrderSpec(1010, 19, "10:00", (("EG-250", 3),), "shopify_payments", ("AUTUMN", Decimal(10))),
    OrderSpec(1011, 21, "15:30", (("MAT-30", 1),), "stripe"),
    OrderSpec(1012, 23, "12:00", (("SEN-100", 2), ("EG-250", 1)), "shopify_payments"),
    OrderSpec(1013, 24, "18:05", (("POT-1", 2), ("EG-250", 2)), "stripe"),
    OrderSpec(1014, 26, "09:45", (("WSK-1", 2), ("SEN-100", 1)), "shopify_payments"),
)
SHOPIFY_REFUND = (1003, 12, "WSK-1")
"""Order 1003's whisk comes back on 12 October (refunded through Shopify Payments)."""
STRIPE_REFUND = (1006, 16)
"""Order 1006 is refunded in full through Stripe on 16 October."""
DISPUTE = (1008, 21, 27)
"""Order 1008's card payment is disputed on 21 October (funds withdrawn) and lost on the 27th."""
DISPUTE_FEE = Decimal("15.00")
RESERVES = ((7, Decimal("-100.00")), (21, Decimal("60.00")))
SHOPIFY_PAYOUTS = ((6, 4), (13, 11), (20, 18), (27, 25), (29, 27))
"""(arrival day, last day of activity it settles) of each Shopify Payments payout."""
STRIPE_PAYOUTS = ((9, 6), (16, 13), (23, 20), (30, 27))
MISSING_PAYOUT = "po_demo_1023"
"""Stripe's payout of 23 October: no deposit on the statement."""
SHORT_PAYOUT = "90020"
"""Shopify's payout of 20 October: deposited one cent short."""
STATEMENTS = ((1, 15), (16, 31))
"""The days of October each of the checking account's statements covers."""


def _day(day: int, at: str = "12:00") -> datetime:
    hour, minute = (int(part) for part in at.split(":"))
    return datetime.combine(date(2026, 10, day), time(hour, minute), ZONE)


def _money(amount: Decimal) -> str:
    return str(amount.quantize(CENT))


def _cents(amount: Decimal) -> int:
    return int((amount * 100).to_integral_value())


def _fee(amount: Decimal) -> Decimal:
    return (amount * Decimal("0.029") + Decimal("0.30")).quantize(CENT, ROUND_HALF_UP)


def _tax(amount: Decimal) -> Decimal:
    return (amount * TAX_RATE).quantize(CENT, ROUND_HALF_UP)


def _unix(when: datetime) -> int:
    return int(when.timestamp())


@dataclass(frozen=True)
class Webhook:
    """One provider delivery: Stripe's event object, or a Shopify topic and body."""

    connector: str
    name: str
    body: dict[str, Any]
    topic: str = ""
    event_id: str = ""
    triggered_at: str = ""


@dataclass(frozen=True)
class Pushed:
    """An event pushed through ``POST /v1/events`` (what a pull would store)."""

    source: str
    external_id: str
    type: str
    occurred_at: str
    data: dict[str, Any]

    def json(self) -> dict[str, Any]:
        """The ``EventIn`` of the batch API."""
        return {
            "source": self.source,
            "external_id": self.external_id,
            "type": self.type,
            "occurred_at": self.occurred_at,
            "data": self.data,
        }


@dataclass(frozen=True)
class BankEntry:
    """One statement line."""

    day: int
    amount: Decimal
    name: str
    memo: str = ""


@dataclass
class Month:
    """The month's deliveries, in the order they go out."""

    webhooks: list[Webhook] = field(default_factory=list)
    pushed: list[Pushed] = field(default_factory=list)
    bank: list[BankEntry] = field(default_factory=list)
    payouts: dict[str, Decimal] = field(default_factory=dict)
    """Payout id → amount."""

    @property
    def closing_balance(self) -> Decimal:
        """The month's closing balance (the last statement's ``LEDGERBAL``; the account opens
        at zero)."""
        return self.balance_after(MONTH_END.day)

    def balance_after(self, last: int) -> Decimal:
        """The account's balance at the end of October ``last`` (it opens at zero)."""
        return sum((line.amount for line in self.bank if line.day <= last), Decimal(0))

    def ofx(self, first: int = 1, last: int = MONTH_END.day) -> bytes:
        """The checking account's statement of October ``first`` to ``last`` (OFX 1.02, SGML),
        closing at the balance after ``last``; a line's FITID is the same in any statement."""
        lines = sorted(self.bank, key=lambda b: b.day)
        return _ofx(lines, first, last, self.balance_after(last))

    def statements(self) -> list[tuple[str, bytes]]:
        """The month's statements (``STATEMENTS``): file name and OFX text."""
        return [
            (f"checking-{MONTH}-{first:02d}-{last:02d}.ofx", self.ofx(first, last))
            for first, last in STATEMENTS
        ]


@dataclass
class _Order:
    spec: OrderSpec
    id: int
    when: datetime
    lines: list[dict[str, Any]]
    subtotal: Decimal
    discount: Decimal
    shipping: Decimal
    tax: Decimal
    total: Decimal
    customer: tuple[str, str]


def _order(spec: OrderSpec, index: int) -> _Order:
    lines, subtotal = [], Decimal(0)
    for n, (sku, quantity) in enumerate(spec.items):
        name, price = PRODUCTS[sku]
        subtotal += price * quantity
        lines.append({"id": spec.number * 10 + n, "sku": sku, "title": name, "name": name,
                      "quantity": quantity, "price": _money(price)})  # fmt: skip
    discount = spec.discount[1] if spec.discount else Decimal(0)
    goods = subtotal - discount
    shipping = Decimal(0) if goods >= FREE_SHIPPING_FROM else SHIPPING
    tax = _tax(goods)
    return _Order(spec, 5_550_000 + spec.number, _day(spec.day, spec.at), lines, subtotal,
                  discount, shipping, tax, goods + shipping + tax,
                  CUSTOMERS[index % len(CUSTOMERS)])  # fmt: skip


def _shopify_order(order: _Order) -> dict[str, Any]:
    first, last = order.customer
    stamp = order.when.isoformat()
    return {
        "id": order.id,
        "name": f"#{order.spec.number}",
        "order_number": order.spec.number,
        "email": f"{first.lower()}.{last.lower()}@example.com",
        "created_at": stamp,
        "updated_at": stamp,
        "processed_at": stamp,
        "currency": CURRENCY,
        "financial_status": "paid",
        "fulfillment_status": None,
        "gateway": order.spec.gateway,
        "payment_gateway_names": [order.spec.gateway],
        "taxes_included": False,
        "test": False,
        "total_line_items_price": _money(order.subtotal),
        "total_discounts": _money(order.discount),
        "subtotal_price": _money(order.subtotal - order.discount),
        "total_tax": _money(order.tax),
        "total_price": _money(order.total),
        "discount_codes": (
            [
                {
                    "code": order.spec.discount[0],
                    "amount": _money(order.discount),
                    "type": "fixed_amount",
                }
            ]
            if order.spec.discount
            else []
        ),
        "line_items": order.lines,
        "shipping_lines": (
            [{"title": "Standard", "code": "Standard", "price": _money(order.shipping)}]
            if order.shipping
            else []
        ),
        "tax_lines": [
            {"title": "NY State Tax", "rate": float(TAX_RATE), "price": _money(order.tax)}
        ],
        "customer": {
            "id": 9_000 + hash_name(first),
            "first_name": first,
            "last_name": last,
            "email": f"{first.lower()}.{last.lower()}@example.com",
        },
    }


def hash_name(name: str) -> int:
    """A small stable number for a name (customer ids)."""
    return sum(ord(c) for c in name)


def _shopify_tx(
    tx_id: int, kind: str, when: datetime, amount: Decimal, fee: Decimal, payout: str,
    order_id: int | None = None,
) -> Pushed:  # fmt: skip
    body = {
        "id": tx_id,
        "type": kind,
        "test": False,
        "payout_id": int(payout),
        "payout_status": "paid",
        "currency": CURRENCY,
        "amount": _money(amount),
        "fee": _money(fee),
        "net": _money(amount - fee),
        "source_id": tx_id,
        "source_type": {"charge": "charge", "refund": "Payments::Refund"}.get(kind, kind),
        "source_order_id": order_id,
        "source_order_transaction_id": None,
        "processed_at": when.isoformat(),
    }
    return Pushed(SHOPIFY, f"tx-{tx_id}", "shopify.balance_transaction", when.isoformat(), body)


def _stripe_event(kind: str, obj: dict[str, Any], when: datetime, suffix: str = "") -> Webhook:
    event_id = f"evt_{obj['id']}{suffix}"
    body = {
        "id": event_id,
        "object": "event",
        "api_version": "2024-06-20",
        "created": _unix(when),
        "livemode": False,
        "pending_webhooks": 1,
        "type": kind,
        "data": {"object": obj},
    }
    return Webhook("stripe", "acct_demo", body)


def _stripe_bt(
    bt_id: str, kind: str, category: str, when: datetime, amount: Decimal, fee: Decimal,
    source: str, payout: str,
) -> Pushed:  # fmt: skip
    bt = {
        "id": bt_id,
        "object": "balance_transaction",
        "amount": _cents(amount),
        "available_on": _unix(when + timedelta(days=2)),
        "created": _unix(when),
        "currency": "usd",
        "description": None,
        "exchange_rate": None,
        "fee": _cents(fee),
        "fee_details": (
            [
                {
                    "amount": _cents(fee),
                    "currency": "usd",
                    "description": "Stripe processing fees",
                    "type": "stripe_fee",
                }
            ]
            if fee
            else []
        ),
        "net": _cents(amount - fee),
        "reporting_category": category,
        "source": source,
        "status": "available",
        "type": kind,
    }
    return Pushed(STRIPE, bt_id, "stripe.balance_transaction", when.astimezone(UTC).isoformat(),
                  {"data": {"object": bt}, "payout": payout})  # fmt: skip


def _payout_for(day: date, schedule: tuple[tuple[int, int], ...]) -> int:
    """The arrival day of the payout that settles activity of ``day``."""
    return next(arrival for arrival, last in schedule if day.day <= last)


def build_month() -> Month:
    """The month's deliveries (the same every time)."""
    month = Month()
    orders = {spec.number: _order(spec, i) for i, spec in enumerate(ORDERS)}
    shopify_net: dict[int, Decimal] = {}
    shopify_summary: dict[int, dict[str, Decimal]] = {}
    stripe_net: dict[int, Decimal] = {}

    def shopify_payout(day: date) -> str:
        return f"900{_payout_for(day, SHOPIFY_PAYOUTS):02d}"

    def stripe_payout(day: date) -> str:
        return f"po_demo_10{_payout_for(day, STRIPE_PAYOUTS):02d}"

    def add_shopify(pushed: Pushed, summary: str) -> None:
        arrival = int(str(pushed.data["payout_id"])[-2:])
        amount, net = Decimal(pushed.data["amount"]), Decimal(pushed.data["net"])
        shopify_net[arrival] = shopify_net.get(arrival, Decimal(0)) + net
        parts = shopify_summary.setdefault(arrival, {})
        parts[f"{summary}_gross_amount"] = parts.get(f"{summary}_gross_amount", Decimal(0)) + amount
        parts[f"{summary}_fee_amount"] = parts.get(f"{summary}_fee_amount", Decimal(0)) + (
            amount - net
        )
        month.pushed.append(pushed)

    tx = 700_000
    for order in orders.values():
        month.webhooks.append(
            Webhook(
                "shopify",
                "acme-store",
                _shopify_order(order),
                "orders/paid",
                f"orders-paid-{order.id}",
                order.when.isoformat(),
            )
        )
        on = order.when.date()
        if order.spec.gateway == "shopify_payments":
            tx += 1
            add_shopify(
                _shopify_tx(tx, "charge", order.when, order.total, _fee(order.total),
                            shopify_payout(on), order.id),
                "charges",
            )  # fmt: skip
            continue
        charge_id = f"ch_demo_{order.spec.number}"
        fee = _fee(order.total)
        charge = {
            "id": charge_id,
            "object": "charge",
            "amount": _cents(order.total),
            "amount_captured": _cents(order.total),
            "amount_refunded": 0,
            "balance_transaction": f"txn_{charge_id}",
            "billing_details": {"name": " ".join(order.customer)},
            "captured": True,
            "created": _unix(order.when),
            "currency": "usd",
            "description": f"Shopify order #{order.spec.number}",
            "disputed": False,
            "livemode": False,
            "metadata": {"order_id": str(order.id), "order_name": f"#{order.spec.number}"},
            "paid": True,
            "refunded": False,
            "status": "succeeded",
        }
        month.webhooks.append(_stripe_event("charge.succeeded", charge, order.when))
        payout = stripe_payout(on)
        month.pushed.append(_stripe_bt(f"txn_{charge_id}", "charge", "charge", order.when,
                                       order.total, fee, charge_id, payout))  # fmt: skip
        stripe_net[int(payout[-2:])] = stripe_net.get(int(payout[-2:]), Decimal(0)) + (
            order.total - fee
        )

    # the whisk of order 1003 comes back: the shop's refund and the processor's
    number, day, sku = SHOPIFY_REFUND
    order = orders[number]
    when = _day(day, "11:30")
    line = next(item for item in order.lines if item["sku"] == sku)
    goods = Decimal(line["price"])
    refunded_tax = _tax(goods)
    back = goods + refunded_tax
    tx += 1
    month.webhooks.append(
        Webhook(
            "shopify", "acme-store",
            {
                "id": 880_000 + number,
                "order_id": order.id,
                "created_at": when.isoformat(),
                "processed_at": when.isoformat(),
                "note": "returned unused",
                "restock": True,
                "refund_line_items": [{"id": 1, "quantity": 1, "line_item_id": line["id"],
                                       "subtotal": _money(goods),
                                       "total_tax": _money(refunded_tax)}],
                "order_adjustments": [],
                "transactions": [{"id": tx, "order_id": order.id, "kind": "refund",
                                  "gateway": "shopify_payments", "status": "success",
                                  "amount": _money(back), "currency": CURRENCY}],
            },
            "refunds/create", f"refunds-create-{880_000 + number}", when.isoformat(),
        )
    )  # fmt: skip
    add_shopify(
        _shopify_tx(tx, "refund", when, -back, Decimal(0), shopify_payout(when.date()), order.id),
        "refunds",
    )

    # order 1006 refunded in full through Stripe
    number, day = STRIPE_REFUND
    order, when = orders[number], _day(day, "10:05")
    refund: dict[str, Any] = {
        "id": f"re_demo_{number}",
        "object": "refund",
        "amount": _cents(order.total),
        "balance_transaction": f"txn_re_demo_{number}",
        "charge": f"ch_demo_{number}",
        "created": _unix(when),
        "currency": "usd",
        "metadata": {"order_id": str(order.id)},
        "reason": "requested_by_customer",
        "status": "succeeded",
    }
    month.webhooks.append(_stripe_event("refund.created", refund, when))
    payout = stripe_payout(when.date())
    month.pushed.append(_stripe_bt(f"txn_re_demo_{number}", "refund", "refund", when,
                                   -order.total, Decimal(0), refund["id"], payout))  # fmt: skip
    stripe_net[int(payout[-2:])] -= order.total

    # order 1008's payment disputed and lost
    number, opened, closed = DISPUTE
    order, when = orders[number], _day(opened, "09:00")
    bt_id = f"txn_dp_demo_{number}"
    withdrawn = _stripe_bt(bt_id, "adjustment", "dispute", when, -order.total, DISPUTE_FEE,
                           f"dp_demo_{number}", stripe_payout(when.date()))  # fmt: skip
    dispute: dict[str, Any] = {
        "id": f"dp_demo_{number}",
        "object": "dispute",
        "amount": _cents(order.total),
        "balance_transactions": [withdrawn.data["data"]["object"]],
        "charge": f"ch_demo_{number}",
        "created": _unix(when),
        "currency": "usd",
        "reason": "fraudulent",
        "status": "needs_response",
        "is_charge_refundable": False,
    }
    month.webhooks.append(
        _stripe_event("charge.dispute.funds_withdrawn", dispute, when, "_withdrawn")
    )
    lost = {**dispute, "status": "lost"}
    month.webhooks.append(
        _stripe_event("charge.dispute.closed", lost, _day(closed, "16:00"), "_closed")
    )
    payout = stripe_payout(when.date())
    month.pushed.append(withdrawn)
    stripe_net[int(payout[-2:])] -= order.total + DISPUTE_FEE

    # Shopify Payments holds a reserve and releases part of it
    for day, amount in RESERVES:
        tx += 1
        when = _day(day, "06:00")
        add_shopify(
            _shopify_tx(tx, "reserve", when, amount, Decimal(0), shopify_payout(when.date())),
            "reserved_funds",
        )

    # payouts: Shopify Payments
    for arrival, _ in SHOPIFY_PAYOUTS:
        payout_id = f"900{arrival:02d}"
        amount = shopify_net[arrival]
        summary = {
            key: _money(shopify_summary[arrival].get(key, Decimal(0)))
            for key in (
                "adjustments_fee_amount", "adjustments_gross_amount", "charges_fee_amount",
                "charges_gross_amount", "refunds_fee_amount", "refunds_gross_amount",
                "reserved_funds_fee_amount", "reserved_funds_gross_amount",
                "retried_payouts_fee_amount", "retried_payouts_gross_amount",
            )
        }  # fmt: skip
        body = {"id": int(payout_id), "status": "paid", "date": f"2026-10-{arrival:02d}",
                "currency": CURRENCY, "amount": _money(amount), "summary": summary}  # fmt: skip
        month.pushed.append(Pushed(SHOPIFY, f"payout-{payout_id}:paid", "shopify.payout",
                                   _day(arrival, "00:00").isoformat(), body))  # fmt: skip
        month.payouts[payout_id] = amount
        deposit = amount - CENT if payout_id == SHORT_PAYOUT else amount
        month.bank.append(BankEntry(arrival, deposit, "SHOPIFY PAYMENTS", f"PAYOUT {payout_id}"))

    # payouts: Stripe
    for arrival, _ in STRIPE_PAYOUTS:
        payout_id = f"po_demo_10{arrival:02d}"
        amount = stripe_net[arrival]
        created = _day(arrival - 2, "20:00")
        obj = {
            "id": payout_id,
            "object": "payout",
            "amount": _cents(amount),
            "arrival_date": _unix(datetime.combine(date(2026, 10, arrival), time(), UTC)),
            "automatic": True,
            "created": _unix(created),
            "currency": "usd",
            "method": "standard",
            "statement_descriptor": "ACME TEA",
            "status": "paid",
            "type": "bank_account",
        }
        month.webhooks.append(_stripe_event("payout.paid", obj, created, "_paid"))
        month.payouts[payout_id] = amount
        if payout_id != MISSING_PAYOUT:
            month.bank.append(BankEntry(arrival, amount, "STRIPE TRANSFER", f"ST-{payout_id}"))

    payroll = _payroll()
    month.pushed.append(payroll)
    totals = payroll.data["totals"]
    month.bank += [
        BankEntry(1, Decimal("10000.00"), "OWNER CAPITAL CONTRIBUTION", "FROM SAVINGS"),
        BankEntry(1, Decimal("-1200.00"), "MAPLE STREET PROPERTIES", "RENT OCTOBER"),
        BankEntry(5, Decimal("-84.60"), "USPS POSTAGE", "CLICK-N-SHIP"),
        BankEntry(8, Decimal("-14.40"), "GOOGLE WORKSPACE", "GSUITE"),
        BankEntry(14, Decimal("-96.31"), "CON EDISON", "ELECTRIC"),
        BankEntry(22, Decimal("-1850.00"), "HIGHLAND TEA IMPORTERS", "INV 4471"),
        BankEntry(30, -Decimal(totals["net_pay"]), "GUSTO NET PAY", "PAYROLL 2026-10"),
        BankEntry(
            30,
            -(Decimal(totals["employee_taxes"]) + Decimal(totals["employer_taxes"])
              + Decimal(totals["deductions"])),
            "GUSTO TAX", "TAXES AND 401K 2026-10",
        ),
    ]  # fmt: skip
    for payout_id, amount in month.payouts.items():
        if amount <= 0:
            raise AssertionError(f"payout {payout_id} would be {amount}")  # a broken story
    return month


def _payroll() -> Pushed:
    """One Gusto payroll (check date 30 October) for two employees."""
    staff = [
        ("e1f0c3a2", "Maya Chen", Decimal("2400.00"), Decimal("216.00"), Decimal("112.00"),
         Decimal("72.00")),
        ("b7d4e9f1", "Sam Ortiz", Decimal("1600.00"), Decimal("104.00"), Decimal("68.00"),
         Decimal("0")),
    ]  # fmt: skip
    comps, sums = (
        [],
        dict.fromkeys(
            ("gross_pay", "net_pay", "employee_taxes", "employer_taxes", "deductions"), Decimal(0)
        ),
    )
    for uuid, name, gross, federal, state, retirement in staff:
        ss, medicare, futa, sui = (
            (gross * Decimal(rate)).quantize(CENT)
            for rate in ("0.062", "0.0145", "0.006", "0.0405")
        )
        employee_taxes = federal + state + ss + medicare
        employer_taxes = ss + medicare + futa + sui
        net = gross - employee_taxes - retirement
        comps.append({
            "employee_uuid": uuid,
            "employee_name": name,
            "gross_pay": _money(gross),
            "net_pay": _money(net),
            "taxes": [
                {"name": "Federal Income Tax", "employer": False, "amount": _money(federal)},
                {"name": "NY Withholding Tax", "employer": False, "amount": _money(state)},
                {"name": "Social Security", "employer": False, "amount": _money(ss)},
                {"name": "Medicare", "employer": False, "amount": _money(medicare)},
                {"name": "Social Security", "employer": True, "amount": _money(ss)},
                {"name": "Medicare", "employer": True, "amount": _money(medicare)},
                {"name": "FUTA", "employer": True, "amount": _money(futa)},
                {"name": "NY SUI", "employer": True, "amount": _money(sui)},
            ],
            "benefits": [{"name": "401(k)", "employee_deduction": _money(retirement),
                          "company_contribution": "0.00"}] if retirement else [],
            "deductions": [],
        })  # fmt: skip
        for key, value in (("gross_pay", gross), ("net_pay", net), ("deductions", retirement),
                           ("employee_taxes", employee_taxes),
                           ("employer_taxes", employer_taxes)):  # fmt: skip
            sums[key] += value
    body = {
        "payroll_uuid": "gusto-2026-10",
        "currency": CURRENCY,
        "check_date": "2026-10-30",
        "processed": True,
        "pay_period": {"start_date": "2026-10-01", "end_date": "2026-10-31"},
        "totals": {key: _money(value) for key, value in sums.items()},
        "employee_compensations": comps,
    }
    return Pushed(PAYROLL, "gusto-2026-10", "payroll.run", _day(28, "15:00").isoformat(), body)


def _ofx(lines: list[BankEntry], first: int, last: int, closing: Decimal) -> bytes:
    """An OFX 1.02 statement of the ``lines`` of October ``first`` to ``last`` (numbered among
    all of ``lines``), closing at ``closing``."""
    rows = []
    for n, line in enumerate(lines, start=1):
        if not first <= line.day <= last:
            continue
        rows.append(
            "<STMTTRN>\n"
            f"<TRNTYPE>{'CREDIT' if line.amount > 0 else 'DEBIT'}\n"
            f"<DTPOSTED>202610{line.day:02d}120000.000[-4:EDT]\n"
            f"<TRNAMT>{_money(line.amount)}\n"
            f"<FITID>202610{line.day:02d}{n:03d}\n"
            f"<NAME>{line.name}\n"
            f"<MEMO>{line.memo}\n"
            "</STMTTRN>"
        )
    head = (
        "OFXHEADER:100\nDATA:OFXSGML\nVERSION:102\nSECURITY:NONE\nENCODING:USASCII\n"
        "CHARSET:1252\nCOMPRESSION:NONE\nOLDFILEUID:NONE\nNEWFILEUID:NONE\n\n"
    )
    body = (
        "<OFX>\n<SIGNONMSGSRSV1>\n<SONRS>\n<STATUS>\n<CODE>0\n<SEVERITY>INFO\n</STATUS>\n"
        "<DTSERVER>20261101080000.000[-4:EDT]\n<LANGUAGE>ENG\n</SONRS>\n</SIGNONMSGSRSV1>\n"
        "<BANKMSGSRSV1>\n<STMTTRNRS>\n<TRNUID>1\n<STATUS>\n<CODE>0\n<SEVERITY>INFO\n</STATUS>\n"
        "<STMTRS>\n<CURDEF>USD\n<BANKACCTFROM>\n<BANKID>021000021\n<ACCTID>000123456789\n"
        "<ACCTTYPE>CHECKING\n</BANKACCTFROM>\n<BANKTRANLIST>\n"
        f"<DTSTART>202610{first:02d}000000.000[-4:EDT]\n"
        f"<DTEND>202610{last:02d}235959.000[-4:EDT]\n"
        + "\n".join(rows)
        + "\n</BANKTRANLIST>\n<LEDGERBAL>\n"
        f"<BALAMT>{_money(closing)}\n<DTASOF>202610{last:02d}235959.000[-4:EDT]\n"
        "</LEDGERBAL>\n</STMTRS>\n</STMTTRNRS>\n</BANKMSGSRSV1>\n</OFX>\n"
    )
    return (head + body).encode("ascii")
