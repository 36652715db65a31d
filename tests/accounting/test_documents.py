"""The accounting projection: the documents a target should hold, in each sync mode."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest

from hub.domain.money import to_minor
from hub.store import EventStore
from hub.store.jobs import Jobs
from hub.store.projections import ProjectionStore
from projections.ledger import Ledger
from tests.accounting.harness import documents, running, settle, sums, write_config
from tests.ledger.harness import Books, new
from tests.ledger.scenarios import STRIPE_SOURCE, stripe_scenario

SHOPIFY = Path(__file__).resolve().parents[1] / "fixtures" / "shopify"


def _shopify(name: str) -> Any:
    return orjson.loads((SHOPIFY / name).read_bytes())


async def _ledger_sums(conn: asyncpg.Connection) -> dict[tuple[str, str], int]:
    rows = await conn.fetch(f"SELECT * FROM {Ledger.view('journal')} WHERE tenant = 'default'")
    return sums(rows)


async def _synced(
    dsn: str, store: EventStore, conn: asyncpg.Connection
) -> dict[str, asyncpg.Record]:
    scenario = stripe_scenario()
    async with running(dsn):
        for batch in (scenario.before_payout, scenario.payout_in_transit, scenario.payout_paid):
            await store.append(batch)
        await settle(conn, ("ledger", "accounting"))
    return dict(await documents(conn))


@pytest.mark.parametrize("mode", ["per_transaction", "per_payout", "daily"])
async def test_documents_sum_to_the_ledger_in_every_mode(
    mode: str, dsn: str, store: EventStore, config: Path, books: Books
) -> None:
    write_config(config, mode)
    conn = books.conn
    docs = await _synced(dsn, store, conn)
    assert docs
    assert sums(docs.values()) == await _ledger_sums(conn)  # nothing lost, nothing twice
    for row in docs.values():
        assert sum(row["amounts"]) == 0  # one currency here: each document balances
        assert row["positions"]


async def test_per_transaction_documents_are_keyed_by_fact(
    dsn: str, store: EventStore, config: Path, books: Books
) -> None:
    write_config(config, "per_transaction")
    conn = books.conn
    docs = await _synced(dsn, store, conn)
    kinds = {key.split("/", 1)[1].split(":", 1)[0]: row["kind"] for key, row in docs.items()}
    assert kinds == {
        "charge": "payment",
        "fee": "expense",
        "refund": "credit_note",
        "payout": "transfer",
    }
    assert all(key.startswith(f"{STRIPE_SOURCE}/") for key in docs)
    assert len({row["idempotency_key"] for row in docs.values()}) == len(docs)


async def test_per_payout_journal_totals_the_deposit(
    dsn: str, store: EventStore, config: Path, books: Books
) -> None:
    write_config(config, "per_payout")
    scenario = stripe_scenario()
    conn = books.conn
    docs = await _synced(dsn, store, conn)
    journal = docs[f"payout/{STRIPE_SOURCE}/{scenario.payout_id}"]
    postings = dict(zip(journal["accounts"], journal["amounts"], strict=True))
    assert journal["kind"] == "journal"
    assert postings["1000"] == scenario.payout_amount  # the deposit, to the cent
    fees = sum(bt["fee"] for bt in scenario.balance_transactions)
    assert postings["6000"] == fees  # the fees the payout carried, booked with it
    # what the payout took out of clearing: the deposit plus those fees (the charges, which
    # name no payout, are their own documents and put it there)
    assert postings["1200"] == -(scenario.payout_amount + fees)


async def test_a_rebuild_recomputes_the_same_documents(
    dsn: str, store: EventStore, config: Path, books: Books
) -> None:
    write_config(config, "daily")
    conn = books.conn
    before = await _synced(dsn, store, conn)
    hashes = {key: row["content_hash"] for key, row in before.items()}
    jobs = Jobs(ProjectionStore.over(store))
    job = await jobs.enqueue("accounting", "rebuild")
    async with running(dsn), asyncio.timeout(30):
        while (await jobs.get(job.id)).state not in ("done", "failed"):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        await settle(conn, ("ledger", "accounting"))
    after = await documents(conn)
    generation = await conn.fetchval(
        "SELECT active_generation FROM ledgerhub.projections WHERE name = 'accounting'"
    )
    assert generation > 1  # the rebuild was swapped in
    assert {key: row["content_hash"] for key, row in after.items()} == hashes


async def test_per_payout_journal_totals_the_reference_shopify_payout(
    dsn: str, store: EventStore, config: Path, books: Books
) -> None:
    transactions = _shopify("payouts_transactions.json")
    payout = _shopify("payout.json")["payout"]
    shop = "shopify:acme-store"
    events = [
        new(shop, f"tx-{tx['id']}", "shopify.balance_transaction", tx, tx["processed_at"])
        for tx in transactions["transactions"]
    ]
    events.append(new(shop, "payout-1", "shopify.payout", payout, "2019-11-12T12:00:00+00:00"))
    write_config(config, "per_payout")
    async with running(dsn):
        await store.append(events)
        await settle(books.conn, ("ledger", "accounting"))
    docs = await documents(books.conn)
    journal = docs[f"payout/{shop}/{payout['id']}"]
    postings = dict(zip(journal["accounts"], journal["amounts"], strict=True))
    assert postings["1000"] == to_minor(Decimal(payout["amount"]), "USD")  # to the cent
    assert sum(journal["amounts"]) == 0


async def test_documents_book_an_unknown_orders_payment_and_its_refund_as_the_ledger_does(
    dsn: str, store: EventStore, config: Path, books: Books
) -> None:
    """A payment for an order the log does not hold yet is unapplied in the documents too, and
    moves to the receivable (with the refund's tax given back) when the order arrives."""
    from tests.ledger.test_bookkeeper import order, stripe_charge, stripe_refund

    write_config(config, "per_transaction")
    conn = books.conn
    async with running(dsn):
        await store.append([stripe_charge(), stripe_refund("re_W", 645)])
        await settle(conn, ("ledger", "accounting"))
        waiting = sums((await documents(conn)).values())
        waiting_ledger = await _ledger_sums(conn)
        await store.append([order()])
        await settle(conn, ("ledger", "accounting"))
        applied = sums((await documents(conn)).values())
        applied_ledger = await _ledger_sums(conn)
    assert waiting == waiting_ledger
    assert waiting[("2300", "USD")] == -(2935 - 645)  # unapplied, not a smaller receivable
    assert ("1100", "USD") not in waiting
    assert applied == applied_ledger
    assert ("2300", "USD") not in applied
    assert applied[("2100", "USD")] == -135 + 30  # the refund gave back its share of the tax
