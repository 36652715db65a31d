"""Typed models of the AcmePay objects the mapper reads (amounts: integer minor units)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from pydantic import Field

from hub.spi.parser import MinorUnits, Parse, PayloadParser, ProviderModel, model


class Payment(ProviderModel):
    """A card payment: ``amount`` collected, ``fee`` withheld by AcmePay."""

    id: str
    amount: MinorUnits
    fee: MinorUnits = 0
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    created_at: str
    order: str | None = None


class Refund(ProviderModel):
    """Money given back on ``payment``."""

    id: str
    payment: str
    amount: MinorUnits
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    created_at: str


class Payout(ProviderModel):
    """AcmePay's balance sent to the bank, with the payments and refunds it settles."""

    id: str
    amount: MinorUnits
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    created_at: str
    arrival_date: str
    status: str
    payments: list[str] = Field(default_factory=list)
    refunds: list[str] = Field(default_factory=list)


class PaymentEvent(ProviderModel):
    id: str
    type: str
    created_at: str
    object: Payment


class RefundEvent(ProviderModel):
    id: str
    type: str
    created_at: str
    object: Refund


class PayoutEvent(ProviderModel):
    id: str
    type: str
    created_at: str
    object: Payout


class AcmePayParser(PayloadParser):
    """AcmePay events → their typed models."""

    parsers: ClassVar[Mapping[str, Parse]] = {
        "acmepay.payment.succeeded": model(PaymentEvent),
        "acmepay.refund.succeeded": model(RefundEvent),
        "acmepay.payout.paid": model(PayoutEvent),
    }
