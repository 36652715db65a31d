"""The reconciliation projection on a real log: a month of Stripe payouts against a bank
statement, the Shopify reference payout, event order, rebuilds and resolutions."""

from __future__ import annotations

import random
from datetime import timedelta
from uuid import uuid4

from hub.domain.events import NewEvent
from hub.domain.money import Money
from hub.store import EventStore
from projections.reconciliation.extract import RESOLVED
from tests.ledger.harness import new
from tests.reconciliation.harness import Recon, reconciliation_running
from tests.reconciliation.scenarios import (
    bank_line,
    shopify_reference,
    statement,
    stripe_month,
)


def _for(tenant: str, events: list[NewEvent]) -> list[NewEvent]:
    return [e.model_copy(update={"tenant": tenant, "id": uuid4()}) for e in events]


async def test_a_month_of_stripe_payouts_gives_exactly_the_three_exceptions_and_matches_the_rest(
    store: EventStore, recon: Recon
) -> None:
    month = stripe_month()
    bank = statement(month)
    await recon.run(store, month.events, bank.lines)
    payouts = await recon.payouts()
    found = await recon.exceptions()
    open_window = await recon.payouts(as_of=bank.missing.arrival)
    open_exceptions = await recon.exceptions(as_of=bank.missing.arrival)

    assert {(e["kind"], e["reference"]) for e in found} == {
        ("missing_deposit", bank.missing.payout_id),
        ("amount_mismatch", bank.off_by_a_cent.payout_id),
        ("unexplained_deposit", bank.unrelated_line),
    }
    assert len(found) == 3
    mismatch = next(e for e in found if e["kind"] == "amount_mismatch")
    assert mismatch["difference_minor"] == -1
    assert not any(e["resolved"] for e in found)
    by_id = {p["payout_id"]: p for p in payouts}
    assert set(by_id) == {p.payout_id for p in month.payouts}
    for made in month.payouts:
        row = by_id[made.payout_id]
        assert row["amount_minor"] == made.amount
        assert row["arrival_date"] == made.arrival
        parts = ("gross_minor", "refunds_minor", "fees_minor", "disputes_minor",
                 "adjustments_minor")  # fmt: skip
        assert sum(row[p] for p in parts) == made.amount, row
        if made is bank.missing:
            assert (row["status"], row["bank_line"]) == ("missing_deposit", None)
        elif made is bank.off_by_a_cent:
            assert (row["status"], row["difference_minor"]) == ("amount_mismatch", -1)
        else:
            assert row["status"] == "matched", row
            index = month.payouts.index(made)
            assert row["bank_line"] == f"L{index}"
    disputed = [p for p in payouts if p["disputes_minor"]]
    assert len(disputed) == 1
    assert disputed[0]["disputes_minor"] < 0
    assert all(p["refunds_minor"] <= 0 and p["fees_minor"] < 0 for p in payouts)
    assert any(p["refunds_minor"] < 0 for p in payouts)
    # while its window is open, the payout with no deposit is pending, not an exception
    assert {p["payout_id"]: p["status"] for p in open_window}[bank.missing.payout_id] == "pending"
    assert "missing_deposit" not in {e["kind"] for e in open_exceptions}


async def test_the_result_does_not_depend_on_the_order_events_reach_the_log(
    dsn: str, store: EventStore, recon: Recon
) -> None:
    month = stripe_month(seed=11)
    bank = statement(month)
    in_order = [*month.events, *bank.lines]
    shuffled = list(in_order)
    random.Random(3).shuffle(shuffled)
    async with reconciliation_running(dsn):
        await store.append(_for("t_logged", in_order))
        for i in range(0, len(shuffled), 7):  # many small batches, deposits before payouts
            await store.append(_for("t_shuffled", shuffled[i : i + 7]))
        await recon.settle()
    from projections.reconciliation import queries

    def rows(tenant: str):  # type: ignore[no-untyped-def]
        return queries.payouts(recon.conn, tenant, as_of=bank.missing.arrival, limit=1000)

    assert await rows("t_logged") == await rows("t_shuffled")
    assert len(await rows("t_logged")) == len(month.payouts)
    logged = await queries.exceptions(recon.conn, "t_logged", limit=1000)
    shuffled_found = await queries.exceptions(recon.conn, "t_shuffled", limit=1000)
    assert logged == shuffled_found
    assert len(logged) == 3


async def test_the_shopify_reference_payout_composes_exactly_and_matches_its_deposit(
    store: EventStore, recon: Recon
) -> None:
    payout_event, movements, obj = shopify_reference()
    amount = Money.parse(obj["amount"], obj["currency"]).minor
    arrival = payout_event.occurred_at.date()
    deposit = bank_line("S1", (arrival + timedelta(days=1)).isoformat(), amount,
                        "SHOPIFY PAYMENTS TRANSFER")  # fmt: skip
    await recon.run(store, [deposit, *movements], [payout_event])  # the deposit first
    [row] = await recon.payouts()
    found = await recon.exceptions()
    summary = obj["summary"]
    assert row["payout_id"] == str(obj["id"])
    assert row["amount_minor"] == amount
    assert (row["status"], row["bank_line"], row["difference_minor"]) == ("matched", "S1", 0)
    assert row["gross_minor"] == Money.parse(summary["charges_gross_amount"], "USD").minor
    assert row["refunds_minor"] == Money.parse(summary["refunds_gross_amount"], "USD").minor
    parts = ("gross_minor", "refunds_minor", "fees_minor", "disputes_minor", "adjustments_minor")
    assert sum(row[p] for p in parts) == amount
    assert [e for e in found if e["kind"] != "payment_without_order"] == []
    # the reference transactions name orders this log does not hold
    charges = [t for t in movements if t.data["type"] == "charge" and t.data["source_order_id"]]
    assert sorted(e["reference"] for e in found) == sorted(str(t.data["id"]) for t in charges)


async def test_a_rebuild_gives_identical_views_and_keeps_a_resolution(
    dsn: str, store: EventStore, recon: Recon
) -> None:
    month = stripe_month(seed=5)
    bank = statement(month)
    async with reconciliation_running(dsn):
        await store.append([*month.events, *bank.lines])
        await recon.settle()
        unexplained = next(
            e for e in await recon.exceptions() if e["kind"] == "unexplained_deposit"
        )
        await store.append(
            [
                new("reconciliation:analyst", "r-1", RESOLVED,
                    {"exception_id": unexplained["id"], "reason": "owner's transfer"},
                    "2024-04-20T10:00:00+00:00"),
                # the same event type from a processor's source does not resolve anything
                new("stripe:acct_demo", "r-2", RESOLVED,
                    {"exception_id": f"missing_deposit:stripe:acct_demo/{bank.missing.payout_id}",
                     "reason": "not really"}, "2024-04-20T10:00:00+00:00"),
            ]
        )  # fmt: skip
        await recon.settle()
        before = await recon.snapshot()
        listed = await recon.exceptions()
        await recon.rebuild(store)
        after = await recon.snapshot()
        relisted = await recon.exceptions()
    assert after == before
    assert relisted == listed
    resolved = {e["id"]: e["resolved"] for e in relisted}
    assert resolved[unexplained["id"]] is True
    assert sum(resolved.values()) == 1
    assert len(before["payouts"]) == len(month.payouts)


async def test_duplicate_bank_lines_are_flagged_never_dropped(
    store: EventStore, recon: Recon
) -> None:
    lines = [
        bank_line("D1", "2024-03-04", -4999, "GITHUB INC 1234"),
        bank_line("D2", "2024-03-05", -4999, "GitHub, Inc. #5678"),  # the same charge again
        bank_line("D3", "2024-04-04", -4999, "GITHUB INC 9876"),  # next month: not a duplicate
        bank_line("D4", "2024-03-05", -5000, "GITHUB INC 1234"),  # another amount
    ]
    await recon.run(store, lines)
    found = await recon.exceptions()
    kept = await recon.conn.fetch(
        "SELECT line_id, duplicate_of FROM ledgerhub_views.reconciliation_bank_lines "
        "ORDER BY line_id"
    )
    assert [(e["kind"], e["reference"]) for e in found] == [("duplicate_bank_line", "D2")]
    assert "D1" in found[0]["detail"]
    assert [(r["line_id"], r["duplicate_of"]) for r in kept] == [
        ("D1", None), ("D2", "D1"), ("D3", None), ("D4", None)
    ]  # fmt: skip
