"""Typed models of the Shopify objects the mapper reads (amounts: decimal strings)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import AwareDatetime, BaseModel, Field, StrictInt

from hub.spi.parser import DecimalString, Id, Parse, PayloadParser, ProviderModel


class LineItem(ProviderModel):
    """An order line: ``price`` per unit."""

    price: DecimalString
    quantity: StrictInt
    sku: str | None = None


class TaxLine(ProviderModel):
    """A tax on an order or line."""

    price: DecimalString
    title: str | None = None


class ShippingLine(ProviderModel):
    """A shipping charge."""

    price: DecimalString


class Order(ProviderModel):
    """``order`` (every ``orders/*`` webhook body)."""

    id: Id
    currency: str
    created_at: AwareDatetime
    financial_status: str | None = None
    total_price: DecimalString
    total_line_items_price: DecimalString
    total_discounts: DecimalString = "0"
    line_items: list[LineItem] = Field(default_factory=list)
    tax_lines: list[TaxLine] = Field(default_factory=list)
    shipping_lines: list[ShippingLine] = Field(default_factory=list)


class RefundLineItem(ProviderModel):
    """A refunded line (``subtotal`` and ``total_tax`` when Shopify states them)."""

    subtotal: DecimalString | None = None
    total_tax: DecimalString | None = None


class Transaction(ProviderModel):
    """An order transaction (a refund's money)."""

    amount: DecimalString
    currency: str | None = None
    kind: str | None = None


class OrderAdjustment(ProviderModel):
    """A refund's order adjustment (``kind`` ``shipping_refund``: shipping given back, negative)."""

    kind: str | None = None
    amount: DecimalString = "0"
    tax_amount: DecimalString = "0"


class Refund(ProviderModel):
    """``refund`` (``refunds/create``)."""

    id: Id
    order_id: Id
    created_at: AwareDatetime
    refund_line_items: list[RefundLineItem] = Field(default_factory=list)
    transactions: list[Transaction]
    order_adjustments: list[OrderAdjustment] = Field(default_factory=list)


class BalanceTransaction(ProviderModel):
    """A Shopify Payments payout balance transaction."""

    id: Id
    type: str
    currency: str
    amount: DecimalString
    fee: DecimalString
    net: DecimalString
    payout_id: Id | None = None
    processed_at: AwareDatetime


class Payout(ProviderModel):
    """A Shopify Payments payout."""

    id: Id
    status: str
    date: str
    currency: str
    amount: DecimalString


class Customer(ProviderModel):
    """``customer``."""

    id: Id
    created_at: AwareDatetime
    email: str | None = None


class InventoryLevel(ProviderModel):
    """``inventory_level`` (``inventory_levels/update``)."""

    inventory_item_id: Id
    location_id: Id | None = None
    available: StrictInt


def _unwrapped(cls: type[BaseModel], wrapper: str) -> Parse:
    """``cls``, whether the body is the object or (Admin API style) ``{wrapper: object}``."""

    def parse(data: Mapping[str, Any]) -> BaseModel:
        inner = data.get(wrapper)
        return cls.model_validate(inner if isinstance(inner, Mapping) and len(data) == 1 else data)

    return parse


_ORDER_TOPICS = ("create", "updated", "paid", "cancelled", "fulfilled", "partially_fulfilled")


class ShopifyParser(PayloadParser):
    """Shopify webhook bodies and pulled Shopify Payments objects → typed models."""

    parsers: ClassVar[Mapping[str, Parse]] = {
        **{f"shopify.orders.{topic}": _unwrapped(Order, "order") for topic in _ORDER_TOPICS},
        "shopify.refunds.create": _unwrapped(Refund, "refund"),
        "shopify.balance_transaction": _unwrapped(BalanceTransaction, "transaction"),
        "shopify.payout": _unwrapped(Payout, "payout"),
        "shopify.customers.create": _unwrapped(Customer, "customer"),
        "shopify.customers.update": _unwrapped(Customer, "customer"),
        "shopify.inventory_levels.update": _unwrapped(InventoryLevel, "inventory_level"),
    }
