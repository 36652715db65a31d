"""Typed models of the WooCommerce order and refund the mapper reads (amounts: decimal strings)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from pydantic import Field, StrictInt

from hub.spi.parser import DecimalString, Id, Parse, PayloadParser, ProviderModel, model


class LineItem(ProviderModel):
    """An order line: ``subtotal`` before discounts."""

    name: str | None = None
    quantity: StrictInt
    subtotal: DecimalString


class TaxLine(ProviderModel):
    """A tax of the order."""

    tax_total: DecimalString = "0"
    shipping_tax_total: DecimalString = "0"


class RefundListed(ProviderModel):
    """A refund as the order lists it (``total`` negative)."""

    id: Id
    total: DecimalString


class RefundLine(ProviderModel):
    """A refund's line, shipping line or fee line (amounts negative)."""

    total: DecimalString = "0"
    total_tax: DecimalString = "0"


class Refund(ProviderModel):
    """A refund object (``GET /orders/<id>/refunds/<refund_id>``; ``amount`` positive)."""

    id: Id
    date_created_gmt: str
    amount: DecimalString
    line_items: list[RefundLine] = Field(default_factory=list)
    shipping_lines: list[RefundLine] = Field(default_factory=list)
    fee_lines: list[RefundLine] = Field(default_factory=list)


class RefundWithOrder(ProviderModel):
    """``woocommerce.refund``: a refund object with its order's id and currency."""

    order_id: Id
    currency: str
    refund: Refund


class Order(ProviderModel):
    """``order`` (REST API v3), as ``order.*`` webhooks deliver it."""

    id: Id
    status: str
    currency: str
    date_created_gmt: str
    total: DecimalString
    discount_total: DecimalString = "0"
    shipping_total: DecimalString = "0"
    total_tax: DecimalString = "0"
    line_items: list[LineItem] = Field(default_factory=list)
    tax_lines: list[TaxLine] = Field(default_factory=list)
    refunds: list[RefundListed] = Field(default_factory=list)


class WooCommerceParser(PayloadParser):
    """WooCommerce order webhooks → ``Order``; refund objects → ``RefundWithOrder``."""

    parsers: ClassVar[Mapping[str, Parse]] = {
        **{
            f"woocommerce.order.{topic}": model(Order)
            for topic in ("created", "updated", "restored")
        },
        "woocommerce.refund": model(RefundWithOrder),
    }
