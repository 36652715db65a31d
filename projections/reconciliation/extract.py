"""What reconciliation reads from an event: the canonical facts its connection's mapper gives
(payouts, bank lines, orders, payments, refunds, balance movements), and analysts' resolutions.

Only facts: the same ones the ledger books (so a mapping fix and a rebuild re-derive both), plus
the informational ``BalanceMovement`` facts the ledger skips. Nothing here knows a processor or
reads a payload, so a new processor's connector (its mapper) is all reconciliation needs. Events
that cannot be mapped are left out here; the ledger lists them as unmapped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from hub.domain.events import RecordedEvent
from hub.domain.facts import BalanceMovement, BankLine, Fact, Payment, Payout, Refund, Sale
from hub.errors import Unmappable
from hub.spi.config import BooksConfig

RESOLVED = "reconciliation.exception.resolved"
REOPENED = "reconciliation.exception.reopened"
RESOLUTION_SOURCE_PREFIX = "reconciliation:"
"""Resolutions count only from sources ``reconciliation:<who>`` (an ingest key for a processor
cannot resolve exceptions by posting that event type under its own source)."""


@dataclass(frozen=True)
class PayoutRecord:
    """A payout (with the processor's statement of its composition, when it gives one)."""

    payout: Payout


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
    (``net``, as the processor states it) on its business date, and the payout carrying it
    (None: not paid out yet)."""

    movement: BalanceMovement


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


def records(event: RecordedEvent, books: BooksConfig) -> list[Record]:
    """The records ``event`` gives (none for events reconciliation does not use)."""
    if event.type in (RESOLVED, REOPENED):
        return _resolution(event)
    return fact_records(facts_of(event, books))


def facts_of(event: RecordedEvent, books: BooksConfig) -> list[Fact]:
    """``event``'s canonical facts through its connection's mapper (none when no installed
    connector maps it, or it cannot be mapped: the ledger lists those as unmapped)."""
    try:
        return list(books.map(event) or [])
    except (Unmappable, KeyError, TypeError, ValueError):
        return []


def fact_records(facts: Iterable[Fact]) -> list[Record]:
    """The records of canonical facts (the kinds reconciliation does not use are left out)."""
    found: list[Record] = []
    for fact in facts:
        match fact:
            case Payout():
                found.append(PayoutRecord(fact))
            case BankLine():
                found.append(BankRecord(fact))
            case Sale():
                found.append(OrderRecord(fact))
            case Payment():
                found.append(PaymentRecord(fact))
            case Refund():
                found.append(RefundRecord(fact))
            case BalanceMovement():
                found.append(MovementRecord(fact))
    return found


def _resolution(event: RecordedEvent) -> list[Record]:
    if not event.source.startswith(RESOLUTION_SOURCE_PREFIX):
        return []
    exception_id = event.data.get("exception_id")
    reason = event.data.get("reason")
    if not isinstance(exception_id, str) or not isinstance(reason, str):
        return []
    return [ResolutionRecord(exception_id, event.type == RESOLVED, reason)]
