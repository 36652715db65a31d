"""Order-to-cash: orders and the payments that name them (by order id, across sources of the
tenant: a Stripe charge's ``metadata.order_id`` may name a WooCommerce order).

- ``payment_without_order``: a payment names an order the log does not hold (a payment naming no
  order is itself the sale, as in the ledger, and is not an exception);
- ``order_unpaid``: an order the shop calls open (owed) whose payments do not cover its total;
  it is an exception only once ``payment_terms_days`` have passed since the order's date (its
  ``due_date``, evaluated when read, like a missing deposit).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from projections.reconciliation.rows import ExceptionRow, new_exception
from projections.reconciliation.settings import MatchSettings


@dataclass(frozen=True)
class StoredOrder:
    """An order row as stored."""

    source: str
    order_id: str
    status: str
    total_minor: int
    business_date: date


@dataclass(frozen=True)
class StoredPayment:
    """A payment row as stored (``gross_minor`` in the order's currency)."""

    source: str
    payment_id: str
    order_ref: str | None
    gross_minor: int


def order_exceptions(
    orders: Sequence[StoredOrder], payments: Sequence[StoredPayment], settings: MatchSettings
) -> list[ExceptionRow]:
    """The order-to-cash exceptions of one tenant's orders and payments in one currency."""
    known = {order.order_id for order in orders}
    paid: dict[str, int] = defaultdict(int)
    rows: list[ExceptionRow] = []
    for payment in payments:
        if payment.order_ref is None:
            continue
        paid[payment.order_ref] += payment.gross_minor
        if payment.order_ref not in known:
            rows.append(
                new_exception(
                    "payment_without_order", payment.source, payment.payment_id,
                    payment.gross_minor, None,
                    f"payment {payment.payment_id} names order {payment.order_ref}, "
                    "which is not in the log",
                )
            )  # fmt: skip
    for order in orders:
        if order.status != "open" or paid[order.order_id] >= order.total_minor:
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
    return rows
