"""Per-transaction sync to Xero: each document the Xero object an accountant expects."""

from __future__ import annotations

import copy
import dataclasses
import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from hub.domain.documents import Document
from hub.store import EventStore
from hub.sync.sender import Backoff, Sender
from projections.accounting import Accounting
from tests.accounting.harness import documents, running, settle, write_config
from tests.accounting.targets import xero_fake
from tests.ledger.harness import Books, new, sample

FAST = Backoff(attempts=4, initial=0.001, maximum=0.02)
SHOP = "shopify:acme-store"
SHOPIFY = Path(__file__).resolve().parents[1] / "fixtures" / "shopify"


def _transactions() -> list[dict[str, Any]]:
    data = json.loads((SHOPIFY / "payouts_transactions.json").read_text())
    return list(data["transactions"])


def shop_scenario() -> list[Any]:
    """The sample order (Bob, 409.94) paid by a Shopify charge with a fee, the reference
    payout's charges, and the reference payout."""
    order = sample("shopify", "shopify.orders.create")
    order["financial_status"] = "paid"
    when = order["created_at"]
    events = [new(SHOP, "o-1", "shopify.orders.create", order, when)]
    for tx in _transactions():
        if tx["type"] == "charge" and tx["source_order_id"] == 217130470:
            # both charges of order 217130470 now pay the sample order: the second is too much
            tx = copy.deepcopy(tx)
            tx.update(source_order_id=order["id"], amount="409.94", fee="12.19", net="397.75")
        events.append(
            new(SHOP, f"tx-{tx['id']}", "shopify.balance_transaction", tx, tx["processed_at"])
        )
    payout = json.loads((SHOPIFY / "payout.json").read_text())["payout"]
    events.append(new(SHOP, "payout-1", "shopify.payout", payout, "2019-11-12T12:00:00+00:00"))
    return events


async def _synced(books: Books) -> dict[str, list[dict[str, Any]]]:
    rows = await books.conn.fetch(
        "SELECT type, data::text AS d FROM ledgerhub.events WHERE type LIKE 'accounting.document.%'"
    )
    found: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        found.setdefault(r["type"].rsplit(".", 1)[1], []).append(json.loads(r["d"]))
    return found


def _money(value: Any) -> Decimal:
    return Decimal(str(value))


async def test_per_transaction_sync_writes_xeros_own_document_types(
    dsn: str, store: EventStore, config: Path, books: Books, tmp_path: Path
) -> None:
    write_config(config, "per_transaction", target="xero")
    async with running(dsn):
        await store.append(shop_scenario())
        await settle(books.conn, ("ledger", "accounting"))
    docs = await documents(books.conn, target="xero")
    async with xero_fake(tmp_path) as (fake, target):
        sender = Sender(store, Accounting, FAST)
        await sender.run("default", target)
        outcomes = await _synced(books)
        live = fake.live_keys()
        invoices = fake.live("Invoices")
        payments = fake.live("Payments")
        spends = [t for t in fake.live("BankTransactions") if t["Type"] == "SPEND"]
        receives = [t for t in fake.live("BankTransactions") if t["Type"] == "RECEIVE"]
        transfers = fake.live("BankTransfers")
        contacts = [c["Name"] for c in fake.live("Contacts")]
        held = {h.idempotency_key: h.content_hash for h in await target.held()}
        writes = fake.writes
        await sender.run("default", target)  # nothing new: nothing sent
        assert fake.writes == writes
        assert len(await _synced(books)) == len(outcomes)

    # the sale: one AUTHORISED ACCREC invoice for the customer, 409.94, paid in full
    (invoice,) = invoices
    assert invoice["Type"] == "ACCREC"
    assert invoice["InvoiceNumber"] == "LH-450789469"
    assert _money(invoice["Total"]) == Decimal("409.94")
    assert invoice["Status"] == "PAID"
    assert _money(invoice["AmountDue"]) == 0
    assert sorted(c["AccountCode"] for c in invoice["LineItems"]) == ["2100", "4000"]
    assert fake.store["Contacts"][invoice["Contact"]["ContactID"]]["Name"] == "Bob Norman"
    # its payment: gross into the clearing account, the fee a SPEND from it
    (payment,) = payments
    assert payment["Invoice"]["InvoiceID"] == invoice["InvoiceID"]
    assert payment["Account"]["Code"] == "1210"
    assert _money(payment["Amount"]) == Decimal("409.94")
    (fee,) = [t for t in spends if t["Reference"].endswith(" fee]")]
    assert fee["BankAccount"]["Code"] == "1210"
    assert [(line["AccountCode"], _money(line["LineAmount"])) for line in fee["LineItems"]] == [
        ("6000", Decimal("12.19"))
    ]
    # the same order charged twice: Xero refuses the second payment, which is parked
    (parked,) = [f for f in outcomes.get("failed", []) if f["parked"]]
    assert "exceeds the amount outstanding" in parked["message"]
    # payments of orders Xero has no invoice for, and charges without an order: RECEIVEs
    assert len(receives) == sum(1 for r in docs.values() if r["kind"] == "payment") - 2
    assert all(r["BankAccount"]["Code"] == "1210" for r in receives)
    # the payout: a transfer from the clearing account to the bank, to the cent
    (transfer,) = transfers
    assert transfer["FromBankAccount"]["Code"] == "1210"
    assert transfer["ToBankAccount"]["Code"] == "1000"
    assert _money(transfer["Amount"]) == Decimal("41.90")
    # everything else: journals
    journals = sum(1 for r in docs.values() if r["kind"] in ("journal", "credit_note"))
    assert len(fake.live("ManualJournals")) == journals
    assert len(contacts) == len(set(contacts))  # each contact once
    # every document exactly once (the parked one nowhere), each read back with its hash
    sent = {
        r["idempotency_key"]: r["content_hash"] for k, r in docs.items() if k != parked["doc_key"]
    }
    assert sorted(live) == sorted(sent)
    assert held == sent
    assert len(outcomes["synced"]) == len(sent)


def _doc(key: str, kind: str, *postings: tuple[str, int], **extra: Any) -> Document:
    lines = tuple(sorted((code, "USD", amount) for code, amount in postings))
    return Document("default", "xero", key, kind, date(2024, 3, 1), f"{kind} {key}", lines, **extra)


async def test_changes_update_in_place_or_void_and_recreate(tmp_path: Path) -> None:
    sale = _doc("o/1", "invoice", ("1100", 1000), ("4000", -1000), customer="Ann", order="1")
    paid = _doc("p/1", "payment", ("1100", -1000), ("1200", 970), ("6000", 30), order="1")
    payout = _doc("t/1", "transfer", ("1000", 500), ("1200", -500))
    fee = _doc("f/1", "expense", ("6000", 25), ("1200", -25))
    async with xero_fake(tmp_path) as (fake, target):
        ids = {d.key: (await target.create(d)).target_id for d in (sale, paid, payout, fee)}
        assert ids["o/1"].startswith("Invoices/")
        assert ids["p/1"].startswith("Payments/")
        assert "+BankTransactions/" in ids["p/1"]
        assert ids["t/1"].startswith("BankTransfers/")
        assert ids["f/1"].startswith("BankTransactions/")
        (spend,) = [t for t in fake.live("BankTransactions") if t["Reference"].startswith("exp")]
        assert (spend["Type"], _money(spend["Total"])) == ("SPEND", Decimal("0.25"))
        invoice = fake.store["Invoices"][ids["o/1"].split("/")[1]]
        assert invoice["Status"] == "PAID"

        # a payment cannot change in Xero: the old one (and its fee) deleted, a new one made
        paid2 = dataclasses.replace(paid, postings=(("1100", "USD", -1000), ("1200", "USD", 980),
                                                    ("6000", "USD", 20)))  # fmt: skip
        moved = await target.update(ids["p/1"], paid2)
        assert moved.target_id != ids["p/1"]
        assert moved.idempotency_key not in ("", paid2.idempotency_key)
        assert len(fake.live("Payments")) == 1
        assert invoice["Status"] == "PAID"
        # a transfer neither: deleted and made again
        payout2 = dataclasses.replace(
            payout, postings=(("1000", "USD", 600), ("1200", "USD", -600))
        )
        again = await target.update(ids["t/1"], payout2)
        assert again.target_id != ids["t/1"]
        (transfer,) = fake.live("BankTransfers")
        assert _money(transfer["Amount"]) == Decimal("6.00")
        # a bank transaction changes in place
        fee2 = dataclasses.replace(fee, postings=(("1200", "USD", -40), ("6000", "USD", 40)))
        assert (await target.update(ids["f/1"], fee2)).target_id == ids["f/1"]
        # voiding the payment reopens the invoice, which can then be changed in place
        await target.void(moved.target_id)
        await target.void(moved.target_id)  # twice: harmless
        assert invoice["Status"] == "AUTHORISED"
        sale2 = dataclasses.replace(sale, postings=(("1100", "USD", 1200), ("4000", "USD", -1200)))
        assert (await target.update(ids["o/1"], sale2)).target_id == ids["o/1"]
        invoice = fake.store["Invoices"][ids["o/1"].split("/")[1]]
        assert _money(invoice["AmountDue"]) == Decimal("12.00")
        held = {h.idempotency_key: (h.target_id, h.content_hash) for h in await target.held()}
    assert held == {
        sale.idempotency_key: (ids["o/1"], sale2.content_hash),
        again.idempotency_key: (again.target_id, payout2.content_hash),
        fee.idempotency_key: (ids["f/1"], fee2.content_hash),
    }
    assert sorted(c["Name"] for c in fake.live("Contacts")) == ["Ann", "stripe"]  # once each


async def test_a_payment_sent_before_its_invoice_stays_one_receive(tmp_path: Path) -> None:
    sale = _doc("o/2", "invoice", ("1100", 700), ("4000", -700), order="2")
    paid = _doc("p/2", "payment", ("1100", -700), ("1200", 700), order="2")
    async with xero_fake(tmp_path) as (fake, target):
        first = await target.create(paid)  # no invoice yet: a RECEIVE
        assert first.target_id.startswith("BankTransactions/")
        await target.create(sale)
        again = await target.create(paid)  # a retry whose first answer was lost
        assert again.target_id == first.target_id
        assert fake.live("Payments") == []
        assert fake.live("Invoices")[0]["Status"] == "AUTHORISED"
        assert sorted(fake.live_keys()) == sorted([sale.idempotency_key, paid.idempotency_key])
