"""Typed models of the WooCommerce order the mapper reads (amounts: decimal strings)."""

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


class WooCommerceParser(PayloadParser):
    """WooCommerce order webhooks → ``Order``."""

    parsers: ClassVar[Mapping[str, Parse]] = {
        f"woocommerce.order.{topic}": model(Order) for topic in ("created", "updated", "restored")
    }
