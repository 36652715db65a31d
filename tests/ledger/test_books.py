"""Bank-line rules and suggestions, payroll, multi-currency, unmapped events, account entries."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from hub.store import EventStore
from projections.ledger import queries
from tests.ledger.harness import Books, ledger_running, new, sample
from tests.ledger.scenarios import STRIPE, stripe_event

BANK = "bank:checking"
RULES = """
[tenants.default]
timezone = "America/New_York"

[[tenants.default.ledger.accounts]]
code = "6500"
name = "Software"
type = "expense"

[[tenants.default.ledger.rules]]
payee = "^GITHUB"
account = "6500"

[[tenants.default.ledger.rules]]
payee = "(?i)^stripe payout"
action = "ignore"

[[connections]]
id = "bank:checking"
connector = "bank"
ledger_account = "1000"
"""


def bank_line(external_id: str, day: str, amount: int, description: str) -> Any:
    data = {**sample("bank", "bank.line"), "date": day, "amount_minor": amount,
            "description": description, "memo": None, "fitid": external_id}  # fmt: skip
    return new(BANK, external_id, "bank.line", data, f"{day}T00:00:00-05:00")


async def test_rules_categorize_bank_lines_and_history_suggests_without_applying(
    dsn: str, store: EventStore, books: Books, config: Path
) -> None:
    config.write_text(RULES)  # noqa: ASYNC240
    lines = [
        bank_line("L1", "2024-01-05", -4999, "GITHUB INC 1234"),
        bank_line("L2", "2024-02-05", -4999, "GitHub, Inc. #5678"),  # the rule is case-sensitive
        bank_line("L3", "2024-02-06", 1100, "STRIPE PAYOUT"),  # booked from the payout itself
        bank_line("L4", "2024-02-07", -450, "CORNER COFFEE"),
    ]
    async with ledger_running(dsn):
        await store.append(lines)
        await books.settle()
        balances = await books.balances()
        suggestions = await queries.suggestions(books.conn, "default")
        statuses = await books.conn.fetch(
            "SELECT entry_key, status, account, rule FROM "
            'ledgerhub_projections."ledger__bank_lines" ORDER BY entry_key'
        )
    assert balances[("6500", "USD")] == 4999
    assert balances[("2900", "USD")] == 4999 + 450  # suspense: the two uncategorized lines
    assert balances[("1000", "USD")] == -(4999 + 4999 + 450)  # the payout deposit: not here
    assert [(r["status"], r["account"]) for r in statuses] == [
        ("categorized", "6500"),
        ("suspense", "2900"),
        ("ignored", None),
        ("suspense", "2900"),
    ]
    assert [(s["entry_key"], s["suggested_account"], s["used_times"]) for s in suggestions] == [
        (f"{BANK}/line:L2", "6500", 1)
    ]
    assert await books.entry(f"{BANK}/line:L3") is not None  # kept, booking nothing


async def test_payroll_expenses_wages_and_taxes_and_pays_net_from_the_bank(
    dsn: str, store: EventStore, books: Books
) -> None:
    run = sample("payroll", "payroll.run")
    async with ledger_running(dsn):
        await store.append([new("payroll:gusto", run["payroll_uuid"], "payroll.run", run,
                                "2024-05-15T12:00:00-04:00")])  # fmt: skip
        await books.settle()
        tb = await books.balances()
    totals = {k: int(v.replace(".", "")) for k, v in run["totals"].items()}
    assert tb[("6100", "USD")] == totals["gross_pay"]
    assert tb[("6110", "USD")] == totals["employer_taxes"]
    owed = totals["employee_taxes"] + totals["employee_benefits_deductions"]
    assert tb[("2200", "USD")] == -(owed + totals["employer_taxes"])
    assert tb[("1000", "USD")] == -totals["net_pay"]


async def test_a_converted_charge_balances_in_each_currency_through_fx(
    dsn: str, store: EventStore, books: Books
) -> None:
    bt = {**STRIPE["balance_transaction"], "id": "txn_eur", "amount": 1079, "currency": "usd",
          "exchange_rate": 1.0785, "fee": 61, "net": 1018}  # fmt: skip
    charge = {**STRIPE["charge"], "id": "ch_eur", "amount": 1000, "currency": "eur",
              "balance_transaction": bt}  # fmt: skip
    event = stripe_event("charge.succeeded", charge, 1709294400)
    async with ledger_running(dsn):
        await store.append([new("stripe:acct_demo", "evt_eur", "stripe.charge.succeeded", event,
                                "2024-03-01T12:00:00+00:00")])  # fmt: skip
        await books.settle()
        tb = await books.balances()
    assert tb == {
        ("1200", "USD"): 1079,  # clearing, in the settlement currency
        ("1900", "EUR"): 1000,  # fx: takes the euros …
        ("1900", "USD"): -1079,  # … and gives the dollars
        ("4000", "EUR"): -1000,  # revenue in the presentment currency
    }


async def test_unmappable_events_are_kept_and_counted_and_the_rest_is_booked(
    dsn: str, store: EventStore, books: Books
) -> None:
    order = sample("shopify", "shopify.orders.create")
    broken = {**order, "id": 7, "total_price": "409.945"}
    good = {**order, "id": 8}
    events = [
        new("shopify:acme", "o-7", "shopify.orders.create", broken, order["created_at"]),
        new("shopify:acme", "x-1", "shopify.carts.create", {"id": 1}, order["created_at"]),
        new("custom:erp", "e-1", "custom.thing", {"id": 1}, order["created_at"]),
        new("shopify:acme", "o-8", "shopify.orders.create", good, order["created_at"]),
    ]
    async with ledger_running(dsn):
        results = await store.append(events)
        await books.settle()
        unmapped = await queries.unmapped(books.conn, "default")
        parked = await books.conn.fetchval("SELECT count(*) FROM ledgerhub.parked_events")
    positions = [r.position for r in results]
    assert [u["position"] for u in unmapped] == positions[:3]
    reasons = [u["reason"] for u in unmapped]
    assert "more than 2 decimal places" in reasons[0]
    assert "does not map shopify.carts.create" in reasons[1]
    assert "no installed connector maps 'custom'" in reasons[2]
    assert parked == 0
    booked = await books.entry("shopify:acme/order:8")
    assert booked is not None
    assert list(booked["positions"]) == [positions[3]]


async def test_account_entries_link_to_their_event_positions(
    dsn: str, store: EventStore, books: Books
) -> None:
    order = sample("shopify", "shopify.orders.create")
    paid = {**order, "financial_status": "paid"}
    async with ledger_running(dsn):
        when = order["created_at"]
        first = await store.append(
            [new("shopify:acme", "o-1", "shopify.orders.create", order, when)]
        )
        second = await store.append([new("shopify:acme", "o-2", "shopify.orders.paid", paid, when)])
        await books.settle()
        entries = await queries.account_entries(books.conn, "default", "1100")
        as_of = await queries.trial_balance(books.conn, "default", date(2008, 1, 10))
        earlier = await queries.trial_balance(books.conn, "default", date(2008, 1, 9))
    assert len(entries) == 1  # the same order twice: one entry, the latest state
    assert entries[0]["positions"] == [first[0].position, second[0].position]
    assert entries[0]["debit_minor"] == int(order["total_price"].replace(".", ""))
    assert as_of["balanced"]
    assert as_of["as_of"] == "2008-01-10"
    assert {line["code"] for line in as_of["lines"]} == {"1100", "2100", "4000"}
    assert earlier["lines"] == []
