"""Per-transaction and per-payout sync to QuickBooks: each document the QuickBooks entity a
bookkeeper expects, through the real sender and the accounting projection."""

from __future__ import annotations

import dataclasses
import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from connectors.quickbooks import QuickBooksTarget
from connectors.quickbooks.shapes import TAG
from hub.domain.documents import Document
from hub.store import EventStore
from hub.sync.sender import Backoff, Sender
from projections.accounting import Accounting
from tests.accounting.harness import documents, running, settle
from tests.accounting.test_xero_documents import shop_scenario
from tests.ledger.harness import Books
from tests.ledger.scenarios import stripe_scenario
from tests.quickbooks.fake_qbo import FakeQuickBooks
from tests.quickbooks.harness import CHART, REALM, new_fake, qbo, write_config

FAST = Backoff(attempts=4, initial=0.001, maximum=0.02)


async def _outcomes(books: Books) -> dict[str, list[dict[str, Any]]]:
    rows = await books.conn.fetch(
        "SELECT type, data::text AS d FROM ledgerhub.events WHERE type LIKE 'accounting.document.%'"
    )
    found: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        found.setdefault(r["type"].rsplit(".", 1)[1], []).append(json.loads(r["d"]))
    return found


def _money(value: Any) -> Decimal:
    return Decimal(str(value))


def _lines(fake: FakeQuickBooks, item: dict[str, Any], detail: str) -> list[tuple[str, Decimal]]:
    return sorted(
        (fake.code(line[detail]["AccountRef"]), _money(line["Amount"])) for line in item["Line"]
    )


async def test_per_transaction_sync_writes_quickbooks_own_entities(
    dsn: str, store: EventStore, config: Path, books: Books, tmp_path: Path
) -> None:
    write_config(config, "per_transaction")
    async with running(dsn):
        await store.append(shop_scenario())
        await settle(books.conn, ("ledger", "accounting"))
    docs = await documents(books.conn, target="quickbooks")
    async with qbo(tmp_path) as (fake, target):
        sender = Sender(store, Accounting, FAST)
        await sender.run("default", target)
        outcomes = await _outcomes(books)
        held = {h.idempotency_key: h.content_hash for h in await target.held()}
        writes = fake.writes
        await sender.run("default", target)  # nothing new: nothing sent
        assert fake.writes == writes
        assert len(await _outcomes(books)) == len(outcomes)

    # the sale: one Invoice to the customer, numbered after the order, 409.94, paid in full
    (invoice,) = fake.live("Invoice")
    assert invoice["DocNumber"] == "LH-450789469"
    assert _money(invoice["TotalAmt"]) == Decimal("409.94")
    assert _money(invoice["Balance"]) == 0
    customer = fake.store["Customer"][invoice["CustomerRef"]["value"]]
    assert customer["DisplayName"] == "Bob Norman"
    items = {
        fake.store["Item"][line["SalesItemLineDetail"]["ItemRef"]["value"]]["Name"]
        for line in invoice["Line"]
        if line["DetailType"] == "SalesItemLineDetail"
    }
    assert items == {"Sales (4000) ledgerhub", "Sales tax payable (2100) ledgerhub"}
    for item in fake.store["Item"].values():  # each item's income account is its chart account
        code = item["Name"].split("(")[1].split(")")[0]
        assert fake.code(item["IncomeAccountRef"]) == code
    # its payment: applied to the invoice, deposited to the clearing account
    (payment,) = fake.live("Payment")
    assert payment["Line"][0]["LinkedTxn"] == [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]
    assert payment["CustomerRef"] == invoice["CustomerRef"]
    assert fake.code(payment["DepositToAccountRef"]) == "1210"
    assert _money(payment["TotalAmt"]) == Decimal("409.94")
    # the fee: an Expense (Purchase) from the clearing account
    purchases = fake.live("Purchase")
    (fee,) = [p for p in purchases if p["PrivateNote"].endswith(" fee]")]
    assert fee["PaymentType"] == "Cash"
    assert fake.code(fee["AccountRef"]) == "1210"
    assert _lines(fake, fee, "AccountBasedExpenseLineDetail") == [("6000", Decimal("12.19"))]
    # the same order charged twice: QuickBooks refuses the second payment, which is parked
    (parked,) = [f for f in outcomes.get("failed", []) if f["parked"]]
    assert "more than the invoice's open balance" in parked["message"]
    assert "Business Validation Error" in parked["message"]
    # payments of orders QuickBooks has no invoice for, and charges without an order: Deposits
    deposits = fake.live("Deposit")
    assert len(deposits) == sum(1 for r in docs.values() if r["kind"] == "payment") - 2
    assert all(fake.code(d["DepositToAccountRef"]) == "1210" for d in deposits)
    # the payout: a Transfer from the clearing account to the bank, to the cent
    (transfer,) = fake.live("Transfer")
    assert fake.code(transfer["FromAccountRef"]) == "1210"
    assert fake.code(transfer["ToAccountRef"]) == "1000"
    assert _money(transfer["Amount"]) == Decimal("41.90")
    # refunds paid out of the clearing account: RefundReceipts; everything else: JournalEntries
    (refund,) = fake.live("RefundReceipt")  # the one refund of refunds (4900) paid out
    assert fake.code(refund["DepositToAccountRef"]) == "1210"
    assert _money(refund["TotalAmt"]) == Decimal("8.05")
    (line,) = refund["Line"]
    refund_item = fake.store["Item"][line["SalesItemLineDetail"]["ItemRef"]["value"]]
    assert fake.code(refund_item["IncomeAccountRef"]) == "4900"
    refunds = [refund]
    # a refund that gives back an unapplied payment (its order is not in the log) is a
    # JournalEntry, not a RefundReceipt of sales; any receivable line names the customer, as
    # QuickBooks requires
    lines = [line["JournalEntryLineDetail"] for entry in fake.live("JournalEntry")
             for line in entry["Line"]]  # fmt: skip
    unapplied = [d for d in lines if fake.code(d["AccountRef"]) == "2300"]
    assert [d["PostingType"] for d in unapplied].count("Debit") == 2
    ar_lines = [d for d in lines if fake.code(d["AccountRef"]) == "1100"]
    assert all(d["Entity"]["Type"] == "Customer" for d in ar_lines)
    credit_notes = sum(1 for r in docs.values() if r["kind"] == "credit_note")
    journals = sum(1 for r in docs.values() if r["kind"] == "journal")
    assert len(refunds) + len(fake.live("JournalEntry")) == credit_notes + journals
    expenses = sum(1 for r in docs.values() if r["kind"] == "expense")
    assert len(purchases) == expenses + 1  # the fee of the paid invoice besides
    names = [c["DisplayName"] for c in fake.store["Customer"].values()]
    assert len(names) == len(set(names))  # each customer once
    # every document exactly once (the parked one nowhere), each read back with its hash
    sent = {
        r["idempotency_key"]: r["content_hash"] for k, r in docs.items() if k != parked["doc_key"]
    }
    assert sorted(fake.live_keys()) == sorted(sent)
    assert held == sent
    assert len(outcomes["synced"]) == len(sent)
    # every call named the minor version; the call log holds Intuit's transaction ids
    assert set(fake.minor_versions) == {"75"}
    tids = {
        r["request_id"]
        for r in await books.conn.fetch(
            "SELECT request_id FROM ledgerhub.sync_calls WHERE status = 'ok'"
        )
    }
    assert tids
    assert tids <= set(fake.tids)


async def test_per_payout_sync_writes_one_journal_entry_per_payout(
    dsn: str, store: EventStore, config: Path, books: Books, tmp_path: Path
) -> None:
    write_config(config, "per_payout")
    scenario = stripe_scenario()
    async with running(dsn):
        await store.append(scenario.before_payout + scenario.payout_paid)
        await settle(books.conn, ("ledger", "accounting"))
    docs = await documents(books.conn, target="quickbooks")
    payouts = {k: r for k, r in docs.items() if k.startswith("payout/")}
    assert payouts
    async with qbo(tmp_path) as (fake, target):
        await Sender(store, Accounting, FAST).run("default", target)
    entries = {
        tag[1]: item
        for item in fake.live("JournalEntry")
        if (tag := TAG.search(item["PrivateNote"]))
    }
    for row in payouts.values():
        entry = entries[row["idempotency_key"]]
        posted: dict[str, Decimal] = {}
        for line in entry["Line"]:
            detail = line["JournalEntryLineDetail"]
            sign = 1 if detail["PostingType"] == "Debit" else -1
            code = fake.code(detail["AccountRef"])
            posted[code] = posted.get(code, Decimal(0)) + sign * _money(line["Amount"])
        expected = {
            a: Decimal(v).scaleb(-2) for a, v in zip(row["accounts"], row["amounts"], strict=True)
        }
        assert posted == expected
    assert sorted(fake.live_keys()) == sorted(r["idempotency_key"] for r in docs.values())


async def test_a_changed_payout_journal_is_updated_in_place_through_faults(
    dsn: str, store: EventStore, config: Path, books: Books, tmp_path: Path
) -> None:
    write_config(config, "per_payout")
    scenario = stripe_scenario()
    async with running(dsn):
        await store.append(scenario.before_payout)
        await settle(books.conn, ("ledger", "accounting"))
    fake = new_fake()
    fake.stall = 0.5
    async with qbo(tmp_path, fake=fake, call_timeout=0.2) as (_, target):
        sender = Sender(store, Accounting, FAST)
        await sender.run("default", target)
        before = {h.idempotency_key: h for h in await target.held()}
        async with running(dsn):
            await store.append(scenario.payout_paid)  # the payout's journal gains the deposit
            await settle(books.conn, ("ledger", "accounting"))
        docs = await documents(books.conn, target="quickbooks")
        fake.faults.extend(["timeout", "drop", "500", "timeout"])
        for _ in range(4):  # a run may leave failures for the next one
            await sender.run("default", target)
        after = {h.idempotency_key: h for h in await target.held()}
    changed = [
        k for k, h in after.items() if k in before and h.content_hash != before[k].content_hash
    ]
    assert changed  # the payout's journal changed ...
    for key in changed:  # ... in place: the same JournalEntry, under a later SyncToken
        assert after[key].target_id == before[key].target_id
        entry = fake.store["JournalEntry"][after[key].target_id.split("/")[1]]
        assert int(entry["SyncToken"]) >= 1
    assert {k: h.content_hash for k, h in after.items()} == {
        r["idempotency_key"]: r["content_hash"] for r in docs.values()
    }
    assert sorted(fake.live_keys()) == sorted(after)  # each once
    assert sum(fake.injected.values()) == 4


async def test_daily_sync_writes_one_journal_entry_per_day(
    dsn: str, store: EventStore, config: Path, books: Books, tmp_path: Path
) -> None:
    write_config(config, "daily")
    scenario = stripe_scenario()
    async with running(dsn):
        await store.append(scenario.before_payout + scenario.payout_paid)
        await settle(books.conn, ("ledger", "accounting"))
    docs = await documents(books.conn, target="quickbooks")
    assert docs
    assert all(k.startswith("day/") for k in docs)
    async with qbo(tmp_path) as (fake, target):
        await Sender(store, Accounting, FAST).run("default", target)
    assert len(fake.live("JournalEntry")) == len(docs)
    assert sorted(fake.live_keys()) == sorted(r["idempotency_key"] for r in docs.values())


def _doc(key: str, kind: str, *postings: tuple[str, int], **extra: Any) -> Document:
    lines = tuple(sorted((code, "USD", amount) for code, amount in postings))
    return Document(
        "default", "quickbooks", key, kind, date(2024, 3, 1), f"{kind} {key}", lines, **extra
    )


async def test_changes_update_in_place_or_void_and_recreate(tmp_path: Path) -> None:
    sale = _doc("o/1", "invoice", ("1100", 1000), ("4000", -1000), customer="Ann", order="1")
    paid = _doc("p/1", "payment", ("1100", -1000), ("1200", 970), ("6000", 30), order="1")
    payout = _doc("t/1", "transfer", ("1000", 500), ("1200", -500))
    fee = _doc("f/1", "expense", ("6000", 25), ("1200", -25))
    async with qbo(tmp_path) as (fake, target):
        ids = {d.key: (await target.create(d)).target_id for d in (sale, paid, payout, fee)}
        assert ids["o/1"].startswith("Invoice/")
        assert ids["p/1"].startswith("Payment/")
        assert "+Purchase/" in ids["p/1"]
        assert ids["t/1"].startswith("Transfer/")
        assert ids["f/1"].startswith("Purchase/")
        invoice_id = ids["o/1"].split("/")[1]
        assert _money(fake.store["Invoice"][invoice_id]["Balance"]) == 0

        # a payment is voided and made again under a revised key (its fee Purchase deleted)
        paid2 = dataclasses.replace(paid, postings=(("1100", "USD", -1000), ("1200", "USD", 980),
                                                    ("6000", "USD", 20)))  # fmt: skip
        moved = await target.update(ids["p/1"], paid2)
        assert moved.target_id != ids["p/1"]
        assert moved.idempotency_key not in ("", paid2.idempotency_key)
        old_payment, old_fee = (part.split("/")[1] for part in ids["p/1"].split("+"))
        assert ("Payment", old_payment) in fake.voided
        assert old_fee not in fake.store["Purchase"]
        assert len(fake.live("Payment")) == 1
        assert _money(fake.store["Invoice"][invoice_id]["Balance"]) == 0
        # a transfer and an expense change in place, each under its SyncToken
        payout2 = dataclasses.replace(
            payout, postings=(("1000", "USD", 600), ("1200", "USD", -600))
        )
        assert (await target.update(ids["t/1"], payout2)).target_id == ids["t/1"]
        (transfer,) = fake.live("Transfer")
        assert (_money(transfer["Amount"]), transfer["SyncToken"]) == (Decimal("6.00"), "1")
        fee2 = dataclasses.replace(fee, postings=(("1200", "USD", -40), ("6000", "USD", 40)))
        assert (await target.update(ids["f/1"], fee2)).target_id == ids["f/1"]
        # voiding the payment reopens the invoice, which then changes in place
        await target.void(moved.target_id)
        await target.void(moved.target_id)  # twice: harmless
        assert _money(fake.store["Invoice"][invoice_id]["Balance"]) == Decimal("10.00")
        sale2 = dataclasses.replace(sale, postings=(("1100", "USD", 1200), ("4000", "USD", -1200)))
        assert (await target.update(ids["o/1"], sale2)).target_id == ids["o/1"]
        invoice = fake.store["Invoice"][invoice_id]
        assert (_money(invoice["TotalAmt"]), _money(invoice["Balance"])) == (
            Decimal("12.00"),
            Decimal("12.00"),
        )
        held = {h.idempotency_key: (h.target_id, h.content_hash) for h in await target.held()}
    assert held == {
        sale.idempotency_key: (ids["o/1"], sale2.content_hash),
        payout.idempotency_key: (ids["t/1"], payout2.content_hash),
        fee.idempotency_key: (ids["f/1"], fee2.content_hash),
    }
    names = sorted(c["DisplayName"] for c in fake.store["Customer"].values())
    assert names == ["Ann", "ledgerhub sales"]  # once each


async def test_a_stale_sync_token_is_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = _doc("j/1", "journal", ("6100", 5000), ("1000", -5000))
    async with qbo(tmp_path) as (fake, target):
        made = await target.create(entry)
        object_id = made.target_id.split("/")[1]
        fake.store["JournalEntry"][object_id]["SyncToken"] = "3"  # a bookkeeper edited it
        read = target._read
        calls = 0

        async def outdated(entity: str, ident: str) -> dict[str, Any] | None:
            nonlocal calls
            calls += 1
            held = await read(entity, ident)
            return {**held, "SyncToken": "0"} if held is not None and calls == 1 else held

        monkeypatch.setattr(target, "_read", outdated)
        changed = dataclasses.replace(
            entry, postings=(("1000", "USD", -5100), ("6100", "USD", 5100))
        )
        assert (await target.update(made.target_id, changed)).target_id == made.target_id
        assert calls == 2  # refused as stale (5010), read again, written
        held = fake.store["JournalEntry"][object_id]
        assert held["SyncToken"] == "4"
        assert {_money(line["Amount"]) for line in held["Line"]} == {Decimal("51.00")}


async def test_a_payment_sent_before_its_invoice_stays_one_deposit(tmp_path: Path) -> None:
    sale = _doc("o/2", "invoice", ("1100", 700), ("4000", -700), order="2")
    paid = _doc("p/2", "payment", ("1100", -700), ("1200", 700), order="2")
    async with qbo(tmp_path) as (fake, target):
        first = await target.create(paid)  # no invoice yet: a Deposit
        assert first.target_id.startswith("Deposit/")
        (deposit,) = fake.live("Deposit")
        (line,) = deposit["Line"]  # the receivable line names a customer
        assert line["DepositLineDetail"]["Entity"]["type"] == "Customer"
        await target.create(sale)
        again = await target.create(paid)  # a retry whose first answer was lost
        assert again.target_id == first.target_id
        assert fake.live("Payment") == []
        assert _money(fake.live("Invoice")[0]["Balance"]) == Decimal("7.00")
        assert sorted(fake.live_keys()) == sorted([sale.idempotency_key, paid.idempotency_key])


async def test_discounts_currencies_and_journals(tmp_path: Path) -> None:
    sale = Document("default", "quickbooks", "o/3", "invoice", date(2024, 3, 2), "order 3",
                    (("1100", "USD", 900), ("2100", "USD", -50), ("4000", "USD", -1000),
                     ("4800", "USD", 150)), customer="O'Brien", order="3")  # fmt: skip
    fx = Document("default", "quickbooks", "x/1", "payment", date(2024, 3, 2), "eur sale",
                  (("1200", "USD", 1100), ("1900", "EUR", 1000), ("1900", "USD", -1100),
                   ("4000", "EUR", -1000)))  # fmt: skip
    async with qbo(tmp_path) as (fake, target):
        made = await target.create(sale)
        (invoice,) = fake.live("Invoice")
        assert _money(invoice["TotalAmt"]) == Decimal("9.00")
        (discount,) = [x for x in invoice["Line"] if x["DetailType"] == "DiscountLineDetail"]
        assert _money(discount["Amount"]) == Decimal("1.50")
        assert fake.code(discount["DiscountLineDetail"]["DiscountAccountRef"]) == "4800"
        assert fake.store["Customer"][invoice["CustomerRef"]["value"]]["DisplayName"] == "O'Brien"
        # another process (a fresh target) finds the customer by name, quote and all
        fresh = QuickBooksTarget(target.transport, target.tokens, REALM,
                                 api=f"{fake.url}/v3", accounts=CHART)  # fmt: skip
        await fresh.create(dataclasses.replace(sale, key="o/4", order="4"))
        assert [c["DisplayName"] for c in fake.store["Customer"].values()] == ["O'Brien"]
        # several currencies: one JournalEntry per currency, one document
        two = await target.create(fx)
        assert two.target_id.count("JournalEntry/") == 2
        assert sorted(e["CurrencyRef"]["value"] for e in fake.live("JournalEntry")) == [
            "EUR",
            "USD",
        ]
        held = {h.idempotency_key: h for h in await target.held()}
        assert held[fx.idempotency_key].target_id == two.target_id
        assert held[sale.idempotency_key].target_id == made.target_id
        # a change voids both and writes both again
        fx2 = dataclasses.replace(fx, description="eur sale, corrected")
        again = await target.update(two.target_id, fx2)
        assert again.idempotency_key != fx.idempotency_key
        assert len(fake.live("JournalEntry")) == 2
        assert len(fake.live_keys()) == 3
        assert again.idempotency_key in fake.live_keys()
