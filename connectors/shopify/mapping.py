"""Shopify events → canonical facts.

Webhook events carry the webhook body as ``data`` with type ``shopify.<topic>`` (``orders/paid``
→ ``shopify.orders.paid``). Pulled Shopify Payments objects are stored as the Admin API returns
each one: ``shopify.payout`` (a payout) and ``shopify.balance_transaction`` (a payout balance
transaction, which names its ``payout_id`` itself).

Orders are sales (every order topic carries the whole order, so the latest one wins); a refund
webhook reduces revenue, shipping and tax (by its own split when its lines state their tax,
else pro rata by the order, in the ledger); balance transactions move money through the Shopify
Payments clearing account (fees are ``amount - net``, so the clearing account follows the
balance to the cent); a paid payout moves it to the bank.

Every balance transaction is also stated as it is, as a ``BalanceMovement`` (books nothing; its
``type`` mapped to a canonical category by ``CATEGORIES``), and a payout carries its ``summary``
as its ``composition`` (``from_summary``), for reconciliation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from connectors.shopify.models import ShopifyParser
from hub.domain.facts import (
    Adjustment,
    BalanceMovement,
    Dispute,
    Fact,
    InventoryMovement,
    MovementCategory,
    Payment,
    Payout,
    PayoutComposition,
    Refund,
    SaleLine,
    TaxLine,
)
from hub.domain.mapping import KindSchema, spec
from hub.domain.money import Money
from hub.spi.mapper import (
    SALE_FIELDS,
    FactMapper,
    Handler,
    MapContext,
    SourceEvent,
    customer_fact,
    money,
    payout_fact,
    sale_fact,
    text,
)
from hub.spi.parser import PayloadParser

PROCESSOR = "shopify"

ORDER_STATUS = {
    "paid": "paid",
    "partially_paid": "paid",
    "partially_refunded": "paid",
    "refunded": "paid",
    "authorized": "open",
    "pending": "open",
    "voided": "void",
}
"""Default ``financial_status`` → sale status (anything else: draft, not booked)."""

_MONEY = "decimal_string_to_minor"

SCHEMA = {
    "sale": KindSchema(
        root="order",
        fields=SALE_FIELDS,
        defaults={
            "id": spec("order.id"),
            "number": spec("order.name"),
            "status": spec("order.financial_status", "map", values=ORDER_STATUS, default="draft"),
            "currency": spec("order.currency"),
            "date": spec("order.created_at", "iso_to_date"),
            "subtotal": spec("order.total_line_items_price", _MONEY),
            "discounts": spec("order.total_discounts", _MONEY, default="0"),
            "shipping": spec("sum(order.shipping_lines[*].price)", _MONEY, default="0"),
            "total": spec("order.total_price", _MONEY),
            "taxes_included": spec("order.taxes_included", default=False),
            "customer": spec("concat(order.customer.first_name, ' ', order.customer.last_name)"),
        },
        required=frozenset({"id", "status", "currency", "date", "subtotal", "total"}),
    ),
    "refund": KindSchema(
        root="refund",
        fields={
            "id": "text",
            "order_id": "text",
            "currency": "text",
            "date": "date",
            "amount": "money",
            "tax": "money",
        },
        defaults={
            "id": spec("refund.id"),
            "order_id": spec("refund.order_id"),
            "currency": spec("refund.transactions[0].currency"),
            "date": spec("refund.created_at", "iso_to_date"),
            "amount": spec("sum(refund.transactions[*].amount)", _MONEY),
            "tax": spec("sum(refund.refund_line_items[*].total_tax)", _MONEY, default="0"),
        },
        required=frozenset({"id", "currency", "date", "amount"}),
    ),
    "balance_transaction": KindSchema(
        root="transaction",
        fields={
            "id": "text",
            "type": "text",
            "currency": "text",
            "date": "date",
            "amount": "money",
            "net": "money",
            "payout_id": "text",
            "order_ref": "text",
            "source_id": "text",
        },
        defaults={
            "id": spec("transaction.id"),
            "type": spec("transaction.type"),
            "currency": spec("transaction.currency"),
            "date": spec("transaction.processed_at", "iso_to_date"),
            "amount": spec("transaction.amount", _MONEY),
            "net": spec("transaction.net", _MONEY),
            "payout_id": spec("transaction.payout_id"),
            "order_ref": spec("transaction.source_order_id"),
            "source_id": spec("transaction.source_id"),
        },
        required=frozenset({"id", "type", "currency", "date", "amount", "net"}),
    ),
    "payout": KindSchema(
        root="payout",
        fields={
            "id": "text",
            "currency": "text",
            "amount": "money",
            "date": "date",
            "status": "text",
        },
        defaults={
            "id": spec("payout.id"),
            "currency": spec("payout.currency"),
            "amount": spec("payout.amount", _MONEY),
            "date": spec("payout.date", "iso_to_date"),
            "status": spec(
                "payout.status",
                "map",
                values={
                    "scheduled": "pending",
                    "in_transit": "in_transit",
                    "paid": "paid",
                    "failed": "failed",
                    "canceled": "canceled",
                    "cancelled": "canceled",
                },
            ),
        },
        required=frozenset({"id", "currency", "amount", "date", "status"}),
    ),
    "customer": KindSchema(
        root="customer",
        fields={"id": "text", "name": "text", "email": "text", "date": "date"},
        defaults={
            "id": spec("customer.id"),
            "name": spec("concat(customer.first_name, ' ', customer.last_name)"),
            "email": spec("customer.email"),
            "date": spec("customer.created_at", "iso_to_date"),
        },
        required=frozenset({"id", "date"}),
    ),
}


def _body(event: SourceEvent, wrapper: str) -> dict[str, Any]:
    """The object itself; Admin API fixtures wrap it (``{"order": {...}}``), webhooks do not."""
    body = dict(event.data)
    inner = body.get(wrapper)
    return inner if isinstance(inner, dict) and len(body) == 1 else body


def _sale(event: SourceEvent, ctx: MapContext) -> list[Fact]:
    order = _body(event, "order")
    f = ctx.fields("sale", order)
    currency = f["currency"]
    status = "void" if order.get("cancelled_at") else f["status"]
    lines = [
        SaleLine(
            description=str(item.get("name") or item.get("title") or ""),
            sku=text(item.get("sku")),
            quantity=int(item.get("quantity") or 0),
            amount=Money(
                minor=Money.parse(item["price"], currency).minor * int(item.get("quantity") or 0),
                currency=currency,
            ),
        )
        for item in order.get("line_items") or []
    ]
    taxes = [
        TaxLine(
            title=str(tax.get("title") or "tax"),
            rate=text(tax.get("rate")),
            amount=Money.parse(tax["price"], currency),
        )
        for tax in order.get("tax_lines") or []
    ]
    return [sale_fact(f, lines, taxes, status=status)]


def _refund(event: SourceEvent, ctx: MapContext) -> list[Fact]:
    """The shop-side refund. Its split is stated when its lines carry ``total_tax`` (then the
    tax is theirs, with the tax of its ``shipping_refund`` adjustments, and the shipping is
    those adjustments); else the ledger splits it pro rata by the order's figures."""
    refund = _body(event, "refund")
    f = ctx.fields("refund", refund)
    amount = money(f, "amount")
    lines = refund.get("refund_line_items") or []
    stated = any(isinstance(line, dict) and line.get("total_tax") is not None for line in lines)
    tax: Money | None = None
    shipping: Money | None = None
    if stated:
        shipping = Money.zero(amount.currency)
        tax = money(f, "tax")
        for adjustment in refund.get("order_adjustments") or []:
            if isinstance(adjustment, dict) and adjustment.get("kind") == "shipping_refund":
                shipping -= Money.parse(str(adjustment.get("amount") or "0"), amount.currency)
                tax -= Money.parse(str(adjustment.get("tax_amount") or "0"), amount.currency)
    return [
        Refund(
            key=f"refund:{f['id']}",
            business_date=f["date"],
            processor=None,
            refund_id=f["id"],
            amount=amount,
            tax=tax,
            shipping=shipping,
            order_ref=f["order_id"],
        )
    ]


CATEGORIES: dict[str, MovementCategory] = {
    "charge": "charge",
    "refund": "refund",
    "dispute": "dispute",
    "payout": "payout",
    "payout_failure": "payout",
}
"""Shopify's balance transaction ``type`` → the canonical category of a balance movement;
anything else (``adjustment``, ``reserve``, ``credit``, ``debit``, ``payout_cancellation``, …)
is an ``adjustment``."""


def _balance_transaction(event: SourceEvent, ctx: MapContext) -> list[Fact]:
    """One payout balance transaction: ``net`` is what it did to the Shopify Payments balance,
    ``amount - net`` the fee it cost; the facts it books, then its ``BalanceMovement``."""
    f = ctx.fields("balance_transaction", _body(event, "transaction"))
    amount, net = money(f, "amount"), money(f, "net")
    movement = BalanceMovement(
        key=f"movement:{f['id']}",
        business_date=f["date"],
        processor=PROCESSOR,
        movement_id=f["id"],
        payout_id=f["payout_id"],
        category=CATEGORIES.get(str(f["type"]), "adjustment"),
        amount=amount,
        fee=amount - net,
        net=net,
        description=f["type"],
    )
    return [*_booked(f, amount, net), movement]


def _booked(f: Mapping[str, Any], amount: Money, net: Money) -> list[Fact]:
    """What a balance transaction books (the payout's own: nothing, the payout books it)."""
    fee = amount - net
    key, kind, date = f"transaction:{f['id']}", f["type"], f["date"]
    if kind == "payout":
        return []  # the payout itself is booked from the payout object
    if kind == "charge" and amount.minor >= 0:
        return [
            Payment(
                key=key,
                business_date=date,
                processor=PROCESSOR,
                payment_id=f["id"],
                gross=amount,
                fee=fee,
                order_ref=f["order_ref"],
                balance_transaction=f["id"],
                payout_id=f["payout_id"],
            )
        ]
    if kind == "refund" and amount.minor <= 0:
        return [
            Refund(
                key=key,
                business_date=date,
                processor=PROCESSOR,
                refund_id=f["id"],
                amount=-amount,
                fee=fee,
                order_ref=f["order_ref"],
            )
        ]
    if kind == "dispute":
        return [
            Dispute(
                key=key,
                business_date=date,
                processor=PROCESSOR,
                dispute_id=f["source_id"] or f["id"],
                amount=-amount if amount.minor <= 0 else amount,
                movement="withdrawn" if amount.minor <= 0 else "reinstated",
                status="lost" if amount.minor <= 0 else "won",
                fee=fee,
            )
        ]
    return [
        Adjustment(
            key=key,
            business_date=date,
            processor=PROCESSOR,
            adjustment_id=f["id"],
            amount=amount,
            fee=fee,
            description=kind,
            payout_id=f["payout_id"],
            reserve=kind == "reserve",
        )
    ]


def from_summary(summary: Mapping[str, Any], currency: str) -> PayoutComposition:
    """The composition a Shopify payout's ``summary`` states (decimal strings; fee amounts are
    costs, so they are subtracted; reserved funds and retried payouts count as adjustments;
    Shopify states no disputes apart). ``ValueError`` for an amount that is not one."""

    def amount(name: str) -> Money:
        value = summary.get(name)
        return Money.zero(currency) if value is None else Money.parse(str(value), currency)

    fees = sum((amount(name).minor for name in summary if name.endswith("_fee_amount")), 0)
    return PayoutComposition(
        gross=amount("charges_gross_amount"),
        refunds=amount("refunds_gross_amount"),
        fees=Money.of(-fees, currency),
        disputes=Money.zero(currency),
        adjustments=(
            amount("adjustments_gross_amount")
            + amount("reserved_funds_gross_amount")
            + amount("retried_payouts_gross_amount")
        ),
    )


def _payout(event: SourceEvent, ctx: MapContext) -> list[Fact]:
    """A payout, with its ``summary`` as its composition when it carries a readable one (a
    summary that cannot be read leaves the composition unknown; the payout is booked all the
    same)."""
    body = _body(event, "payout")
    payout = payout_fact(ctx.fields("payout", body), PROCESSOR)
    summary = body.get("summary")
    if not isinstance(summary, dict):
        return [payout]
    try:
        composition = from_summary(summary, payout.amount.currency)
    except ValueError:  # an amount that is not one (pydantic's ValidationError is one too)
        return [payout]
    return [Payout(**{**dict(payout), "composition": composition})]


def _customer(event: SourceEvent, ctx: MapContext) -> list[Fact]:
    return [customer_fact(ctx.fields("customer", _body(event, "customer")))]


def _inventory(event: SourceEvent, ctx: MapContext) -> list[Fact]:
    level = event.data
    return [
        InventoryMovement(
            key=f"inventory:{level['inventory_item_id']}:{level.get('location_id')}",
            business_date=ctx.business_date(event.occurred_at),
            item_id=str(level["inventory_item_id"]),
            location_id=text(level.get("location_id")),
            quantity=int(level["available"]),
            absolute=True,
        )
    ]


class ShopifyMapper(FactMapper):
    """Orders, refunds, Shopify Payments balance transactions and payouts, customers, stock."""

    schema = SCHEMA
    parser: ClassVar[PayloadParser | None] = ShopifyParser()
    handlers: ClassVar[Mapping[str, Handler]] = {
        **dict.fromkeys(
            (
                "shopify.orders.create",
                "shopify.orders.updated",
                "shopify.orders.paid",
                "shopify.orders.cancelled",
                "shopify.orders.fulfilled",
                "shopify.orders.partially_fulfilled",
            ),
            _sale,
        ),
        "shopify.refunds.create": _refund,
        "shopify.balance_transaction": _balance_transaction,
        "shopify.payout": _payout,
        "shopify.customers.create": _customer,
        "shopify.customers.update": _customer,
        "shopify.inventory_levels.update": _inventory,
    }
