"""Typed models of the Stripe objects the mapper reads (amounts: integer minor units)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, Field, StrictInt

from hub.spi.parser import MinorUnits, Parse, PayloadParser, ProviderModel

Currency = str
Timestamp = StrictInt  # Unix seconds


class FeeDetail(ProviderModel):
    """One part of a balance transaction's fee."""

    amount: MinorUnits
    currency: Currency
    type: str


class BalanceTransaction(ProviderModel):
    """``balance_transaction``: money moving in the Stripe balance (``net = amount - fee``)."""

    id: str
    amount: MinorUnits
    fee: MinorUnits = 0
    net: MinorUnits
    currency: Currency
    created: Timestamp
    exchange_rate: float | None = None  # a rate, not money
    fee_details: list[FeeDetail] = Field(default_factory=list)
    reporting_category: str | None = None
    type: str


class Refund(ProviderModel):
    """``refund``."""

    id: str
    amount: MinorUnits
    currency: Currency
    created: Timestamp
    charge: str | None = None
    status: str | None = None
    balance_transaction: str | BalanceTransaction | None = None


class RefundList(ProviderModel):
    """A charge's ``refunds`` list."""

    data: list[Refund] = Field(default_factory=list)


class Charge(ProviderModel):
    """``charge``; ``balance_transaction`` may be expanded."""

    id: str
    amount: MinorUnits
    currency: Currency
    created: Timestamp
    balance_transaction: str | BalanceTransaction | None = None
    refunds: RefundList | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class Dispute(ProviderModel):
    """``dispute``; its ``balance_transactions`` are expanded objects."""

    id: str
    amount: MinorUnits
    currency: Currency
    created: Timestamp
    status: str
    charge: str | None = None
    balance_transactions: list[BalanceTransaction] = Field(default_factory=list)


class Payout(ProviderModel):
    """``payout``."""

    id: str
    amount: MinorUnits
    currency: Currency
    created: Timestamp
    arrival_date: Timestamp
    status: str


class Customer(ProviderModel):
    """``customer``."""

    id: str
    created: Timestamp
    name: str | None = None
    email: str | None = None


def _event(obj: type[BaseModel]) -> Parse:
    """An event (or a pulled object wrapped like one) whose ``data.object`` is an ``obj``."""

    def parse(data: Mapping[str, Any]) -> BaseModel:
        inner = data.get("data")
        if not isinstance(inner, Mapping) or not isinstance(inner.get("object"), Mapping):
            raise ValueError("data.data.object is not an object")
        return obj.model_validate(inner["object"])

    return parse


class StripeParser(PayloadParser):
    """Stripe event payloads → the typed object each one carries."""

    parsers: ClassVar[Mapping[str, Parse]] = {
        **dict.fromkeys(
            ("stripe.charge.succeeded", "stripe.charge.captured", "stripe.charge.refunded"),
            _event(Charge),
        ),
        **dict.fromkeys(
            ("stripe.refund.created", "stripe.refund.updated", "stripe.charge.refund.updated"),
            _event(Refund),
        ),
        **{
            f"stripe.charge.dispute.{what}": _event(Dispute)
            for what in ("created", "updated", "closed", "funds_withdrawn", "funds_reinstated")
        },
        "stripe.balance_transaction": _event(BalanceTransaction),
        **{
            f"stripe.payout.{what}": _event(Payout)
            for what in ("created", "updated", "paid", "failed", "canceled")
        },
        "stripe.customer.created": _event(Customer),
        "stripe.customer.updated": _event(Customer),
    }
