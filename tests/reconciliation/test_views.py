"""The analysts' side: ``ledgerhub_views`` read by the read-only role; configured windows;
a composition that does not add up."""

from __future__ import annotations

import copy
from pathlib import Path

import asyncpg
import pytest

from hub.config import load_config
from hub.errors import ConfigError
from hub.store import EventStore
from projections.reconciliation import Reconciliation
from projections.reconciliation.matching import add_business_days
from projections.reconciliation.settings import MatchSettings
from tests.ledger.harness import new
from tests.ledger.scenarios import STRIPE, STRIPE_SOURCE, balance_transaction, stripe_event
from tests.reconciliation.harness import Recon
from tests.reconciliation.scenarios import bank_line, statement, stripe_month


async def _as_analyst(conn: asyncpg.Connection, sql: str) -> None:
    async with conn.transaction():
        await conn.execute("SET LOCAL ROLE ledgerhub_analyst")
        await conn.fetchval(sql)


async def test_the_analyst_role_reads_the_views_and_nothing_else(
    store: EventStore, recon: Recon
) -> None:
    month = stripe_month()
    bank = statement(month)
    await recon.run(store, [*month.events, *bank.lines])
    conn = recon.conn
    counts, refused = {}, []
    async with conn.transaction():
        await conn.execute("SET LOCAL ROLE ledgerhub_analyst")
        for view in ("reconciliation_payouts", "reconciliation_exceptions",
                     "reconciliation_bank_lines", "reconciliation_orders",
                     "reconciliation_payments"):  # fmt: skip
            counts[view] = await conn.fetchval(f"SELECT count(*) FROM ledgerhub_views.{view}")
        statuses = await conn.fetch(
            "SELECT status, count(*) AS n FROM ledgerhub_views.reconciliation_payouts "
            "GROUP BY status"
        )
    for statement_text in (
        "SELECT count(*) FROM ledgerhub.events",
        f"SELECT count(*) FROM {Reconciliation.view('payouts')}",
        f"DELETE FROM {Reconciliation.view('exceptions')}",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await _as_analyst(conn, statement_text)
        refused.append(statement_text)
    assert counts["reconciliation_payouts"] == len(month.payouts)
    assert counts["reconciliation_exceptions"] == 3  # every window has long closed
    assert counts["reconciliation_bank_lines"] == len(bank.lines)
    charges = [e for e in month.events if e.type == "stripe.charge.succeeded"]
    assert counts["reconciliation_payments"] == len(charges)
    assert counts["reconciliation_orders"] == 0
    assert dict((r["status"], r["n"]) for r in statuses) == {
        "matched": len(month.payouts) - 2, "missing_deposit": 1, "amount_mismatch": 1
    }  # fmt: skip
    assert len(refused) == 3


async def test_a_narrower_configured_window_leaves_a_late_deposit_unmatched(
    store: EventStore, recon: Recon, config: Path
) -> None:
    config.write_text(  # noqa: ASYNC240
        "[tenants.default]\n[tenants.default.reconciliation]\nwindow_after = 1\n"
    )
    rules = load_config(config).section("reconciliation", "default", MatchSettings)
    assert rules.window_after == 1
    month = stripe_month()
    first = month.payouts[0]
    late = add_business_days(first.arrival, 3)
    late_line = bank_line("LATE", late.isoformat(), first.amount, "STRIPE ST-1")
    await recon.run(store, month.events, [late_line])
    found = {(e["kind"], e["reference"]) for e in await recon.exceptions()}
    assert ("missing_deposit", first.payout_id) in found
    assert ("unexplained_deposit", "LATE") in found


def test_a_bad_reconciliation_setting_is_refused_naming_the_key(
    config: Path,
) -> None:
    """The section is validated with the rest of the file, at start, with its line."""
    config.write_text("[tenants.default.reconciliation]\nwindow_after = -2\n")
    with pytest.raises(
        ConfigError, match=rf"{config}:2: tenants\.default\.reconciliation\.window_after"
    ):
        load_config(config)
    config.write_text("[tenants.default]\n\n[tenants.default.reconcile]\nwindow_after = 2\n")
    with pytest.raises(ConfigError, match=rf"{config}:3: tenants\.default\.reconcile: unknown key"):
        load_config(config)


async def test_a_payout_whose_balance_transactions_do_not_add_up_is_flagged(
    store: EventStore, recon: Recon
) -> None:
    t = 1709560800  # 2024-03-04 14:00 UTC
    bts = [
        balance_transaction("txn_1", "ch_1", 10_000, 320, "charge", t),
        balance_transaction("txn_2", "ch_2", 5_000, 175, "charge", t),
    ]
    amount = sum(bt["net"] for bt in bts) + 500  # more than its balance transactions
    payout = {**copy.deepcopy(STRIPE["payout"]), "id": "po_X", "amount": amount,
              "created": t, "arrival_date": t + 2 * 86400, "status": "paid"}  # fmt: skip
    events = [
        new(STRIPE_SOURCE, bt["id"], "stripe.balance_transaction",
            {"data": {"object": bt}, "payout": "po_X"}, "2024-03-04T20:00:00+00:00")
        for bt in bts
    ]  # fmt: skip
    paid = stripe_event("payout.paid", payout, t)
    events.append(
        new(STRIPE_SOURCE, "evt_po_X", "stripe.payout.paid", paid, "2024-03-06T06:00:00+00:00")
    )
    events.append(bank_line("LX", "2024-03-06", amount, "STRIPE TRANSFER"))
    await recon.run(store, events)
    [row] = await recon.payouts()
    found = await recon.exceptions()
    assert row["status"] == "matched"
    assert row["gross_minor"] == 15_000
    assert row["fees_minor"] == -495
    assert [(e["kind"], e["reference"], e["difference_minor"]) for e in found] == [
        ("composition_mismatch", "po_X", -500)
    ]
