"""WooCommerce events → canonical facts.

Webhook deliveries carry the order (REST API v3 shape) as ``data``, type
``woocommerce.order.created`` / ``.updated`` / ``.deleted`` (from ``X-WC-Webhook-Topic``). The
``*_gmt`` timestamps have no offset but are UTC, so the default mapping appends one with
``concat`` before ``iso_to_date``.

Refunds made in the shop (manual, store credit, cash, or through the gateway) are shop-side
``Refund`` facts keyed ``refund:<id>``, from two shapes:

- the order's ``refunds[]`` (``{"id", "reason", "total": "-10.00"}``): the amount only, dated
  when the order event occurred; the ledger splits it pro rata by the order (unless the entry
  carries ``line_items`` / ``shipping_lines`` like a refund object);
- ``woocommerce.refund`` (a refund object as ``GET /orders/<id>/refunds/<refund_id>`` returns
  it, wrapped with its order: ``{"order_id": 727, "currency": "USD", "refund": {...}}``): its
  ``line_items``, ``shipping_lines`` and ``fee_lines`` (negative amounts) state the split:
  tax = their ``total_tax``, shipping = the shipping lines' ``total``.

Both name the same refund by the same key, so it is booked once; a listing by total after the
refund object keeps the object's split (``projections.ledger.links``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from connectors.woocommerce.models import WooCommerceParser
from hub.domain.facts import Fact, Refund, SaleLine, TaxLine
from hub.domain.mapping import KindSchema, spec
from hub.domain.money import Money
from hub.spi.mapper import (
    SALE_FIELDS,
    FactMapper,
    Handler,
    MapContext,
    SourceEvent,
    money,
    sale_fact,
    text,
)
from hub.spi.parser import PayloadParser

ORDER_STATUS = {
    "completed": "paid",
    "processing": "paid",
    "refunded": "paid",
    "on-hold": "open",
    "pending": "draft",
    "checkout-draft": "draft",
    "cancelled": "void",
    "failed": "void",
    "trash": "void",
}

_MONEY = "decimal_string_to_minor"

SCHEMA = {
    "sale": KindSchema(
        root="order",
        fields=SALE_FIELDS,
        defaults={
            "id": spec("order.id"),
            "number": spec("order.number"),
            "status": spec("order.status", "map", values=ORDER_STATUS, default="draft"),
            "currency": spec("order.currency"),
            "date": spec("concat(order.date_created_gmt, 'Z')", "iso_to_date"),
            "subtotal": spec("sum(order.line_items[*].subtotal)", _MONEY),
            "discounts": spec("order.discount_total", _MONEY, default="0"),
            "shipping": spec("order.shipping_total", _MONEY, default="0"),
            "total": spec("order.total", _MONEY),
            "taxes_included": spec("order.prices_include_tax", default=False),
            "customer": spec("concat(order.billing.first_name, ' ', order.billing.last_name)"),
        },
        required=frozenset({"id", "status", "currency", "date", "subtotal", "total"}),
    ),
    "refund": KindSchema(
        root="refund",
        fields={"id": "text", "date": "date", "amount": "money", "currency": "text"},
        defaults={
            "id": spec("refund.id"),
            "date": spec("concat(refund.date_created_gmt, 'Z')", "iso_to_date"),
            "amount": spec("refund.amount", _MONEY),
            "currency": spec("refund.currency"),
        },
        required=frozenset({"id", "date", "amount", "currency"}),
    ),
}


def _sale(event: SourceEvent, ctx: MapContext) -> list[Fact]:
    order = event.data
    f = ctx.fields("sale", order)
    currency = f["currency"]
    lines = [
        SaleLine(
            description=str(item.get("name") or ""),
            sku=text(item.get("sku")) or None,
            quantity=int(item.get("quantity") or 0),
            amount=Money.parse(item["subtotal"], currency),
        )
        for item in order.get("line_items") or []
    ]
    taxes = [
        TaxLine(
            title=str(tax.get("label") or tax.get("rate_code") or "tax"),
            rate=text(tax.get("rate_percent")),
            amount=Money.parse(tax.get("tax_total") or "0", currency)
            + Money.parse(tax.get("shipping_tax_total") or "0", currency),
        )
        for tax in order.get("tax_lines") or []
    ]
    sale = sale_fact(f, lines, taxes)
    when = ctx.business_date(event.occurred_at)
    listed = [
        _listed_refund(entry, sale.order_id, currency, when)
        for entry in order.get("refunds") or []
        if isinstance(entry, dict)
    ]
    return [sale, *listed]


def _split(refund: Mapping[str, Any], currency: str) -> tuple[Money | None, Money | None]:
    """``(tax, shipping)`` a refund states through its lines (negative in WooCommerce), or
    ``(None, None)`` when it lists none."""
    items = [
        line
        for name in ("line_items", "shipping_lines", "fee_lines")
        for line in refund.get(name) or []
        if isinstance(line, dict)
    ]
    if not items:
        return None, None
    tax = Money.zero(currency)
    for line in items:
        tax -= Money.parse(str(line.get("total_tax") or "0"), currency)
    shipping = Money.zero(currency)
    for line in refund.get("shipping_lines") or []:
        shipping -= Money.parse(str(line.get("total") or "0"), currency)
    return tax, shipping


def _listed_refund(entry: Mapping[str, Any], order_id: str, currency: str, when: Any) -> Refund:
    """A refund as the order lists it: ``total`` is negative."""
    tax, shipping = _split(entry, currency)
    return Refund(
        key=f"refund:{entry['id']}",
        business_date=when,
        processor=None,
        refund_id=str(entry["id"]),
        amount=-Money.parse(str(entry["total"]), currency),
        tax=tax,
        shipping=shipping,
        order_ref=order_id,
    )


def _refund(event: SourceEvent, ctx: MapContext) -> list[Fact]:
    """A refund object with its order (``woocommerce.refund``)."""
    data = event.data
    refund = {**dict(data["refund"]), "currency": data["currency"]}
    f = ctx.fields("refund", refund)
    amount = money(f, "amount")
    tax, shipping = _split(refund, amount.currency)
    return [
        Refund(
            key=f"refund:{f['id']}",
            business_date=f["date"],
            processor=None,
            refund_id=f["id"],
            amount=amount,
            tax=tax,
            shipping=shipping,
            order_ref=str(data["order_id"]),
        )
    ]


class WooCommerceMapper(FactMapper):
    """Orders (created, updated): the latest state of each order is its sale, and the refunds
    it lists are refunds; refund objects (``woocommerce.refund``) are refunds with their split."""

    schema = SCHEMA
    parser: ClassVar[PayloadParser | None] = WooCommerceParser()
    handlers: ClassVar[Mapping[str, Handler]] = {
        "woocommerce.order.created": _sale,
        "woocommerce.order.updated": _sale,
        "woocommerce.order.restored": _sale,
        "woocommerce.refund": _refund,
    }
