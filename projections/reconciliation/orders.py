"""Order-to-cash: orders and the payments that name them (by order id, across sources of the
tenant: a Stripe charge's ``metadata.order_id`` may name a WooCommerce order).

- ``payment_without_order``: a payment names an order the log does not hold (a payment naming no
  order is itself the sale, as in the ledger, and is not an exception);
- ``order_unpaid``: an order the shop calls open (owed) whose payments do not cover its total;
  it is an exception only once ``payment_terms_days`` have passed since the order's date (its
  ``due_date``, evaluated when read, like a missing deposit);
- ``amount_mismatch`` (reference: the order id): any other order that has payments whose sum is
  not its total (``difference_minor`` = paid - total), with the cause in ``detail`` when known:
  ``rounding`` (at most one minor unit per order line, or one for the total), ``currency`` (a
  payment settled in another currency than the order's), ``partial_refund`` (the refunds naming
  the order or its payments account for the difference: paid - refunded = total), else
  ``unknown``;
- ``document_missing`` (only for a tenant with a ``sync`` target): a booked order, or a payment
  naming no order, whose accounting document (its key computed as the accounting projection
  does) has no ``accounting.document.synced`` from the target (or was voided since);
  due ``document_grace_days`` after its date, evaluated when read.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from projections.reconciliation.rows import ExceptionRow, new_exception
from projections.reconciliation.settings import MatchSettings

BOOKED = frozenset({"paid", "open"})
"""Sale statuses the ledger books (so an accounting document is expected)."""


@dataclass(frozen=True)
class StoredOrder:
    """An order row as stored."""

    source: str
    order_id: str
    status: str
    total_minor: int
    business_date: date
    line_count: int = 0
    doc_key: str | None = None
    """The accounting document that covers it (None: the tenant syncs nowhere)."""


@dataclass(frozen=True)
class StoredPayment:
    """A payment row as stored (``gross_minor`` in the order's currency)."""

    source: str
    payment_id: str
    order_ref: str | None
    gross_minor: int
    settled_currency: str | None = None
    """The currency the processor settled it in, when that is not the order's."""
    business_date: date | None = None
    doc_key: str | None = None


@dataclass(frozen=True)
class StoredRefund:
    """A succeeded refund as stored (``side``: ``order`` when the shop states it, ``processor``
    when the processor returned the money; both may describe the same refund)."""

    side: str
    order_ref: str | None
    payment_ref: str | None
    amount_minor: int


def difference_cause(
    order: StoredOrder,
    paid_minor: int,
    payments: Sequence[StoredPayment],
    refunds: Sequence[StoredRefund],
) -> str:
    """Why an order's payments (``paid_minor``) differ from its total: ``currency``,
    ``partial_refund``, ``rounding`` or ``unknown``; ``payments`` and ``refunds`` are those of
    the order."""
    if any(p.settled_currency is not None for p in payments):
        return "currency"
    by_side: dict[str, int] = defaultdict(int)
    for refund in refunds:
        by_side[refund.side] += refund.amount_minor
    if any(paid_minor - refunded == order.total_minor for refunded in by_side.values()):
        return "partial_refund"
    if abs(paid_minor - order.total_minor) <= max(order.line_count, 1):
        return "rounding"
    return "unknown"


def order_exceptions(
    orders: Sequence[StoredOrder],
    payments: Sequence[StoredPayment],
    settings: MatchSettings,
    refunds: Sequence[StoredRefund] = (),
    documents: frozenset[str] | None = None,
    other_orders: frozenset[str] = frozenset(),
) -> list[ExceptionRow]:
    """The order-to-cash exceptions of one tenant's orders, payments and refunds in one
    currency; ``documents``: the keys of the documents the sync target confirmed (None: the
    tenant syncs nowhere, so no ``document_missing``); ``other_orders``: the tenant's orders in
    other currencies (a payment naming one is not without an order: it is compared in that
    order's currency when settled in it)."""
    known = {order.order_id for order in orders} | other_orders
    paid: dict[str, int] = defaultdict(int)
    paying: dict[str, list[StoredPayment]] = defaultdict(list)
    rows: list[ExceptionRow] = []
    for payment in payments:
        if payment.order_ref is None:
            continue
        paid[payment.order_ref] += payment.gross_minor
        paying[payment.order_ref].append(payment)
        if payment.order_ref not in known:
            rows.append(
                new_exception(
                    "payment_without_order", payment.source, payment.payment_id,
                    payment.gross_minor, None,
                    f"payment {payment.payment_id} names order {payment.order_ref}, "
                    "which is not in the log",
                )
            )  # fmt: skip
    order_of = {p.payment_id: p.order_ref for p in payments}
    refunded: dict[str, list[StoredRefund]] = defaultdict(list)
    for refund in refunds:
        ref = refund.order_ref or order_of.get(refund.payment_ref or "")
        if ref is not None:
            refunded[ref].append(refund)
    for order in orders:
        owed = order.status == "open" and paid[order.order_id] < order.total_minor
        if not owed and paying[order.order_id] and paid[order.order_id] != order.total_minor:
            cause = difference_cause(
                order, paid[order.order_id], paying[order.order_id], refunded[order.order_id]
            )  # fmt: skip
            rows.append(
                new_exception(
                    "amount_mismatch", order.source, order.order_id, order.total_minor,
                    paid[order.order_id] - order.total_minor,
                    f"order {order.order_id}: payments of {paid[order.order_id]} for a total "
                    f"of {order.total_minor}; cause: {cause}",
                )
            )  # fmt: skip
        if not owed:
            continue
        due = order.business_date + timedelta(days=settings.payment_terms_days)
        rows.append(
            new_exception(
                "order_unpaid", order.source, order.order_id, order.total_minor,
                paid[order.order_id] - order.total_minor,
                f"order {order.order_id} of {order.business_date} is open with "
                f"{paid[order.order_id]} of {order.total_minor} paid after "
                f"{settings.payment_terms_days} days",
                due,
            )
        )  # fmt: skip
    if documents is not None:
        rows.extend(document_exceptions(orders, payments, documents, settings.document_grace_days))
    return rows


def document_exceptions(
    orders: Sequence[StoredOrder],
    payments: Sequence[StoredPayment],
    confirmed: frozenset[str],
    grace_days: int,
) -> list[ExceptionRow]:
    """``document_missing``: a booked order, or a payment naming no order (itself the sale),
    whose accounting document the target has not confirmed; due ``grace_days`` after its date
    (evaluated when read)."""
    rows: list[ExceptionRow] = []
    for order in orders:
        if order.status not in BOOKED or order.doc_key is None or order.doc_key in confirmed:
            continue
        rows.append(
            new_exception(
                "document_missing", order.source, order.order_id, order.total_minor, None,
                f"order {order.order_id} of {order.business_date}: document {order.doc_key} "
                f"not confirmed by the target {grace_days} days after",
                order.business_date + timedelta(days=grace_days),
            )
        )  # fmt: skip
    for payment in payments:
        day, key = payment.business_date, payment.doc_key
        if payment.order_ref is not None or day is None or key is None or key in confirmed:
            continue
        rows.append(
            new_exception(
                "document_missing", payment.source, payment.payment_id, payment.gross_minor,
                None,
                f"payment {payment.payment_id} of {day}: document {key} not confirmed by "
                f"the target {grace_days} days after",
                day + timedelta(days=grace_days),
            )
        )  # fmt: skip
    return rows
