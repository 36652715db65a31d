"""What reconciliation reads from an event: payouts, bank lines, balance transactions of a
payout, and analysts' resolutions.

Payouts and bank lines come from the connectors' mappers (the same canonical facts the ledger
books, so a mapping fix and a rebuild re-derive both). Balance transactions are read through the
connector's declarative ``balance_transaction`` mapping, because the canonical facts keep only
what the ledger books (a Stripe charge's balance transaction becomes just its fee). Events that
cannot be mapped are left out here; the ledger lists them as unmapped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from hub.domain.events import RecordedEvent
from hub.domain.facts import BankLine, Payment, Payout, Refund, Sale
from hub.errors import Unmappable
from hub.spi.config import BooksConfig
from hub.spi.mapper import MapContext, SourceEvent
from projections.reconciliation.composition import Composition, from_shopify_summary

RESOLVED = "reconciliation.exception.resolved"
REOPENED = "reconciliation.exception.reopened"
RESOLUTION_SOURCE_PREFIX = "reconciliation:"
"""Resolutions count only from sources ``reconciliation:<who>`` (an ingest key for a processor
cannot resolve exceptions by posting that event type under its own source)."""


@dataclass(frozen=True)
class PayoutRecord:
    """A payout as reconciliation keeps it."""

    payout: Payout
    summary: Composition | None


@dataclass(frozen=True)
class BankRecord:
    """A bank statement line."""

    line: BankLine


@dataclass(frozen=True)
class OrderRecord:
    """An order (a ``Sale``) as the shop states it."""

    sale: Sale


@dataclass(frozen=True)
class PaymentRecord:
    """Money a processor collected, maybe naming the order it pays."""

    payment: Payment


@dataclass(frozen=True)
class RefundRecord:
    """Money given back for an order or a payment (explains an order's amount difference)."""

    refund: Refund


@dataclass(frozen=True)
class MovementRecord:
    """A balance transaction as the processor reports it: what it did to the processor balance
    (``net_minor``, as the processor states it) on its business date, and the payout carrying it
    (None: not paid out yet)."""

    txn_id: str
    payout_id: str | None
    currency: str
    category: str
    amount_minor: int
    fee_minor: int
    net_minor: int
    business_date: date
    processor: str


@dataclass(frozen=True)
class ResolutionRecord:
    """An analyst resolving (or reopening) an exception, with the reason."""

    exception_id: str
    resolved: bool
    reason: str


Record = (
    PayoutRecord
    | BankRecord
    | OrderRecord
    | PaymentRecord
    | RefundRecord
    | MovementRecord
    | ResolutionRecord
)


def _wrapped(data: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    inner = data.get(name)
    return inner if isinstance(inner, dict) and len(data) == 1 else data


def records(event: RecordedEvent, books: BooksConfig) -> list[Record]:
    """The records ``event`` gives (none for events reconciliation does not use)."""
    if event.type in (RESOLVED, REOPENED):
        return _resolution(event)
    connection = books.connection(event.source)
    if connection is None:
        return []
    mapper = books.mappers[connection.connector]
    context = MapContext(connection.mapping, books.tenant(event.tenant).timezone)
    source = SourceEvent(event.type, event.source, event.external_id, event.occurred_at, event.data)
    try:
        facts = mapper.map(source, context) or []
        if event.type.endswith(".balance_transaction"):
            movements: list[Record] = [_movement(connection.connector, event, context)]
            payments: list[Record] = [PaymentRecord(f) for f in facts if isinstance(f, Payment)]
            refunds: list[Record] = [RefundRecord(f) for f in facts if isinstance(f, Refund)]
            return [*movements, *payments, *refunds]
    except Unmappable:
        return []
    except (KeyError, TypeError, ValueError):
        return []
    found: list[Record] = []
    for fact in facts:
        if isinstance(fact, Payout):
            found.append(PayoutRecord(fact, _summary(connection.connector, event, fact)))
        elif isinstance(fact, BankLine):
            found.append(BankRecord(fact))
        elif isinstance(fact, Sale):
            found.append(OrderRecord(fact))
        elif isinstance(fact, Payment):
            found.append(PaymentRecord(fact))
        elif isinstance(fact, Refund):
            found.append(RefundRecord(fact))
    return found


def _summary(connector: str, event: RecordedEvent, payout: Payout) -> Composition | None:
    if connector != "shopify":
        return None
    summary = _wrapped(event.data, "payout").get("summary")
    if not isinstance(summary, dict):
        return None
    return from_shopify_summary(summary, payout.amount.currency)


def _movement(connector: str, event: RecordedEvent, context: MapContext) -> MovementRecord:
    if connector == "stripe":
        obj = event.data["data"]["object"]
        payout = event.data.get("payout")
    else:
        obj = _wrapped(event.data, "transaction")
        payout = None
    f = context.fields("balance_transaction", obj)
    payout = payout or f.get("payout_id")
    amount, net = int(f["amount"]), int(f["net"])
    fee = int(f["fee"]) if f.get("fee") is not None else amount - net
    return MovementRecord(
        txn_id=str(f["id"]),
        payout_id=None if payout is None else str(payout),
        currency=str(f["currency"]).upper(),
        category=str(f.get("category") or f.get("type") or obj.get("type") or "adjustment"),
        amount_minor=amount,
        fee_minor=fee,
        net_minor=net,
        business_date=f["date"],
        processor=connector,
    )


def _resolution(event: RecordedEvent) -> list[Record]:
    if not event.source.startswith(RESOLUTION_SOURCE_PREFIX):
        return []
    exception_id = event.data.get("exception_id")
    reason = event.data.get("reason")
    if not isinstance(exception_id, str) or not isinstance(reason, str):
        return []
    return [ResolutionRecord(exception_id, event.type == RESOLVED, reason)]
