"""WooCommerce events → canonical facts.

Webhook deliveries carry the order (REST API v3 shape) as ``data``, type
``woocommerce.order.created`` / ``.updated`` / ``.deleted`` (from ``X-WC-Webhook-Topic``). The
``*_gmt`` timestamps have no offset but are UTC, so the default mapping appends one with
``concat`` before ``iso_to_date``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from connectors.woocommerce.models import WooCommerceParser
from hub.domain.facts import Fact, SaleLine, TaxLine
from hub.domain.mapping import KindSchema, spec
from hub.domain.money import Money
from hub.spi.mapper import (
    SALE_FIELDS,
    FactMapper,
    Handler,
    MapContext,
    SourceEvent,
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
    )
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
    return [sale_fact(f, lines, taxes)]


class WooCommerceMapper(FactMapper):
    """Orders (created, updated): the latest state of each order is its sale."""

    schema = SCHEMA
    parser: ClassVar[PayloadParser | None] = WooCommerceParser()
    handlers: ClassVar[Mapping[str, Handler]] = {
        "woocommerce.order.created": _sale,
        "woocommerce.order.updated": _sale,
        "woocommerce.order.restored": _sale,
    }
