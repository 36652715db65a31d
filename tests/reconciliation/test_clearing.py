"""The clearing-account tie-out: the ledger's clearing:<processor> balance at the end of each
business day against what the processor's balance transactions say is still unpaid, the days
that disagree as exceptions, and ``GET /v1/reconciliation/clearing``."""

from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from hub.api.context import HubContext
from hub.store import EventStore
from projections.ledger import Ledger
from projections.reconciliation.extract import RESOLVED
from projections.reconciliation.queries import CLEARING_COLUMNS
from tests.api.conftest import bearer, make_key
from tests.ledger.harness import new
from tests.ledger.scenarios import stripe_scenario
from tests.ledger.test_http import api, hub
from tests.reconciliation.harness import LATE, Recon, books_running
from tests.reconciliation.scenarios import statement, stripe_month

__all__ = ["api", "hub"]

STRIPE_CLEARING = "1200"
"""The default chart's account with role clearing:stripe."""


def _by_day(rows: list[dict[str, Any]]) -> dict[date, dict[str, Any]]:
    assert all(r["processor"] == "stripe" and r["currency"] == "USD" for r in rows), rows
    return {r["business_date"]: r for r in rows}


async def test_the_stripe_month_ties_out_every_day_once_payouts_are_booked(
    store: EventStore, recon: Recon
) -> None:
    month = stripe_month()
    bank = statement(month)
    await recon.run_with_ledger(store, month.events, bank.lines)
    rows = await recon.clearing()
    days = _by_day(rows)
    clearing_exceptions = [e for e in await recon.exceptions() if e["source"].startswith("clear")]
    trial = await recon.conn.fetchval(
        f"SELECT sum(a.amount) FROM {Ledger.view('journal')} AS j, "
        "unnest(j.accounts, j.amounts) AS a(account, amount) WHERE a.account = $1",
        STRIPE_CLEARING,
    )

    # every business day of charges and every payout arrival is a day with activity
    charge_days = {e.occurred_at.date() for e in month.events if e.type.endswith("succeeded")}
    assert charge_days | {p.arrival for p in month.payouts} == set(days)
    assert all(r["clearing_account"] == STRIPE_CLEARING for r in rows)
    assert [(d, r["difference_minor"], r["status"]) for d, r in days.items()] == [
        (d, 0, "tied") for d in days
    ]
    assert all(r["ledger_balance_minor"] == r["processor_unpaid_minor"] for r in rows)
    # money waits in clearing between a charge and its payout, and all of it has left at the end
    assert max(r["ledger_balance_minor"] for r in rows) > 0
    last = rows[-1]
    assert last["business_date"] == month.payouts[-1].arrival
    assert (last["ledger_balance_minor"], last["processor_unpaid_minor"]) == (0, 0)
    assert trial == 0
    # on the day after the first business day, its charges are still unpaid: a known amount
    first_payout = month.payouts[0]
    first_day = min(days)
    assert days[first_day]["processor_unpaid_minor"] == first_payout.amount
    assert clearing_exceptions == []


async def _drop_fee(conn: asyncpg.Connection, txn_id: str) -> int:
    """Take the fee booked for ``txn_id`` out of the ledger's journal (the books missing it);
    the fee's amount."""
    fee = await conn.fetchval(
        f"DELETE FROM {Ledger.view('journal')} WHERE entry_key = $1 "
        "RETURNING (SELECT a FROM unnest(amounts) AS a WHERE a > 0 LIMIT 1)",
        f"stripe:acct_demo/fee:{txn_id}",
    )
    assert fee is not None, txn_id
    return int(fee)


async def test_a_fee_the_books_miss_puts_that_day_and_every_later_one_off_as_one_exception(
    store: EventStore, recon: Recon
) -> None:
    month = stripe_month()
    await recon.run_with_ledger(store, month.events, statement(month).lines)
    missed_on = date(2024, 3, 12)  # the 8th business day: charges ch_8_*
    fee = await _drop_fee(recon.conn, "txn_ch_8_0")
    rows = await recon.clearing()
    found = [e for e in await recon.exceptions() if e["source"] == "clearing:stripe"]
    pending = await recon.clearing(as_of=missed_on)

    off = {r["business_date"]: r["difference_minor"] for r in rows if r["difference_minor"]}
    assert min(off) == missed_on
    assert set(off) == {r["business_date"] for r in rows if r["business_date"] >= missed_on}
    assert set(off.values()) == {fee}  # the books hold the fee the processor took: +fee
    assert all(r["status"] == "off" for r in rows if r["difference_minor"])
    day = next(r for r in rows if r["business_date"] == missed_on)
    assert day["ledger_balance_minor"] - day["processor_unpaid_minor"] == fee
    assert day["difference_change_minor"] == fee
    assert [(e["kind"], e["reference"], e["difference_minor"]) for e in found] == [
        ("amount_mismatch", f"{STRIPE_CLEARING}/USD/{missed_on}", fee)
    ]
    [exception] = found
    assert exception["id"] == f"amount_mismatch:clearing:stripe/{STRIPE_CLEARING}/USD/{missed_on}"
    assert exception["amount_minor"] == day["processor_unpaid_minor"]
    assert exception["currency"] == "USD"
    assert f"difference +{fee}" in exception["detail"]
    assert str(missed_on) in exception["detail"]
    assert exception["resolved"] is False
    # within the grace period the day is pending, not yet an exception
    assert next(r for r in pending if r["business_date"] == missed_on)["status"] == "pending"
    assert [
        e for e in await recon.exceptions(as_of=missed_on) if e["source"] == "clearing:stripe"
    ] == []


async def test_a_mapping_that_drops_fees_leaves_the_books_off_by_the_fees(
    store: EventStore, recon: Recon, config: Path
) -> None:
    config.write_text(  # noqa: ASYNC240
        '[[connections]]\nid = "stripe:acct_demo"\nconnector = "stripe"\ntenant = "default"\n\n'
        "[connections.mapping.balance_transaction.fee]\n"
        'from = "balance_transaction.fee_charged"\ntransform = "cents"\ndefault = 0\n'
    )
    scenario = stripe_scenario()
    fees = sum(bt["fee"] for bt in scenario.balance_transactions)
    await recon.run_with_ledger(store, scenario.before_payout, scenario.payout_paid)
    rows = await recon.clearing()
    found = [e for e in await recon.exceptions() if e["source"] == "clearing:stripe"]
    assert [(str(r["business_date"]), r["difference_minor"], r["status"]) for r in rows] == [
        ("2024-03-01", fees, "off"),
        ("2024-03-03", fees, "off"),  # the payout arrived: the processor owes nothing
    ]
    assert rows[-1]["processor_unpaid_minor"] == 0
    assert rows[-1]["ledger_balance_minor"] == fees
    assert [(e["reference"], e["difference_minor"]) for e in found] == [
        (f"{STRIPE_CLEARING}/USD/2024-03-01", fees)
    ]


async def test_a_clearing_exception_is_resolved_by_an_event_and_stays_so_after_a_rebuild(
    dsn: str, store: EventStore, recon: Recon
) -> None:
    month = stripe_month(seed=5)
    async with books_running(dsn):
        await store.append([*month.events, *statement(month).lines])
        await recon.settle()
        await recon.settle(projection="ledger")
        await _drop_fee(recon.conn, "txn_ch_3_1")
        [exception] = [e for e in await recon.exceptions() if e["source"] == "clearing:stripe"]
        await store.append(
            [
                new("reconciliation:analyst", "r-1", RESOLVED,
                    {"exception_id": exception["id"], "reason": "fee booked by hand in Xero"},
                    "2024-04-20T10:00:00+00:00"),
            ]
        )  # fmt: skip
        await recon.settle()
        before = await recon.clearing()
        listed = await recon.exceptions(resolved=True)
        await recon.rebuild(store)
        after = await recon.clearing()
        relisted = await recon.exceptions(resolved=True)
    assert after == before
    assert [e["id"] for e in listed] == [exception["id"]]
    assert relisted == listed
    assert any(r["difference_minor"] for r in after)


async def test_the_analyst_role_reads_the_tie_out(store: EventStore, recon: Recon) -> None:
    month = stripe_month()
    await recon.run_with_ledger(store, month.events)
    async with recon.conn.transaction():
        await recon.conn.execute("SET LOCAL ROLE ledgerhub_analyst")
        count = await recon.conn.fetchval("SELECT count(*) FROM ledgerhub_views.clearing_tieout")
        columns = await recon.conn.fetch(
            "SELECT * FROM ledgerhub_views.clearing_tieout_at($1) LIMIT 1", LATE
        )
        listed = await recon.conn.fetchval(
            "SELECT count(*) FROM ledgerhub_views.reconciliation_exceptions_at($1)", LATE
        )
    assert count == len(await recon.clearing())
    assert count > 0
    assert list(columns[0].keys()) == ["tenant", *CLEARING_COLUMNS]
    assert listed == len(await recon.exceptions()) > 0  # every payout is a missing deposit


async def test_without_the_ledger_the_tie_out_is_empty_and_lists_no_exception(
    store: EventStore, recon: Recon
) -> None:
    month = stripe_month()
    await recon.run(store, month.events)
    assert await recon.clearing() == []


async def test_the_clearing_route_in_pages_json_and_csv(
    store: EventStore, recon: Recon, hub: HubContext, api: str
) -> None:
    month = stripe_month()
    await recon.run_with_ledger(store, month.events, statement(month).lines)
    expected = await recon.clearing(as_of=LATE)
    read = bearer(await make_key(hub, "read"))
    url = f"{api}/v1/reconciliation/clearing"
    pages, after = [], None
    async with aiohttp.ClientSession() as http:
        while True:
            params = {"limit": "5", "processor": "stripe", "as_of": str(LATE)}
            async with http.get(
                url, headers=read, params=params | ({"after": after} if after else {})
            ) as response:
                assert response.status == 200, await response.text()
                page = await response.json()
            pages.append(page["clearing"])
            after = page["next"]
            if after is None:
                break
        window = {"from": "2024-03-05", "to": "2024-03-08", "as_of": str(LATE)}
        async with http.get(url, headers={**read, "Accept": "text/csv"}, params=window) as response:
            assert response.headers["Content-Type"].startswith("text/csv")
            table = list(csv.DictReader(io.StringIO(await response.text())))
        async with http.get(url, headers=read, params={"processor": "shopify"}) as response:
            shopify = (await response.json())["clearing"]
        bad = {}
        for name, value in (("from", "March"), ("to", "2024-02-30"), ("after", "x")):
            async with http.get(url, headers=read, params={name: value}) as response:
                bad[name] = (response.status, response.content_type, name in await response.text())
        async with http.get(url) as response:
            anonymous = response.status
        async with http.get(f"{api}/openapi.json", headers=read) as response:
            spec = await response.json()
    rows = [row for page in pages for row in page]
    assert len(pages) > 2
    assert all(list(r) == list(CLEARING_COLUMNS) for r in rows)
    assert [(r["business_date"], r["difference_minor"], r["status"]) for r in rows] == [
        (str(r["business_date"]), 0, "tied") for r in expected
    ]
    assert [r["ledger_balance_minor"] for r in rows] == [
        r["ledger_balance_minor"] for r in expected
    ]
    assert [r["business_date"] for r in table] == [
        str(r["business_date"]) for r in expected
        if date(2024, 3, 5) <= r["business_date"] <= date(2024, 3, 8)
    ]  # fmt: skip
    assert list(table[0]) == list(CLEARING_COLUMNS)
    assert shopify == []
    assert bad == {name: (422, "application/problem+json", True) for name in bad}
    assert anonymous == 401
    documented = spec["paths"]["/v1/reconciliation/clearing"]["get"]
    assert {"processor", "from", "to"} <= {p["name"] for p in documented["parameters"]}
