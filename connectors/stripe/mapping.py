"""Stripe events → canonical facts.

Every ``stripe.*`` event's ``data`` is the Stripe ``event`` object as delivered, so the object is
at ``data.data.object``. Pulled objects are wrapped the same way: a balance transaction pulled
for a payout is ``{"data": {"object": <balance_transaction>}, "payout": "po_…"}`` with type
``stripe.balance_transaction``; a pulled payout may list the balance transactions it settles,
``{"data": {"object": <payout>}, "balance_transactions": ["txn_…", …]}``.

Fees are booked from balance transactions (their ``fee``), never from charges, so a charge whose
``balance_transaction`` is expanded is not charged twice; an expanded balance transaction in
another currency gives the payment its settled amount (``exchange_rate``).

Every balance transaction is also stated as it is, as a ``BalanceMovement`` (books nothing; its
``reporting_category``, else its ``type``, mapped to a canonical category by ``CATEGORIES``), for
payout composition and the clearing tie-out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from connectors.stripe.models import StripeParser
from hub.domain.facts import (
    Adjustment,
    BalanceMovement,
    Dispute,
    DisputeMovement,
    Fact,
    Fee,
    MovementCategory,
    Payment,
    Refund,
)
from hub.domain.mapping import FieldType, KindSchema, spec
from hub.domain.money import Money
from hub.spi.mapper import (
    FactMapper,
    Handler,
    MapContext,
    SourceEvent,
    customer_fact,
    money,
    payout_fact,
    text,
)
from hub.spi.parser import PayloadParser

PROCESSOR = "stripe"

_COMMON: dict[str, FieldType] = {"id": "text", "currency": "text", "date": "date"}


def _defaults(root: str) -> dict[str, Any]:
    return {
        "id": spec(f"{root}.id"),
        "currency": spec(f"{root}.currency"),
        "date": spec(f"{root}.created", "iso_to_date"),
    }


SCHEMA = {
    "payment": KindSchema(
        root="charge",
        fields={**_COMMON, "gross": "money", "order_ref": "text", "description": "text"},
        defaults={
            **_defaults("charge"),
            "gross": spec("charge.amount", "cents"),
            "order_ref": spec("charge.metadata.order_id"),
            "description": spec("charge.description"),
        },
        required=frozenset({"id", "currency", "gross", "date"}),
    ),
    "refund": KindSchema(
        root="refund",
        fields={
            **_COMMON,
            "amount": "money",
            "status": "text",
            "payment_ref": "text",
            "order_ref": "text",
        },
        defaults={
            **_defaults("refund"),
            "amount": spec("refund.amount", "cents"),
            "status": spec("refund.status", default="succeeded"),
            "payment_ref": spec("refund.charge"),
            "order_ref": spec("refund.metadata.order_id"),
        },
        required=frozenset({"id", "currency", "amount", "date"}),
    ),
    "dispute": KindSchema(
        root="dispute",
        fields={**_COMMON, "amount": "money", "status": "text", "payment_ref": "text"},
        defaults={
            **_defaults("dispute"),
            "amount": spec("dispute.amount", "cents"),
            "status": spec("dispute.status"),
            "payment_ref": spec("dispute.charge"),
        },
        required=frozenset({"id", "currency", "amount", "date"}),
    ),
    "balance_transaction": KindSchema(
        root="balance_transaction",
        fields={
            **_COMMON,
            "amount": "money",
            "fee": "money",
            "net": "money",
            "category": "text",
            "description": "text",
        },
        defaults={
            **_defaults("balance_transaction"),
            "amount": spec("balance_transaction.amount", "cents"),
            "fee": spec("balance_transaction.fee", "cents", default=0),
            "net": spec("balance_transaction.net", "cents"),
            "category": spec("balance_transaction.reporting_category"),
            "description": spec("balance_transaction.description"),
        },
        required=frozenset({"id", "currency", "amount", "net", "date"}),
    ),
    "payout": KindSchema(
        root="payout",
        fields={
            **_COMMON,
            "amount": "money",
            "arrival_date": "date",
            "status": "text",
            "description": "text",
        },
        defaults={
            **_defaults("payout"),
            "amount": spec("payout.amount", "cents"),
            "arrival_date": spec("payout.arrival_date", "utc_date"),  # a date, as UTC midnight
            "status": spec("payout.status"),
            "description": spec("payout.statement_descriptor"),
        },
        required=frozenset({"id", "currency", "amount", "arrival_date", "status", "date"}),
    ),
    "customer": KindSchema(
        root="customer",
        fields={**_COMMON, "name": "text", "email": "text"},
        defaults={
            **_defaults("customer"),
            "name": spec("customer.name"),
            "email": spec("customer.email"),
        },
        required=frozenset({"id", "date"}),
    ),
}


def _object(event: SourceEvent) -> dict[str, Any]:
    obj = event.data["data"]["object"]
    if not isinstance(obj, dict):
        raise ValueError("data.data.object is not an object")
    return obj


def _settled(bt: Any, currency: str) -> tuple[Money | None, str | None]:
    """The settled amount and rate of an expanded balance transaction in another currency."""
    if not isinstance(bt, dict) or str(bt.get("currency", "")).upper() == currency.upper():
        return None, None
    rate = bt.get("exchange_rate")
    return Money.of(bt["amount"], bt["currency"]), None if rate is None else str(rate)


def _payment(event: SourceEvent, ctx: MapContext) -> list[Fact]:
    charge = _object(event)
    f = ctx.fields("payment", charge)
    settled, rate = _settled(charge.get("balance_transaction"), f["currency"])
    bt = charge.get("balance_transaction")
    return [
        Payment(
            key=f"charge:{f['id']}",
            business_date=f["date"],
            processor=PROCESSOR,
            payment_id=f["id"],
            gross=money(f, "gross"),
            settled=settled,
            exchange_rate=rate,
            order_ref=f["order_ref"],
            balance_transaction=bt.get("id") if isinstance(bt, dict) else text(bt),
            description=f["description"],
        )
    ]


def _refund_fact(refund: dict[str, Any], ctx: MapContext) -> Refund:
    f = ctx.fields("refund", refund)
    settled, _ = _settled(refund.get("balance_transaction"), f["currency"])
    return Refund(
        key=f"refund:{f['id']}",
        business_date=f["date"],
        processor=PROCESSOR,
        refund_id=f["id"],
        status=f["status"],
        amount=money(f, "amount"),
        settled=None if settled is None else -settled,
        order_ref=f["order_ref"],
        payment_ref=f["payment_ref"],
    )


def _refund(event: SourceEvent, ctx: MapContext) -> list[Fact]:
    return [_refund_fact(_object(event), ctx)]


def _charge_refunded(event: SourceEvent, ctx: MapContext) -> list[Fact]:
    """``charge.refunded`` carries the charge; its refunds (when listed) are the facts, keyed as
    ``refund.created`` keys them, so receiving both books each refund once."""
    refunds = (_object(event).get("refunds") or {}).get("data") or []
    return [_refund_fact(refund, ctx) for refund in refunds]


def _dispute(movement: DisputeMovement) -> Handler:
    def handle(event: SourceEvent, ctx: MapContext) -> list[Fact]:
        dispute = _object(event)
        f = ctx.fields("dispute", dispute)
        settled: Money | None = None
        for bt in dispute.get("balance_transactions") or []:
            moved, _ = _settled(bt, f["currency"])
            if moved is not None and (moved.minor < 0) == (movement == "withdrawn"):
                settled = Money.of(abs(moved.minor), moved.currency)
        return [
            Dispute(
                key=f"dispute:{f['id']}:{movement}",
                business_date=f["date"],
                processor=PROCESSOR,
                dispute_id=f["id"],
                amount=money(f, "amount"),
                settled=settled,
                movement=movement,
                status=f["status"] or "unknown",
                payment_ref=f["payment_ref"],
            )
        ]

    return handle


_FEE_ONLY = {
    "charge",
    "refund",
    "dispute",
    "dispute_reversal",
    "payout",
    "payout_reversal",
    "refund_failure",
    "partial_capture_reversal",
}
"""Categories whose amount another event books (charge, refund, dispute, payout): only the fee."""


CATEGORIES: dict[str, MovementCategory] = {
    "charge": "charge",
    "payment": "charge",
    "refund": "refund",
    "refund_failure": "refund",
    "partial_capture_reversal": "refund",
    "dispute": "dispute",
    "dispute_reversal": "dispute",
    "fee": "fee",
    "stripe_fee": "fee",
    "application_fee": "fee",
    "payout": "payout",
    "payout_reversal": "payout",
    "payout_cancel": "payout",
    "payout_failure": "payout",
}
"""Stripe's ``reporting_category`` (or ``type``) → the canonical category of a balance movement;
anything else (reserved funds, transfers, corrections, …) is an ``adjustment``."""

RESERVE_CATEGORIES = frozenset({"risk_reserved_funds", "reserve_transaction", "reserved_funds"})
"""Stripe's reporting categories (and types) of funds it holds back or releases: ``Adjustment``
facts with ``reserve`` set, booked to the reserves asset account."""


def _balance_transaction(event: SourceEvent, ctx: MapContext) -> list[Fact]:
    bt = _object(event)
    f = ctx.fields("balance_transaction", bt)
    payout = text(event.data.get("payout"))
    category = f["category"] or bt.get("type")
    fee, amount, net = money(f, "fee"), money(f, "amount"), money(f, "net")
    movement = BalanceMovement(
        key=f"movement:{f['id']}",
        business_date=f["date"],
        processor=PROCESSOR,
        movement_id=f["id"],
        payout_id=payout,
        category=CATEGORIES.get(str(category or ""), "adjustment"),
        amount=amount,
        fee=fee,
        net=net,
        description=text(category),
    )
    return [*_booked(f, category, payout, fee, amount, net), movement]


def _booked(
    f: Mapping[str, Any], category: Any, payout: str | None, fee: Money, amount: Money, net: Money
) -> list[Fact]:
    """What a balance transaction books: its fee, or a fee or adjustment of its own."""
    if category in _FEE_ONLY:
        if fee.minor == 0:
            return []
        return [
            Fee(
                key=f"fee:{f['id']}",
                business_date=f["date"],
                processor=PROCESSOR,
                fee_id=f["id"],
                amount=fee,
                description=f["description"],
                payout_id=payout,
            )
        ]
    if category == "fee":
        return [
            Fee(
                key=f"fee:{f['id']}",
                business_date=f["date"],
                processor=PROCESSOR,
                fee_id=f["id"],
                amount=-net,
                description=f["description"],
                payout_id=payout,
            )
        ]
    return [
        Adjustment(
            key=f"adjustment:{f['id']}",
            business_date=f["date"],
            processor=PROCESSOR,
            adjustment_id=f["id"],
            amount=amount,
            fee=fee,
            description=f["description"] or category,
            payout_id=payout,
            reserve=category in RESERVE_CATEGORIES,
        )
    ]


def _payout(event: SourceEvent, ctx: MapContext) -> list[Fact]:
    settles = event.data.get("balance_transactions")  # a pulled payout, wrapped with its list
    return [payout_fact(ctx.fields("payout", _object(event)), PROCESSOR, settles)]


def _customer(event: SourceEvent, ctx: MapContext) -> list[Fact]:
    return [customer_fact(ctx.fields("customer", _object(event)))]


class StripeMapper(FactMapper):
    """Charges, refunds, disputes, balance transactions (fees), payouts and customers."""

    schema = SCHEMA
    parser: ClassVar[PayloadParser | None] = StripeParser()
    handlers: ClassVar[Mapping[str, Handler]] = {
        "stripe.charge.succeeded": _payment,
        "stripe.charge.captured": _payment,
        "stripe.charge.refunded": _charge_refunded,
        "stripe.refund.created": _refund,
        "stripe.refund.updated": _refund,
        "stripe.charge.refund.updated": _refund,
        "stripe.charge.dispute.created": _dispute("none"),
        "stripe.charge.dispute.updated": _dispute("none"),
        "stripe.charge.dispute.closed": _dispute("none"),
        "stripe.charge.dispute.funds_withdrawn": _dispute("withdrawn"),
        "stripe.charge.dispute.funds_reinstated": _dispute("reinstated"),
        "stripe.balance_transaction": _balance_transaction,
        "stripe.payout.created": _payout,
        "stripe.payout.updated": _payout,
        "stripe.payout.paid": _payout,
        "stripe.payout.failed": _payout,
        "stripe.payout.canceled": _payout,
        "stripe.customer.created": _customer,
        "stripe.customer.updated": _customer,
    }
