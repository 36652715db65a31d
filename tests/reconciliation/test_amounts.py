"""Order amount differences: an order whose payments do not add up to its total is an
``amount_mismatch`` on the order, with the cause (rounding, currency, partial refund) in its
detail when known."""

from __future__ import annotations

import copy
from datetime import date
from typing import Any

import pytest

from hub.domain.money import Money
from hub.store import EventStore
from projections.reconciliation.orders import (
    StoredOrder,
    StoredPayment,
    StoredRefund,
    order_exceptions,
)
from projections.reconciliation.settings import MatchSettings
from tests.ledger.harness import new, sample
from tests.ledger.scenarios import STRIPE, STRIPE_SOURCE, charge, stripe_event
from tests.reconciliation.harness import LATE, Recon
from tests.reconciliation.scenarios import SHOP

T = 1199980800  # 2008-01-10 16:00 UTC, the sample order's day
DAY = date(2008, 1, 10)


def _cause(detail: str) -> str:
    return detail.rsplit("cause: ", 1)[1]


@pytest.mark.parametrize(
    ("payments", "refunds", "lines", "cause"),
    [
        ([StoredPayment("s", "p1", "o", 9_999)], [], 1, "rounding"),
        ([StoredPayment("s", "p1", "o", 10_003)], [], 3, "rounding"),
        ([StoredPayment("s", "p1", "o", 10_004)], [], 3, "unknown"),
        ([StoredPayment("s", "p1", "o", 9_000, "EUR")], [], 1, "currency"),
        ([StoredPayment("s", "p1", "o", 12_500)], [StoredRefund("processor", None, "p1", 2_500)],
         1, "partial_refund"),
        ([StoredPayment("s", "p1", "o", 12_500)], [StoredRefund("order", "o", None, 2_500),
                                                   StoredRefund("processor", "o", None, 2_500)],
         1, "partial_refund"),
        ([StoredPayment("s", "p1", "o", 12_500)], [StoredRefund("processor", None, "p1", 2_000)],
         1, "unknown"),
    ],
)  # fmt: skip
def test_a_difference_is_classified_by_its_cause(
    payments: list[StoredPayment], refunds: list[StoredRefund], lines: int, cause: str
) -> None:
    order = StoredOrder("shop", "o", "paid", 10_000, DAY, lines)
    [row] = order_exceptions([order], payments, MatchSettings(), refunds)
    paid = sum(p.gross_minor for p in payments)
    assert (row.kind, row.reference, row.amount_minor) == ("amount_mismatch", "o", 10_000)
    assert row.difference_minor == paid - 10_000
    assert _cause(row.detail) == cause


def test_equal_payments_or_an_unpaid_open_order_are_no_amount_difference() -> None:
    settled = StoredOrder("shop", "a", "paid", 10_000, DAY, 1)
    owed = StoredOrder("shop", "b", "open", 10_000, DAY, 1)
    unpaid = StoredOrder("shop", "c", "paid", 10_000, DAY, 1)
    payments = [StoredPayment("s", "p1", "a", 10_000), StoredPayment("s", "p2", "b", 4_000)]
    rows = order_exceptions([settled, owed, unpaid], payments, MatchSettings())
    assert [(r.kind, r.reference) for r in rows] == [("order_unpaid", "b")]


def _order(order_id: int) -> Any:
    order = {**sample("shopify", "shopify.orders.create"), "id": order_id,
             "name": f"#{order_id}", "financial_status": "paid"}  # fmt: skip
    return new(SHOP, f"o-{order_id}", "shopify.orders.create", order, order["created_at"])


def _charge(charge_id: str, amount: int, order_ref: str) -> Any:
    obj = charge(charge_id, amount, T, metadata={"order_id": order_ref})
    return new(STRIPE_SOURCE, f"evt_{charge_id}", "stripe.charge.succeeded",
               stripe_event("charge.succeeded", obj, T), "2008-01-10T16:00:00+00:00")  # fmt: skip


def _refund(refund_id: str, charge_id: str, amount: int) -> Any:
    obj = {**copy.deepcopy(STRIPE["refund"]), "id": refund_id, "charge": charge_id,
           "amount": amount, "status": "succeeded", "created": T + 3600,
           "balance_transaction": None, "metadata": {}}  # fmt: skip
    event = stripe_event("refund.created", obj, T + 3600)
    return new(STRIPE_SOURCE, f"evt_{refund_id}", "stripe.refund.created", event,
               "2008-01-10T17:00:00+00:00")  # fmt: skip


async def test_order_amount_differences_through_the_projection(
    store: EventStore, recon: Recon
) -> None:
    orders = [_order(n) for n in (2001, 2002, 2003, 2004)]
    total = Money.parse(orders[0].data["total_price"], "USD").minor
    events = [
        *orders,
        _charge("ch_r", total + 500, "2001"),
        _refund("re_r", "ch_r", 500),
        _charge("ch_1", total - 1, "2002"),
        _charge("ch_x", total - 5000, "2003"),
        _charge("ch_ok", total, "2004"),
    ]
    await recon.run(store, events[::-1])  # refunds and payments before their orders
    found = {
        e["reference"]: e
        for e in await recon.exceptions(as_of=LATE)
        if e["kind"] == "amount_mismatch"
    }
    assert set(found) == {"2001", "2002", "2003"}
    assert {ref: _cause(e["detail"]) for ref, e in found.items()} == {
        "2001": "partial_refund",
        "2002": "rounding",
        "2003": "unknown",
    }
    assert [found[r]["difference_minor"] for r in ("2001", "2002", "2003")] == [500, -1, -5000]
    assert all(e["currency"] == "USD" and e["amount_minor"] == total for e in found.values())


def _foreign_charge(charge_id: str, eur: int, usd: int, order_ref: str) -> Any:
    """A charge presented in EUR, settled in USD (its expanded balance transaction)."""
    bt = {**copy.deepcopy(STRIPE["balance_transaction"]), "id": f"txn_{charge_id}",
          "amount": usd, "currency": "usd", "exchange_rate": 1.08, "fee": 0, "net": usd,
          "fee_details": [], "created": T}  # fmt: skip
    obj = charge(charge_id, eur, T, currency="eur", metadata={"order_id": order_ref},
                 balance_transaction=bt)  # fmt: skip
    return new(STRIPE_SOURCE, f"evt_{charge_id}", "stripe.charge.succeeded",
               stripe_event("charge.succeeded", obj, T), "2008-01-10T16:00:00+00:00")  # fmt: skip


async def test_a_payment_in_another_currency_is_compared_with_its_order_where_it_settled(
    store: EventStore, recon: Recon
) -> None:
    orders = [_order(n) for n in (3001, 3002)]
    total = Money.parse(orders[0].data["total_price"], "USD").minor
    events = [
        _foreign_charge("ch_fx", total * 9 // 10, total - 7, "3001"),  # settled 7 cents short
        _foreign_charge("ch_fx_ok", total * 9 // 10, total, "3002"),
        *orders,  # the orders after their payments
    ]
    await recon.run(store, events[:1], events[1:2], events[2:])
    found = await recon.exceptions(as_of=LATE)
    assert [(e["kind"], e["reference"], e["currency"], e["difference_minor"]) for e in found] == [
        ("amount_mismatch", "3001", "USD", -7)
    ]
    assert _cause(found[0]["detail"]) == "currency"
    rows = await recon.conn.fetch(
        "SELECT order_id, paid_minor FROM ledgerhub_views.reconciliation_orders "
        "WHERE order_id IN ('3001', '3002')"
    )
    paid = {row["order_id"]: row["paid_minor"] for row in rows}
    assert paid == {"3001": total - 7, "3002": total}  # the analysts' view counts it the same
