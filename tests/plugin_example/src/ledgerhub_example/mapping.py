"""AcmePay events → canonical facts: a payment (gross and AcmePay's fee), a refund, a payout
(and the payments and refunds it settles). ``samples.json`` beside this module holds one of
each, as AcmePay delivers them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from hub.domain.facts import Fact, Payment, Refund
from hub.domain.mapping import FieldType, KindSchema, spec
from hub.spi.mapper import FactMapper, Handler, MapContext, SourceEvent, money, payout_fact
from hub.spi.parser import PayloadParser
from ledgerhub_example.models import AcmePayParser

PROCESSOR = "acmepay"

_COMMON: dict[str, FieldType] = {"id": "text", "currency": "text", "date": "date"}


def _common(root: str) -> dict[str, Any]:
    return {
        "id": spec(f"{root}.id"),
        "currency": spec(f"{root}.currency"),
        "date": spec(f"{root}.created_at", "iso_to_date"),
    }


SCHEMA = {
    "payment": KindSchema(
        root="payment",
        fields={**_COMMON, "gross": "money", "fee": "money", "order_ref": "text"},
        defaults={
            **_common("payment"),
            "gross": spec("payment.amount", "cents"),
            "fee": spec("payment.fee", "cents", default=0),
            "order_ref": spec("payment.order"),
        },
        required=frozenset({"id", "currency", "date", "gross"}),
    ),
    "refund": KindSchema(
        root="refund",
        fields={**_COMMON, "amount": "money", "payment_ref": "text"},
        defaults={
            **_common("refund"),
            "amount": spec("refund.amount", "cents"),
            "payment_ref": spec("refund.payment"),
        },
        required=frozenset({"id", "currency", "date", "amount"}),
    ),
    "payout": KindSchema(
        root="payout",
        fields={**_COMMON, "amount": "money", "arrival_date": "date", "status": "text"},
        defaults={
            **_common("payout"),
            "amount": spec("payout.amount", "cents"),
            "arrival_date": spec("payout.arrival_date", "iso_to_date"),
            "status": spec("payout.status"),
        },
        required=frozenset({"id", "currency", "date", "amount", "arrival_date", "status"}),
    ),
}


def _object(event: SourceEvent) -> Mapping[str, Any]:
    found: Mapping[str, Any] = event.data["object"]
    return found


def _payment(event: SourceEvent, ctx: MapContext) -> list[Fact]:
    f = ctx.fields("payment", _object(event))
    return [
        Payment(
            key=f"payment:{f['id']}",
            business_date=f["date"],
            processor=PROCESSOR,
            payment_id=f["id"],
            gross=money(f, "gross"),
            fee=money(f, "fee"),
            order_ref=f["order_ref"],
        )
    ]


def _refund(event: SourceEvent, ctx: MapContext) -> list[Fact]:
    f = ctx.fields("refund", _object(event))
    return [
        Refund(
            key=f"refund:{f['id']}",
            business_date=f["date"],
            processor=PROCESSOR,
            refund_id=f["id"],
            amount=money(f, "amount"),
            payment_ref=f["payment_ref"],
        )
    ]


def _payout(event: SourceEvent, ctx: MapContext) -> list[Fact]:
    payout = _object(event)
    settles = [*payout.get("payments", []), *payout.get("refunds", [])]
    return [payout_fact(ctx.fields("payout", payout), PROCESSOR, settles)]


class AcmePayMapper(FactMapper):
    """Payments, refunds and payouts."""

    schema = SCHEMA
    parser: ClassVar[PayloadParser | None] = AcmePayParser()
    handlers: ClassVar[Mapping[str, Handler]] = {
        "acmepay.payment.succeeded": _payment,
        "acmepay.refund.succeeded": _refund,
        "acmepay.payout.paid": _payout,
    }
