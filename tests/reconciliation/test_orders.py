"""Order-to-cash: payments naming orders, open orders past their terms, and one order's chain
over HTTP (order → payment → payout → bank line)."""

from __future__ import annotations

import copy
from datetime import date, timedelta
from typing import Any

import aiohttp

from hub.api.context import HubContext
from hub.domain.money import Money
from hub.store import EventStore
from tests.api.conftest import bearer, make_key
from tests.ledger.harness import new, sample
from tests.ledger.scenarios import (
    STRIPE,
    STRIPE_SOURCE,
    balance_transaction,
    charge,
    stripe_event,
)
from tests.ledger.test_http import api, hub
from tests.reconciliation.harness import LATE, Recon
from tests.reconciliation.scenarios import SHOP, bank_line

__all__ = ["api", "hub"]

T = 1199980800  # 2008-01-10 16:00 UTC, the sample order's day


def _order(order_id: int, status: str) -> Any:
    order = {**sample("shopify", "shopify.orders.create"), "id": order_id,
             "name": f"#{order_id}", "financial_status": status}  # fmt: skip
    return new(SHOP, f"o-{order_id}", "shopify.orders.create", order, order["created_at"])


def _charge(charge_id: str, amount: int, order_ref: str) -> Any:
    obj = charge(charge_id, amount, T, metadata={"order_id": order_ref},
                 balance_transaction=f"txn_{charge_id}")  # fmt: skip
    return new(STRIPE_SOURCE, f"evt_{charge_id}", "stripe.charge.succeeded",
               stripe_event("charge.succeeded", obj, T), "2008-01-10T16:00:00+00:00")  # fmt: skip


async def test_order_to_cash_exceptions_and_one_orders_chain(
    store: EventStore, recon: Recon, hub: HubContext, api: str
) -> None:
    owed, settled = _order(1001, "pending"), _order(1002, "pending")
    total = Money.parse(owed.data["total_price"], "USD").minor
    half = total // 2
    bt = balance_transaction("txn_ch_1", "ch_1", half, 30, "charge", T)
    payout = {**copy.deepcopy(STRIPE["payout"]), "id": "po_1", "amount": half - 30,
              "created": T, "arrival_date": T + 86400, "status": "paid"}  # fmt: skip
    events = [
        owed,
        settled,
        _charge("ch_1", half, "1001"),
        _charge("ch_2", total, "1002"),
        _charge("ch_3", 1234, "404404"),  # names an order the log does not hold
        new(STRIPE_SOURCE, "txn_ch_1", "stripe.balance_transaction",
            {"data": {"object": bt}, "payout": "po_1"}, "2008-01-10T20:00:00+00:00"),
        new(STRIPE_SOURCE, "evt_po_1", "stripe.payout.paid",
            stripe_event("payout.paid", payout, T + 86400), "2008-01-11T06:00:00+00:00"),
        bank_line("B1", "2008-01-11", half - 30, "STRIPE TRANSFER"),
    ]  # fmt: skip
    await recon.run(store, events[::-1])  # payments before their orders
    order_day = date(2008, 1, 10)
    within_terms = await recon.exceptions(as_of=order_day + timedelta(days=10))
    found = await recon.exceptions(as_of=LATE)
    read = bearer(await make_key(hub, "read"))
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{api}/v1/reconciliation/orders/1001", headers=read) as response:
            assert response.status == 200, await response.text()
            chain = await response.json()
        async with http.get(f"{api}/v1/reconciliation/orders/31337", headers=read) as response:
            missing = response.status
    assert {(e["kind"], e["reference"]) for e in within_terms} == {
        ("payment_without_order", "ch_3")
    }
    assert {(e["kind"], e["reference"], e["difference_minor"]) for e in found} == {
        ("payment_without_order", "ch_3", None),
        ("order_unpaid", "1001", half - total),
    }
    assert chain["order"]["order_id"] == "1001"
    assert chain["order"]["status"] == "open"
    assert (chain["order"]["total_minor"], chain["order"]["paid_minor"]) == (total, half)
    [payment] = chain["payments"]
    assert (payment["payment_id"], payment["payout_id"]) == ("ch_1", "po_1")
    assert (payment["payout_status"], payment["bank_line"]) == ("matched", "B1")
    assert chain["document"] is None
    assert [e["kind"] for e in chain["exceptions"]] == ["order_unpaid"]
    assert missing == 404
