"""A processor's reserve is the merchant's money held back: the ledger keeps it on an asset
account (1250 Processor reserves), never as an expense or income."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from hub.domain.money import to_minor
from hub.store import EventStore
from tests.ledger.harness import Books, ledger_running, new

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SHOP = "shopify:acme-store"
STRIPE = "stripe:acct_test"


def _roles(lines: list[dict[str, Any]]) -> dict[str, int]:
    found: dict[str, int] = {}
    for line in lines:
        found[line["role"]] = found.get(line["role"], 0) + line["balance_minor"]
    return found


async def _tb(books: Books) -> dict[str, int]:
    from projections.ledger.queries import trial_balance

    tb = await trial_balance(books.conn, "default")
    assert tb["balanced"], tb
    return _roles(list(tb["lines"]))


async def test_shopify_reserve_holds_and_releases_stay_on_the_reserves_asset(
    dsn: str, store: EventStore, books: Books
) -> None:
    transactions = json.loads((FIXTURES / "shopify" / "payouts_transactions.json").read_text())
    reserves = [tx for tx in transactions["transactions"] if tx["type"] == "reserve"]
    assert reserves, "Shopify's published payout transactions hold a reserve"
    held = sum(to_minor(Decimal(tx["net"]), "USD") for tx in reserves)
    async with ledger_running(dsn):
        await store.append(
            [new(SHOP, f"tx-{tx['id']}", "shopify.balance_transaction", tx, tx["processed_at"])
             for tx in reserves]
        )  # fmt: skip
        await books.settle()
        roles = await _tb(books)
    assert roles.get("reserves") == -held  # what left the Shopify balance sits in reserve
    assert roles.get("clearing:shopify") == held
    assert roles.get("adjustments", 0) == 0  # nothing booked to an expense


async def test_a_stripe_reserve_is_booked_to_the_reserves_asset_and_released_from_it(
    dsn: str, store: EventStore, books: Books
) -> None:
    def bt(bt_id: str, amount: int, created: int) -> dict[str, Any]:
        obj = {"id": bt_id, "object": "balance_transaction", "amount": amount, "fee": 0,
               "net": amount, "currency": "usd", "created": created, "type": "adjustment",
               "reporting_category": "risk_reserved_funds"}  # fmt: skip
        return {"data": {"object": obj}}

    hold, release = bt("txn_hold", -5_000, 1_790_000_000), bt("txn_rel", 2_000, 1_790_500_000)
    async with ledger_running(dsn):
        await store.append(
            [new(STRIPE, "txn_hold", "stripe.balance_transaction", hold, "2026-09-21T12:00:00Z")]
        )
        await books.settle()
        assert (await _tb(books)).get("reserves") == 5_000
        await store.append(
            [new(STRIPE, "txn_rel", "stripe.balance_transaction", release, "2026-09-27T12:00:00Z")]
        )
        await books.settle()
        roles = await _tb(books)
    assert roles.get("reserves") == 3_000
    assert roles.get("clearing:stripe") == -3_000
    assert roles.get("adjustments", 0) == 0
