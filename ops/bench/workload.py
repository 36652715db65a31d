"""A realistic, seeded event log for several small businesses, for the rebuild benchmark.

Each tenant has four connections, and its events are built on the shapes the connectors ship in
their ``samples.json`` (the Stripe objects of Stripe's OpenAPI fixtures, Shopify's Admin API
fixtures, ``ledgerhub import bank`` lines, a Gusto-style payroll), each copied and filled in:

- ``shopify:<tenant>-store``: orders (``shopify.orders.create``, then ``.paid``, often
  ``.fulfilled`` one to three days later) with line items from a small catalogue, discount codes,
  shipping, tax lines (added, or included for the EUR tenant); refunds (``shopify.refunds.create``)
  days later. Half the tenants take their shop's payments through Shopify Payments: each order's
  charge and each refund is a ``shopify.balance_transaction`` naming its ``payout_id`` and
  ``source_order_id``, pulled with the daily ``shopify.payout`` (its ``summary`` adds up).
- ``stripe:acct_<tenant>``: for the other tenants the shop's orders are paid through Stripe (a
  ``charge.succeeded`` whose ``metadata.order_id`` names the order, refunds with
  ``refund.created`` and sometimes ``charge.refunded`` too, disputes with ``.created``,
  ``.funds_withdrawn`` and, when won, ``.funds_reinstated``); every tenant also has direct
  charges naming no order (invoices, subscriptions) and new customers. Each business day a
  payout settles every balance transaction since the last one: the balance transactions are
  pulled with it (``stripe.balance_transaction`` wrapped with its ``payout``; Stripe's fee of
  2.9 % + 30 cents, 15.00 per dispute), then ``payout.created`` and, at the arrival date two
  business days later, ``payout.paid``.
- ``bank:<tenant>-checking``: the daily statement import, logged the morning after: a deposit
  per payout (about one in eight a business day late, about one in fifty never), card spending,
  monthly rent and software, an occasional check deposit, a few card charges listed twice, the
  payroll's net pay and tax debits.
- ``payroll:<tenant>-payroll``: a payroll run every other Friday (``payroll.run``), each
  employee's taxes, benefits and net pay adding up to the stated totals.

Money is integer minor units (decimal strings where the provider sends them, as it sends them);
every timestamp is aware, in the tenant's time zone where the provider says so. The log is
generated day by day from one seed, so the same arguments give the same log (event ids
included); its length is exactly what is asked (the last day is cut there).

``Workload.config_toml`` is the ``LEDGERHUB_CONFIG`` for the tenants and connections: time
zone, currency, sync target (Beancount, per transaction or per payout), chart additions and bank
rules (payout deposits and the payroll's net pay are ignored: the payout and the run book them).
"""

from __future__ import annotations

import itertools
import random
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from hub.domain.events import NewEvent
from hub.store import EventStore

BATCH = 1000
"""Events per ``EventStore.append`` call."""

START = date(2024, 1, 1)
"""The first day of the generated history (a Monday)."""

_NAMES = ("acme", "birch", "cobalt", "dune", "ember", "fjord", "garnet", "harbor")
_ZONES = (
    "America/New_York", "America/Chicago", "America/Toronto", "America/Los_Angeles",
    "Europe/Berlin", "America/Denver", "America/Phoenix", "America/New_York",
)  # fmt: skip
_CURRENCIES = ("USD", "USD", "CAD", "USD", "EUR", "USD", "USD", "USD")
_TAX = (("State Tax", 625), ("State Tax", 800), ("HST", 1300), ("State Tax", 725),
        ("MwSt", 1900), ("State Tax", 290), ("State Tax", 560), ("State Tax", 400))  # fmt: skip
"""Per tenant: the tax line's title and its rate in basis points."""

_PRODUCTS = ("Canvas Tote", "Enamel Mug", "Linen Apron", "Beeswax Candle", "Field Notebook",
             "Wool Beanie", "Ceramic Planter", "Leather Keyring", "Cotton Tee", "Glass Carafe",
             "Oak Coaster Set", "Brass Bottle Opener")  # fmt: skip
_FIRST = ("Alex", "Sam", "Jordan", "Riley", "Casey", "Morgan", "Taylor", "Jamie", "Avery", "Quinn")
_LAST = ("Rivera", "Lee", "Nguyen", "Smith", "Garcia", "Muller", "Kowalski", "Okafor", "Tanaka")
_CARD = ("AMZN MKTP US", "UBER *TRIP", "STAPLES 0042", "SHELL OIL 5744", "USPS PO 1107",
         "HOME DEPOT #6012", "COSTCO WHSE #0118", "FEDEX 78123")  # fmt: skip
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

STRIPE_FEE_BP, STRIPE_FEE_FIXED, DISPUTE_FEE = 290, 30, 1500
SHOPIFY_FEE_BP, SHOPIFY_FEE_FIXED = 260, 30


def _templates(connector: str) -> dict[str, bytes]:
    """The first shipped sample's ``data`` of each event type, serialized (copy: ``loads``)."""
    text = resources.files(f"connectors.{connector}").joinpath("samples.json").read_bytes()
    found: dict[str, bytes] = {}
    for item in orjson.loads(text)["events"]:
        found.setdefault(item["type"], orjson.dumps(item["data"]))
    return found


def _money(minor: int) -> str:
    """Minor units as the decimal string Shopify and Gusto send (two decimals)."""
    sign = "-" if minor < 0 else ""
    return f"{sign}{abs(minor) // 100}.{abs(minor) % 100:02d}"


def _fee(amount: int, bp: int, fixed: int) -> int:
    return (amount * bp + 5000) // 10000 + fixed


def business_day(day: date) -> bool:
    """Monday to Friday."""
    return day.weekday() < 5


def add_business_days(day: date, n: int) -> date:
    """``day`` moved ``n`` business days (Monday to Friday) later."""
    while n > 0:
        day += timedelta(days=1)
        if business_day(day):
            n -= 1
    return day


@dataclass(frozen=True)
class Tenant:
    """One business: its books' settings and how busy it is."""

    name: str
    timezone: str
    currency: str
    mode: str
    """The accounting sync mode: ``per_transaction`` or ``per_payout``."""
    shop_gateway: str
    """``stripe`` (orders paid through Stripe) or ``shopify_payments``."""
    orders_per_day: int
    direct_charges_per_day: int
    employees: int
    tax_title: str
    tax_bp: int

    @property
    def zone(self) -> ZoneInfo:
        """The tenant's time zone."""
        return ZoneInfo(self.timezone)

    @property
    def taxes_included(self) -> bool:
        """Prices include tax (the EUR shop), else tax is added."""
        return self.currency == "EUR"

    @property
    def stripe(self) -> str:
        """The Stripe connection's id (the events' ``source``)."""
        return f"stripe:acct_{self.name}"

    @property
    def shopify(self) -> str:
        """The Shopify connection's id."""
        return f"shopify:{self.name}-store"

    @property
    def bank(self) -> str:
        """The bank connection's id."""
        return f"bank:{self.name}-checking"

    @property
    def payroll(self) -> str:
        """The payroll connection's id."""
        return f"payroll:{self.name}-payroll"


@dataclass(order=True)
class _Item:
    """An event with the time it reaches the log (``logged``) and a tie-breaking sequence."""

    logged: datetime
    seq: int
    event: NewEvent = field(compare=False)


@dataclass
class _Order:
    order_id: int
    number: str
    total: int
    tax: int
    lines: list[tuple[str, str, int, int]]
    """(sku, title, unit price, quantity)."""
    charge: str | None
    created: datetime
    line_ids: list[int]


class _Books:
    """One tenant's running state while its history is generated."""

    def __init__(self, tenant: Tenant, seed: int, index: int) -> None:
        self.t = tenant
        self.rng = random.Random(f"{seed}:{tenant.name}")
        self.index = index
        self.seq = itertools.count(1)
        self.later: dict[date, list[tuple[str, Any]]] = {}
        self.stripe_pending: list[dict[str, Any]] = []
        self.shopify_pending: list[dict[str, Any]] = []
        self.payout_no = 0
        self.fitid = itertools.count(1)
        self.order_no = 1000
        self.customers: list[str] = []
        rng = self.rng
        self.catalogue = [
            (f"{tenant.name[:3].upper()}-{i:03}", name, rng.randrange(800, 9000, 50))
            for i, name in enumerate(_PRODUCTS)
        ]
        self.salaries = [
            rng.randrange(3_800_000, 11_000_000, 10_000) for _ in range(tenant.employees)
        ]
        self.staff = [
            (str(uuid.UUID(int=rng.getrandbits(128), version=4)),
             f"{rng.choice(_FIRST)} {rng.choice(_LAST)}")
            for _ in range(tenant.employees)
        ]  # fmt: skip
        self.rent = rng.randrange(180_000, 650_000, 5_000)

    # ----------------------------------------------------------------- ids and times
    def sid(self, prefix: str, length: int = 24) -> str:
        """A Stripe-looking id (``ch_3Pq…``), drawn from the tenant's generator."""
        return prefix + "".join(self.rng.choice(_BASE62) for _ in range(length))

    def num(self) -> int:
        """A Shopify-looking numeric id, unique within the run."""
        return 5_000_000_000 + self.index * 100_000_000 + next(self.seq)

    def at(self, day: date, hour: int, minute: int = 0, second: int = 0) -> datetime:
        """An aware time on ``day`` in the tenant's zone."""
        return datetime.combine(day, clock(hour, minute, second), self.t.zone)

    def later_on(self, day: date, kind: str, what: Any) -> None:
        self.later.setdefault(day, []).append((kind, what))

    def new(
        self, source: str, external_id: str, kind: str, data: dict[str, Any], at: datetime
    ) -> NewEvent:
        return NewEvent(
            tenant=self.t.name,
            source=source,
            external_id=external_id,
            type=kind,
            occurred_at=at,
            data=data,
        )


class Generator:
    """Builds each tenant's events day by day; the templates are the connectors' samples."""

    def __init__(self, tenants: Iterable[Tenant], seed: int) -> None:
        self.stripe = _templates("stripe")
        self.shopify = _templates("shopify")
        self.bank_t = _templates("bank")
        self.payroll_t = _templates("payroll")
        self.books = [_Books(t, seed, i) for i, t in enumerate(tenants)]
        self._seq = itertools.count()

    def _copy(self, templates: dict[str, bytes], kind: str) -> dict[str, Any]:
        data: dict[str, Any] = orjson.loads(templates[kind])
        return data

    # ----------------------------------------------------------------- the stream
    def events(self, limit: int) -> Iterator[NewEvent]:
        """Exactly ``limit`` events, in the order they would reach the log."""
        produced, day = 0, START
        while True:
            items: list[_Item] = []
            for books in self.books:
                items.extend(self._day(books, day))
            items.sort()
            for item in items:
                if produced >= limit:
                    return
                produced += 1
                yield item.event
            day += timedelta(days=1)

    def _item(self, logged: datetime, event: NewEvent) -> _Item:
        return _Item(logged.astimezone(UTC), next(self._seq), event)

    def _day(self, b: _Books, day: date) -> list[_Item]:
        rng, t = b.rng, b.t
        out: list[_Item] = []
        for kind, what in b.later.pop(day, []):
            out.extend(getattr(self, f"_later_{kind}")(b, day, what))
        weekend = 0.6 if not business_day(day) else 1.0
        for _ in range(max(0, round(rng.gauss(t.orders_per_day * weekend, 3)))):
            out.extend(self._order(b, day))
        for _ in range(max(0, round(rng.gauss(t.direct_charges_per_day * weekend, 1)))):
            out.extend(self._direct_charge(b, day))
        out.extend(self._spending(b, day))
        if day.weekday() == 4 and (day - START).days % 14 == 4:
            out.extend(self._payroll(b, day))
        if business_day(day):
            out.extend(self._stripe_payout(b, day))
            out.extend(self._shopify_payout(b, day))
        return out

    # ----------------------------------------------------------------- shop orders
    def _order(self, b: _Books, day: date) -> list[_Item]:
        rng, t = b.rng, b.t
        created = b.at(day, rng.randrange(7, 23), rng.randrange(60), rng.randrange(60))
        order_id = b.num()
        b.order_no += 1
        picked = rng.sample(b.catalogue, rng.choice((1, 1, 1, 2, 2, 3)))
        lines = [(sku, title, price, rng.choice((1, 1, 1, 2, 3))) for sku, title, price in picked]
        subtotal = sum(price * qty for _, _, price, qty in lines)
        discount = subtotal // 10 if rng.random() < 0.12 else 0
        shipping = rng.choice((0, 0, 599, 999))
        base = subtotal - discount
        if t.taxes_included:
            tax = (base * t.tax_bp + (10000 + t.tax_bp) // 2) // (10000 + t.tax_bp)
            total = base + shipping
        else:
            tax = (base * t.tax_bp + 5000) // 10000
            total = base + shipping + tax
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        order = self._copy(self.shopify, "shopify.orders.create")
        stamp = created.isoformat()
        line_ids = [b.num() for _ in lines]
        gateway = "stripe" if t.shop_gateway == "stripe" else "shopify_payments"
        order.update(
            id=order_id, checkout_id=order_id, name=f"#{b.order_no}", number=b.order_no - 1000,
            order_number=b.order_no, created_at=stamp, updated_at=stamp, currency=t.currency,
            email=f"{first.lower()}.{last.lower()}@example.com", financial_status="paid",
            gateway=gateway, confirmed=True, token=uuid.UUID(int=rng.getrandbits(128)).hex,
            cart_token=uuid.UUID(int=rng.getrandbits(128)).hex, fulfillments=[],
            total_line_items_price=_money(subtotal), subtotal_price=_money(base),
            total_discounts=_money(discount), total_tax=_money(tax), total_price=_money(total),
            total_price_usd=_money(total), taxes_included=t.taxes_included,
            discount_codes=[{"code": "TENOFF", "amount": _money(discount)}] if discount else [],
            shipping_lines=[{"code": "Standard" if shipping else "Free Shipping",
                             "price": _money(shipping), "source": "shopify",
                             "title": "Standard" if shipping else "Free Shipping"}],
            tax_lines=[{"price": _money(tax), "rate": t.tax_bp / 10000, "title": t.tax_title}],
        )  # fmt: skip
        template_line = order["line_items"][0]
        order["line_items"] = [
            {**template_line, "id": line_id, "sku": sku, "title": title, "name": title,
             "price": _money(price), "quantity": qty, "properties": [], "variant_title": None,
             "product_id": 632910392 + int(sku[-3:]), "variant_id": line_id + 1}
            for line_id, (sku, title, price, qty) in zip(line_ids, lines, strict=True)
        ]  # fmt: skip
        customer = dict(order["customer"])
        customer.update(id=b.num(), first_name=first, last_name=last,
                        email=order["email"], created_at=stamp, updated_at=stamp)  # fmt: skip
        order["customer"] = customer
        for address in ("billing_address", "shipping_address"):
            order[address] = {**order[address], "first_name": first, "last_name": last,
                              "name": f"{first} {last}"}  # fmt: skip
        out = [
            self._item(created, b.new(t.shopify, self._uuid(b), "shopify.orders.create",
                                      order, created)),
            self._item(created + timedelta(seconds=4),
                       b.new(t.shopify, self._uuid(b), "shopify.orders.paid", order,
                             created + timedelta(seconds=4))),
        ]  # fmt: skip
        charge_id = None
        if t.shop_gateway == "stripe":
            charge_id = b.sid("ch_3")
            out.extend(self._charge(b, created + timedelta(seconds=2), total, charge_id,
                                    order_id=str(order_id), name=f"{first} {last}",
                                    description=f"Order #{b.order_no}"))  # fmt: skip
        else:
            txn = b.num()
            b.shopify_pending.append(
                {"id": txn, "type": "charge", "amount": total,
                 "fee": _fee(total, SHOPIFY_FEE_BP, SHOPIFY_FEE_FIXED), "source_id": txn,
                 "source_type": "charge", "source_order_id": order_id,
                 "source_order_transaction_id": b.num(), "processed_at": created})  # fmt: skip
        if rng.random() < 0.6:
            b.later_on(day + timedelta(days=rng.choice((1, 1, 2, 3))), "fulfilled", order)
        record = _Order(order_id, f"#{b.order_no}", total, tax, lines, charge_id, created, line_ids)
        if rng.random() < 0.04:
            b.later_on(day + timedelta(days=rng.randrange(2, 21)), "refund", record)
        if charge_id is not None and rng.random() < 0.004:
            b.later_on(day + timedelta(days=rng.randrange(10, 40)), "dispute", record)
        return out

    def _uuid(self, b: _Books) -> str:
        return str(uuid.UUID(int=b.rng.getrandbits(128), version=4))

    def _later_fulfilled(self, b: _Books, day: date, order: dict[str, Any]) -> list[_Item]:
        at = b.at(day, b.rng.randrange(9, 18), b.rng.randrange(60))
        shipped = {**order, "fulfillment_status": "fulfilled", "updated_at": at.isoformat()}
        return [self._item(at, b.new(b.t.shopify, self._uuid(b), "shopify.orders.fulfilled",
                                     shipped, at))]  # fmt: skip

    def _later_refund(self, b: _Books, day: date, order: _Order) -> list[_Item]:
        """A refund of one line (or of the whole order), on the shop and at the processor."""
        rng, t = b.rng, b.t
        at = b.at(day, rng.randrange(9, 18), rng.randrange(60))
        whole = rng.random() < 0.3
        chosen = list(range(len(order.lines))) if whole else [rng.randrange(len(order.lines))]
        subtotal = sum(order.lines[i][2] * order.lines[i][3] for i in chosen)
        gross = sum(price * qty for _, _, price, qty in order.lines)
        tax = order.tax if whole else order.tax * subtotal // max(gross, 1)
        amount = order.total if whole else (subtotal if t.taxes_included else subtotal + tax)
        template = self._copy(self.shopify, "shopify.refunds.create")
        item = template["refund_line_items"][0]
        refund_id = b.num()
        template.update(
            id=refund_id, order_id=order.order_id, created_at=at.isoformat(),
            note=rng.choice(("damaged in transit", "wrong size", "changed mind", None)),
            refund_line_items=[
                {**item, "id": b.num(), "line_item_id": order.line_ids[i],
                 "quantity": order.lines[i][3],
                 "line_item": {**item["line_item"], "id": order.line_ids[i],
                               "sku": order.lines[i][0], "title": order.lines[i][1],
                               "name": order.lines[i][1], "price": _money(order.lines[i][2]),
                               "quantity": order.lines[i][3]},
                 "subtotal": _money(order.lines[i][2] * order.lines[i][3]),
                 "total_tax": _money(tax if k == 0 else 0)}
                for k, i in enumerate(chosen)
            ],
            transactions=[{**template["transactions"][0], "id": b.num(), "order_id":
                           order.order_id, "amount": _money(amount), "currency": t.currency,
                           "gateway": t.shop_gateway, "created_at": at.isoformat()}],
        )  # fmt: skip
        out = [self._item(at, b.new(t.shopify, self._uuid(b), "shopify.refunds.create",
                                    template, at))]  # fmt: skip
        if order.charge is None:
            b.shopify_pending.append(
                {"id": refund_id, "type": "refund", "amount": -amount, "fee": 0,
                 "source_id": refund_id, "source_type": "Payments::Refund",
                 "source_order_id": order.order_id, "source_order_transaction_id": b.num(),
                 "processed_at": at})  # fmt: skip
            return out
        refund = self._copy(self.stripe, "stripe.refund.created")
        obj = refund["data"]["object"]
        created = int(at.timestamp())
        bt = b.sid("txn_3")
        obj.update(id=b.sid("re_3"), amount=amount, charge=order.charge, created=created,
                   currency=t.currency.lower(), balance_transaction=bt, status="succeeded",
                   metadata={"order_id": str(order.order_id)}, payment_intent=None,
                   reason="requested_by_customer")  # fmt: skip
        out.append(self._stripe_event(b, refund, "refund.created", created, at))
        if rng.random() < 0.5:  # Stripe also sends charge.refunded, listing the refund
            charge = self._copy(self.stripe, "stripe.charge.succeeded")
            cobj = charge["data"]["object"]
            cobj.update(id=order.charge, amount=order.total, amount_captured=order.total,
                        amount_refunded=amount, refunded=whole, currency=t.currency.lower(),
                        created=int(order.created.timestamp()),
                        metadata={"order_id": str(order.order_id)},
                        refunds={"object": "list", "data": [obj], "has_more": False,
                                 "url": f"/v1/charges/{order.charge}/refunds"})  # fmt: skip
            later = at + timedelta(seconds=1)
            out.append(self._stripe_event(b, charge, "charge.refunded", created + 1, later))
        b.stripe_pending.append(self._bt(b, bt, obj["id"], -amount, 0, "refund", created))
        return out

    def _later_dispute(self, b: _Books, day: date, order: _Order) -> list[_Item]:
        """A chargeback: opened, funds withdrawn with the dispute fee; won about 40 % of the
        time, one to two months later (funds reinstated, then closed)."""
        rng, t = b.rng, b.t
        at = b.at(day, rng.randrange(9, 18), rng.randrange(60))
        created = int(at.timestamp())
        dispute = self._copy(self.stripe, "stripe.charge.dispute.funds_withdrawn")
        obj = dispute["data"]["object"]
        dispute_id = b.sid("dp_1")
        bt = self._bt(b, b.sid("txn_1"), dispute_id, -order.total, DISPUTE_FEE, "dispute", created)
        obj.update(id=dispute_id, amount=order.total, charge=order.charge, created=created,
                   currency=t.currency.lower(), status="needs_response", reason="fraudulent",
                   balance_transactions=[], metadata={}, payment_intent=None)  # fmt: skip
        opened = orjson.loads(orjson.dumps(dispute))
        withdrawn = orjson.loads(orjson.dumps(dispute))
        withdrawn["data"]["object"]["balance_transactions"] = [bt]
        out = [
            self._stripe_event(b, opened, "charge.dispute.created", created, at),
            self._stripe_event(b, withdrawn, "charge.dispute.funds_withdrawn", created + 2,
                               at + timedelta(seconds=2)),
        ]  # fmt: skip
        b.stripe_pending.append(bt)
        if rng.random() < 0.4:
            b.later_on(day + timedelta(days=rng.randrange(30, 60)), "dispute_won", dispute)
        return out

    def _later_dispute_won(self, b: _Books, day: date, dispute: dict[str, Any]) -> list[_Item]:
        at = b.at(day, 11)
        created = int(at.timestamp())
        obj = dispute["data"]["object"]
        bt = self._bt(b, b.sid("txn_1"), obj["id"], obj["amount"], 0, "dispute_reversal", created)
        bt["type"] = "adjustment"
        won = orjson.loads(orjson.dumps(dispute))
        won["data"]["object"].update(status="won", balance_transactions=[bt])
        closed = orjson.loads(orjson.dumps(won))
        b.stripe_pending.append(bt)
        return [
            self._stripe_event(b, won, "charge.dispute.funds_reinstated", created, at),
            self._stripe_event(b, closed, "charge.dispute.closed", created + 1,
                               at + timedelta(seconds=1)),
        ]  # fmt: skip

    # ----------------------------------------------------------------- Stripe
    def _stripe_event(
        self, b: _Books, event: dict[str, Any], kind: str, created: int, at: datetime
    ) -> _Item:
        event_id = b.sid("evt_3")
        event.update(id=event_id, type=kind, created=created, api_version="2024-06-20")
        return self._item(at, b.new(b.t.stripe, event_id, f"stripe.{kind}", event, at))

    def _bt(
        self, b: _Books, bt_id: str, source: str, amount: int, fee: int, category: str,
        created: int,
    ) -> dict[str, Any]:  # fmt: skip
        """A balance transaction (pulled later, with the payout that settles it)."""
        wrapped = self._copy(self.stripe, "stripe.balance_transaction")
        bt: dict[str, Any] = wrapped["data"]["object"]
        fee_details = [{**bt["fee_details"][0], "amount": fee, "currency": b.t.currency.lower(),
                        "description": "Stripe processing fees" if category != "dispute"
                        else "Dispute fee"}] if fee else []  # fmt: skip
        bt.update(id=bt_id, source=source, amount=amount, fee=fee, net=amount - fee,
                  fee_details=fee_details, type=category, reporting_category=category,
                  created=created, available_on=created + 2 * 86400,
                  currency=b.t.currency.lower(), description=None)  # fmt: skip
        return bt

    def _charge(
        self, b: _Books, at: datetime, amount: int, charge_id: str, *, order_id: str | None,
        name: str, description: str,
    ) -> list[_Item]:  # fmt: skip
        event = self._copy(self.stripe, "stripe.charge.succeeded")
        obj = event["data"]["object"]
        created = int(at.timestamp())
        bt = b.sid("txn_3")
        customer = b.rng.choice(b.customers) if b.customers and order_id is None else None
        obj.update(
            id=charge_id, amount=amount, amount_captured=amount, captured=True, paid=True,
            created=created, currency=b.t.currency.lower(), balance_transaction=bt,
            metadata={} if order_id is None else {"order_id": order_id},
            description=description, customer=customer, payment_intent=b.sid("pi_3"),
            payment_method=b.sid("pm_1"), receipt_email=None,
            receipt_url=f"https://pay.stripe.com/receipts/{b.sid('', 40)}",
            billing_details={**obj["billing_details"], "name": name},
            refunds={"object": "list", "data": [], "has_more": False,
                     "url": f"/v1/charges/{charge_id}/refunds"},
        )  # fmt: skip
        b.stripe_pending.append(
            self._bt(b, bt, charge_id, amount, _fee(amount, STRIPE_FEE_BP, STRIPE_FEE_FIXED),
                     "charge", created)
        )  # fmt: skip
        return [self._stripe_event(b, event, "charge.succeeded", created, at)]

    def _direct_charge(self, b: _Books, day: date) -> list[_Item]:
        """An invoice or subscription paid by card: a payment naming no order (is the sale)."""
        rng = b.rng
        at = b.at(day, rng.randrange(0, 24), rng.randrange(60), rng.randrange(60))
        out: list[_Item] = []
        if not b.customers or rng.random() < 0.08:
            event = self._copy(self.stripe, "stripe.customer.created")
            obj = event["data"]["object"]
            first, last = rng.choice(_FIRST), rng.choice(_LAST)
            customer = b.sid("cus_", 14)
            obj.update(id=customer, created=int(at.timestamp()) - 5, name=f"{first} {last}",
                       email=f"{first.lower()}@{last.lower()}.example",
                       currency=b.t.currency.lower(), invoice_prefix=b.sid("", 8).upper(),
                       discount=None)  # fmt: skip
            b.customers.append(customer)
            out.append(self._stripe_event(b, event, "customer.created", int(at.timestamp()) - 5,
                                          at - timedelta(seconds=5)))  # fmt: skip
        amount = rng.choice((1900, 2900, 4900, 9900, 14900, 29900))
        out += self._charge(b, at, amount, b.sid("ch_3"), order_id=None, name="",
                            description=rng.choice(("Subscription update", "Invoice payment",
                                                    "Subscription creation")))  # fmt: skip
        return out

    def _stripe_payout(self, b: _Books, day: date) -> list[_Item]:
        """The day's payout: every balance transaction since the last one, pulled with it."""
        if not b.stripe_pending:
            return []
        at = b.at(day, 20, 30)
        created = int(at.timestamp())
        payout_id = b.sid("po_1")
        amount = sum(bt["net"] for bt in b.stripe_pending)
        out = []
        for i, bt in enumerate(b.stripe_pending):
            pulled = at + timedelta(milliseconds=10 * i)
            out.append(self._item(pulled, b.new(b.t.stripe, bt["id"], "stripe.balance_transaction",
                                                {"data": {"object": bt}, "payout": payout_id},
                                                pulled)))  # fmt: skip
        b.stripe_pending = []
        arrival = add_business_days(day, 2)
        arrival_unix = int(datetime.combine(arrival, clock(0), UTC).timestamp())
        payout = self._copy(self.stripe, "stripe.payout.paid")
        obj = payout["data"]["object"]
        obj.update(id=payout_id, amount=amount, created=created, arrival_date=arrival_unix,
                   currency=b.t.currency.lower(), balance_transaction=b.sid("txn_1"),
                   destination=f"ba_1{b.t.name.upper()}", status="in_transit",
                   description="STRIPE PAYOUT", reconciliation_status="in_progress")  # fmt: skip
        after = at + timedelta(seconds=30)
        out.append(self._stripe_event(b, payout, "payout.created", created, after))
        paid = orjson.loads(orjson.dumps(payout))
        paid["data"]["object"].update(status="paid", reconciliation_status="completed")
        b.later_on(arrival, "stripe_paid", paid)
        b.payout_no += 1
        self._deposit(b, arrival, amount, f"STRIPE TRANSFER ST-{payout_id[-6:].upper()}")
        return out

    def _later_stripe_paid(self, b: _Books, day: date, payout: dict[str, Any]) -> list[_Item]:
        at = b.at(day, 6)
        return [self._stripe_event(b, payout, "payout.paid", int(at.timestamp()), at)]

    # ----------------------------------------------------------------- Shopify Payments
    def _shopify_payout(self, b: _Books, day: date) -> list[_Item]:
        if not b.shopify_pending:
            return []
        t = b.t
        payout_id = b.num()
        at = b.at(day, 21)
        out = []
        charges = [x for x in b.shopify_pending if x["type"] == "charge"]
        refunds = [x for x in b.shopify_pending if x["type"] == "refund"]
        for i, x in enumerate(b.shopify_pending):
            pulled = at + timedelta(milliseconds=10 * i)
            txn = self._copy(self.shopify, "shopify.balance_transaction")
            txn.update(id=x["id"], type=x["type"], payout_id=payout_id, payout_status="in_transit",
                       currency=t.currency, amount=_money(x["amount"]), fee=_money(x["fee"]),
                       net=_money(x["amount"] - x["fee"]), source_id=x["source_id"],
                       source_type=x["source_type"], source_order_id=x["source_order_id"],
                       source_order_transaction_id=x["source_order_transaction_id"],
                       processed_at=x["processed_at"].isoformat())  # fmt: skip
            event = b.new(t.shopify, str(x["id"]), "shopify.balance_transaction", txn, pulled)
            out.append(self._item(pulled, event))
        amount = sum(x["amount"] - x["fee"] for x in b.shopify_pending)
        b.shopify_pending = []
        arrival = add_business_days(day, 2)
        payout = self._copy(self.shopify, "shopify.payout")
        payout.update(
            id=payout_id, status="paid", date=arrival.isoformat(), currency=t.currency,
            amount=_money(amount),
            summary={**payout["summary"],
                     "charges_gross_amount": _money(sum(x["amount"] for x in charges)),
                     "charges_fee_amount": _money(sum(x["fee"] for x in charges)),
                     "refunds_gross_amount": _money(sum(x["amount"] for x in refunds)),
                     "refunds_fee_amount": _money(sum(x["fee"] for x in refunds)),
                     "adjustments_fee_amount": "0.00", "adjustments_gross_amount": "0.00"},
        )  # fmt: skip
        b.later_on(arrival, "shopify_paid", payout)
        self._deposit(b, arrival, amount, f"SHOPIFY PAYMENTS {str(payout_id)[-8:]}")
        return out

    def _later_shopify_paid(self, b: _Books, day: date, payout: dict[str, Any]) -> list[_Item]:
        at = b.at(day, 6, 30)
        return [self._item(at, b.new(b.t.shopify, f"payout-{payout['id']}", "shopify.payout",
                                     payout, at))]  # fmt: skip

    # ----------------------------------------------------------------- bank and payroll
    def _deposit(self, b: _Books, arrival: date, amount: int, description: str) -> None:
        """Schedule the deposit of a payout: on time, a business day late, or never."""
        roll = b.rng.random()
        if roll < 0.02:
            return  # never lands: a missing deposit
        landed = add_business_days(arrival, 1) if roll < 0.14 else arrival
        b.later_on(landed, "bank", (amount, description, None))

    def _later_bank(self, b: _Books, day: date, line: tuple[int, str, str | None]) -> list[_Item]:
        """One statement line, imported with the next morning's statement."""
        amount, description, memo = line
        fitid = f"{day:%Y%m%d}{next(b.fitid):06}"
        data = self._copy(self.bank_t, "bank.line")
        data.update(account="checking", date=day.isoformat(), amount_minor=amount,
                    currency=b.t.currency, description=description, memo=memo, fitid=fitid,
                    kind="CREDIT" if amount > 0 else "DEBIT")  # fmt: skip
        occurred = b.at(day, 0)
        logged = b.at(day + timedelta(days=1), 7, b.rng.randrange(60))
        return [self._item(logged, b.new(b.t.bank, fitid, "bank.line", data, occurred))]

    def _spending(self, b: _Books, day: date) -> list[_Item]:
        """Card spending, rent and software on the 1st, an occasional check deposit."""
        rng = b.rng
        lines: list[tuple[int, str, str | None]] = []
        for _ in range(rng.choice((0, 1, 1, 2, 3)) if business_day(day) else rng.choice((0, 1))):
            amount = -rng.randrange(500, 25_000)
            lines.append((amount, rng.choice(_CARD), "POS PURCHASE"))
            if rng.random() < 0.01:  # the bank lists it twice
                b.later_on(day + timedelta(days=1), "bank", lines[-1])
        if day.day == 1:
            lines.append((-b.rent, "LANDLORD LLC RENT", None))
            lines.append((-4_900, "GITHUB INC", "SUBSCRIPTION"))
            lines.append((-2_400, "GOOGLE *GSUITE", "SUBSCRIPTION"))
        if business_day(day) and rng.random() < 0.05:
            lines.append((rng.randrange(20_000, 400_000), "MOBILE CHECK DEPOSIT", None))
        for line in lines:
            b.later_on(day, "bank", line)
        return []

    def _payroll(self, b: _Books, day: date) -> list[_Item]:
        """A payroll run (check date ``day``) and its net pay and tax debits at the bank."""
        rng, t = b.rng, b.t
        data = self._copy(self.payroll_t, "payroll.run")
        template_comp = data["employee_compensations"][0]
        comps, gross_t, net_t, er_t, ee_t, ben_t, ded_t = [], 0, 0, 0, 0, 0, 0
        for (emp, name), salary in zip(b.staff, b.salaries, strict=True):
            gross = salary // 26 + rng.choice((0, 0, 0, rng.randrange(0, 40_000)))
            fed, ss, med = gross * 12 // 100, gross * 62 // 1000, gross * 145 // 10000
            k401, health = gross * 4 // 100, 12_100
            company = gross * 3 // 100
            net = gross - fed - ss - med - k401 - health
            comps.append({
                **template_comp, "employee_uuid": emp, "employee_name": name,
                "gross_pay": _money(gross), "net_pay": _money(net),
                "taxes": [
                    {"name": "Federal Income Tax", "employer": False, "amount": _money(fed)},
                    {"name": "Social Security", "employer": False, "amount": _money(ss)},
                    {"name": "Medicare", "employer": False, "amount": _money(med)},
                    {"name": "Social Security", "employer": True, "amount": _money(ss)},
                    {"name": "Medicare", "employer": True, "amount": _money(med)},
                ],
                "benefits": [
                    {"name": "401(k)", "employee_deduction": _money(k401),
                     "company_contribution": _money(company)},
                    {"name": "Health", "employee_deduction": _money(health),
                     "company_contribution": "60.00"},
                ],
                "deductions": [],
            })  # fmt: skip
            gross_t, net_t, er_t = gross_t + gross, net_t + net, er_t + ss + med
            ee_t, ben_t, ded_t = (
                ee_t + fed + ss + med,
                ben_t + company + 6_000,
                ded_t + k401 + health,
            )
        run_id = self._uuid(b)
        data.update(
            payroll_uuid=run_id, currency=t.currency, check_date=day.isoformat(),
            pay_period={**data["pay_period"], "start_date": (day - timedelta(days=16)).isoformat(),
                        "end_date": (day - timedelta(days=3)).isoformat()},
            totals={"gross_pay": _money(gross_t), "net_pay": _money(net_t),
                    "employer_taxes": _money(er_t), "employee_taxes": _money(ee_t),
                    "benefits": _money(ben_t), "employee_benefits_deductions": _money(ded_t)},
            employee_compensations=comps,
        )  # fmt: skip
        processed = b.at(day - timedelta(days=2), 15)
        b.later_on(day, "bank", (-net_t, "GUSTO NET PAY", f"PAYROLL {run_id[:8]}"))
        b.later_on(day, "bank", (-(ee_t + er_t), "GUSTO TAX", f"PAYROLL {run_id[:8]}"))
        return [self._item(processed, b.new(t.payroll, run_id, "payroll.run", data,
                                            b.at(day, 12)))]  # fmt: skip


@dataclass(frozen=True)
class Workload:
    """The tenants of a run and the seed their history is drawn from."""

    tenants: tuple[Tenant, ...]
    seed: int

    @classmethod
    def plan(cls, tenants: int = 6, seed: int = 2024) -> Workload:
        """``tenants`` businesses (1-8): time zones, currencies (USD, CAD, EUR), sync modes
        (per transaction and per payout, alternating), shop gateways (Stripe and Shopify
        Payments, alternating) and volumes drawn from ``seed``."""
        if not 1 <= tenants <= len(_NAMES):
            raise ValueError(f"tenants must be 1..{len(_NAMES)}")
        rng = random.Random(seed)
        return cls(
            tuple(
                Tenant(
                    name=_NAMES[k],
                    timezone=_ZONES[k],
                    currency=_CURRENCIES[k],
                    mode="per_transaction" if k % 2 == 0 else "per_payout",
                    shop_gateway="stripe" if k % 2 == 0 else "shopify_payments",
                    orders_per_day=rng.randrange(10, 31),
                    direct_charges_per_day=rng.randrange(2, 9),
                    employees=rng.randrange(3, 16),
                    tax_title=_TAX[k][0],
                    tax_bp=_TAX[k][1],
                )
                for k in range(tenants)
            ),
            seed,
        )

    def events(self, limit: int) -> Iterator[NewEvent]:
        """Exactly ``limit`` events of the tenants' history, from 2024-01-01, in log order."""
        return Generator(self.tenants, self.seed).events(limit)

    def config_toml(self) -> str:
        """The ``LEDGERHUB_CONFIG`` file for these tenants and their connections."""
        out: list[str] = []
        for t in self.tenants:
            out += [
                f"[tenants.{t.name}]",
                f'timezone = "{t.timezone}"',
                f'currency = "{t.currency}"',
                f'sync = {{ target = "beancount", mode = "{t.mode}" }}',
                "",
                f"[[tenants.{t.name}.ledger.accounts]]",
                'code = "6200"\nname = "Rent"\ntype = "expense"',
                "",
                f"[[tenants.{t.name}.ledger.accounts]]",
                'code = "6500"\nname = "Software"\ntype = "expense"',
                "",
                f"[[tenants.{t.name}.ledger.rules]]",
                'payee = "(?i)^(stripe|shopify)"\naction = "ignore"',
                "",
                f"[[tenants.{t.name}.ledger.rules]]",
                'payee = "(?i)^gusto net pay"\naction = "ignore"',
                "",
                f"[[tenants.{t.name}.ledger.rules]]",
                'payee = "(?i)^gusto tax"\naccount = "2200"',
                "",
                f"[[tenants.{t.name}.ledger.rules]]",
                'payee = "(?i)rent$"\naccount = "6200"',
                "",
                f"[[tenants.{t.name}.ledger.rules]]",
                'payee = "(?i)^(github|google)"\naccount = "6500"',
                "",
            ]
        for t in self.tenants:
            for conn, connector, extra in (
                (t.stripe, "stripe", 'payout_account = "1000"'),
                (t.shopify, "shopify", 'payout_account = "1000"'),
                (t.bank, "bank", 'ledger_account = "1000"'),
                (t.payroll, "payroll", 'payout_account = "1000"'),
            ):
                out += [
                    "[[connections]]",
                    f'id = "{conn}"',
                    f'connector = "{connector}"',
                    f'tenant = "{t.name}"',
                    extra,
                    "",
                ]
        return "\n".join(out)


@dataclass(frozen=True)
class Generated:
    """What ``append_log`` appended, and how long it took."""

    events: int
    seconds: float
    first_day: date
    last_day: date


async def append_log(
    store: EventStore, events: Iterable[NewEvent], *, batch: int = BATCH
) -> Generated:
    """Append ``events`` through the store, ``batch`` per call, as production would; every
    event must be new (a duplicate is an error: the generator's ids are unique)."""
    started = time.perf_counter()
    count = 0
    first: date | None = None
    last: date | None = None
    chunk: list[NewEvent] = []

    async def flush() -> None:
        results = await store.append(chunk)
        dup = next((r for r in results if r.status != "appended"), None)
        if dup is not None:
            raise RuntimeError(f"the generator repeated an external id: {dup}")
        chunk.clear()

    for event in events:
        day = event.occurred_at.date()
        first = day if first is None or day < first else first
        last = day if last is None or day > last else last
        chunk.append(event)
        count += 1
        if len(chunk) >= batch:
            await flush()
    if chunk:
        await flush()
    return Generated(count, time.perf_counter() - started, first or START, last or START)


__all__ = ["BATCH", "Generated", "Tenant", "Workload", "add_business_days", "append_log"]
