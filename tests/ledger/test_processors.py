"""Processor money through the books: each clearing account holds exactly what the processor
has not paid out yet, and nothing once the payouts have landed."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from hub.domain.money import to_minor
from hub.store import EventStore
from tests.ledger.harness import Books, ledger_running, new
from tests.ledger.scenarios import STRIPE_SOURCE, stripe_scenario

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SHOP = "shopify:acme-store"


def _role(tb_lines: list[dict[str, Any]], role: str, currency: str = "USD") -> int:
    return sum(
        line["balance_minor"]
        for line in tb_lines
        if line["role"] == role and line["currency"] == currency
    )


async def _tb(books: Books) -> list[dict[str, Any]]:
    from projections.ledger.queries import trial_balance

    tb = await trial_balance(books.conn, "default")
    assert tb["balanced"], tb
    return list(tb["lines"])


async def test_stripe_clearing_holds_what_is_not_paid_out_then_zero(
    dsn: str, store: EventStore, books: Books
) -> None:
    scenario = stripe_scenario()
    unpaid = sum(bt["net"] for bt in scenario.balance_transactions)
    async with ledger_running(dsn):
        await store.append(scenario.before_payout)
        await books.settle()
        lines = await _tb(books)
        assert _role(lines, "clearing:stripe") == unpaid
        assert _role(lines, "bank:checking") == 0
        assert _role(lines, "fees") == sum(bt["fee"] for bt in scenario.balance_transactions)
        await store.append(scenario.payout_in_transit)  # not money in the bank yet
        await books.settle()
        assert _role(await _tb(books), "clearing:stripe") == unpaid
        await store.append(scenario.payout_paid)
        await books.settle()
        lines = await _tb(books)
    assert _role(lines, "clearing:stripe") == 0
    assert _role(lines, "bank:checking") == unpaid == scenario.payout_amount
    payout = await books.entry(f"{STRIPE_SOURCE}/payout:{scenario.payout_id}")
    assert payout is not None
    positions = await store.read_after(0, limit=100)
    by_id = {e.external_id: e.position for e in positions}
    assert list(payout["positions"]) == sorted(
        by_id[e.external_id] for e in [*scenario.payout_in_transit, *scenario.payout_paid]
    )


def _shopify(name: str) -> Any:
    return json.loads((FIXTURES / "shopify" / name).read_text())


async def test_shopify_clearing_follows_the_payout_transactions_then_zero(
    dsn: str, store: EventStore, books: Books
) -> None:
    transactions = _shopify("payouts_transactions.json")["transactions"]
    payout = _shopify("payout.json")["payout"]
    events = [
        new(SHOP, f"tx-{tx['id']}", "shopify.balance_transaction", tx, tx["processed_at"])
        for tx in transactions
    ]
    events.append(new(SHOP, "payout-1", "shopify.payout", payout, "2019-11-12T12:00:00+00:00"))
    # Shopify's own balance: every transaction's net, the payout's own (negative) one included
    balance = sum(to_minor(Decimal(tx["net"]), "USD") for tx in transactions)
    settled = sum(
        to_minor(Decimal(tx["net"]), "USD") for tx in transactions if tx["type"] != "payout"
    )
    assert balance == settled - to_minor(Decimal(payout["amount"]), "USD")
    async with ledger_running(dsn):
        await store.append(events)
        await books.settle()
        lines = await _tb(books)
        assert _role(lines, "clearing:shopify") == balance
        assert _role(lines, "bank:checking") == to_minor(Decimal(payout["amount"]), "USD")
        rest = copy.deepcopy(payout)
        rest.update(id=623721859, date="2019-11-19", amount=str(Decimal(balance) / 100))
        await store.append(
            [new(SHOP, "payout-2", "shopify.payout", rest, "2019-11-19T12:00:00+00:00")]
        )
        await books.settle()
        lines = await _tb(books)
    assert _role(lines, "clearing:shopify") == 0
    assert _role(lines, "bank:checking") == settled


async def test_shopify_order_and_its_refund_through_receivable(
    dsn: str, store: EventStore, books: Books
) -> None:
    order = _shopify("order.json")["order"]
    refund = _shopify("refund.json")["refund"]
    async with ledger_running(dsn):
        await store.append(
            [
                new(SHOP, "o-1", "shopify.orders.create", order, order["created_at"]),
                new(SHOP, "r-1", "shopify.refunds.create", refund, refund["created_at"]),
            ]
        )
        await books.settle()
        lines = await _tb(books)
    total = to_minor(Decimal(order["total_price"]), "USD")
    refunded = sum(to_minor(Decimal(t["amount"]), "USD") for t in refund["transactions"])
    assert _role(lines, "receivable") == total - refunded
    # the fixture's refund lines state no ``total_tax``: the refund gives back its share of
    # the order's tax, 209.00 * 11.94 / 409.94 = 6.087 -> 6.09 (free shipping: none of that)
    tax = to_minor(Decimal(order["total_tax"]), "USD")
    assert _role(lines, "sales_tax") == -(tax - 609)
    assert _role(lines, "revenue") == -to_minor(Decimal(order["total_line_items_price"]), "USD")
    assert _role(lines, "refunds") == refunded - 609


async def test_a_shopify_refund_whose_lines_state_their_tax_gives_back_that_tax(
    dsn: str, store: EventStore, books: Books
) -> None:
    order = _shopify("order.json")["order"]
    refund = copy.deepcopy(_shopify("refund.json")["refund"])
    for line in refund["refund_line_items"]:
        line.update(subtotal="199.00", total_tax="3.98")
    refund["order_adjustments"] = [
        {"kind": "shipping_refund", "amount": "-5.00", "tax_amount": "-0.30"}
    ]
    refund["transactions"][0]["amount"] = "411.26"  # 398.00 + 7.96 tax + 5.00 + 0.30 tax
    async with ledger_running(dsn):
        await store.append(
            [
                new(SHOP, "o-1", "shopify.orders.create", order, order["created_at"]),
                new(SHOP, "r-1", "shopify.refunds.create", refund, refund["created_at"]),
            ]
        )
        await books.settle()
        lines = await _tb(books)
    assert _role(lines, "sales_tax") == -(1194 - 796 - 30)
    assert _role(lines, "shipping") == 500  # more shipping given back than this order charged
    assert _role(lines, "refunds") == 39800
