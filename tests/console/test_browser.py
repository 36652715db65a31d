"""The console in a real browser (Debian's Chromium through Playwright) against a real server
on 127.0.0.1 and a real PostgreSQL: what an operator and an analyst do, screenshot by screenshot
(written at 1280 px and 390 px; see ``Screenshots``)."""

from __future__ import annotations

import copy
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from playwright.async_api import Browser, expect

from hub.api.context import HubContext
from hub.domain.audit import AUDIT_SOURCE
from hub.domain.keys import key_prefix
from hub.domain.money import Money
from hub.store import EventStore
from tests.console.client import console_key, deliver_webhook
from tests.console.conftest import Screenshots, sign_in
from tests.factories import event
from tests.ledger.conftest import books
from tests.ledger.harness import Books, ledger_running, new
from tests.ledger.scenarios import (
    STRIPE,
    STRIPE_SOURCE,
    balance_transaction,
    stripe_event,
    stripe_scenario,
)
from tests.projections.count import CountByType
from tests.reconciliation.conftest import recon
from tests.reconciliation.harness import Recon, reconciliation_running
from tests.reconciliation.scenarios import bank_line, statement, stripe_month
from tests.reconciliation.test_orders import T, _charge, _order
from tests.runtime.conftest import model
from tests.runtime.harness import ReadModel, running, wait_until

__all__ = ["books", "model", "recon"]

LATE = "2030-01-01"
"""The day the scenarios' statuses are judged on: every payout window has closed."""


async def test_an_operator_resolves_a_planted_exception_and_it_is_resolved_after_a_rebuild(
    hub: HubContext, api: str, dsn: str, store: EventStore, recon: Recon, browser: Browser,
    shots: Screenshots,
) -> None:  # fmt: skip
    month = stripe_month()
    bank = statement(month)
    await recon.run(store, [*month.events, *bank.lines])
    planted = await recon.exceptions(resolved=False)
    key = await console_key(hub, "read", "operate")
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    await sign_in(page, api, key)
    await shots(page, "overview")

    await page.goto(f"{api}/console/reconciliation?as_of={LATE}")
    await expect(page.get_by_role("row").filter(has_text=bank.missing.payout_id)).to_contain_text(
        "missing deposit"
    )
    summary = page.get_by_role("list", name="Payouts by status")
    await expect(
        summary.get_by_role("listitem").filter(has_text="missing deposit")
    ).to_contain_text(f"1 · ${bank.missing.amount / 100:,.2f}")
    await shots(page, "payouts")
    await page.goto(f"{api}/console/exceptions?as_of={LATE}")
    rows = page.locator("tr[data-exception]")
    await expect(rows).to_have_count(len(planted))
    shown = sorted([await r.get_attribute("data-exception") or "" for r in await rows.all()])
    assert shown == sorted(e["id"] for e in planted)
    await shots(page, "exceptions")

    target = next(e for e in planted if e["kind"] == "amount_mismatch")
    row = page.locator(f'tr[data-exception="{target["id"]}"]')
    await row.get_by_label("Reason").fill("the bank's wire fee, booked by hand")
    await row.get_by_role("button", name="Resolve").click()
    await expect(page.get_by_role("status")).to_contain_text(f"Exception {target['id']} resolved")
    async with reconciliation_running(dsn):
        await recon.settle()
        await recon.rebuild(store)
    await page.goto(f"{api}/console/exceptions?as_of={LATE}&resolved=resolved")
    resolved = page.locator(f'tr[data-exception="{target["id"]}"]')
    await expect(resolved).to_contain_text("resolved")
    await expect(resolved.get_by_role("button", name="Reopen")).to_be_visible()
    await shots(page, "exceptions-resolved")
    await page.goto(f"{api}/console/exceptions?as_of={LATE}")
    await expect(page.locator("tr[data-exception]")).to_have_count(len(planted) - 1)

    await page.goto(f"{api}/console/chart")
    bars = page.locator("svg rect.payouts")
    await expect(bars).to_have_count(len({p.arrival for p in month.payouts}))
    missing = bars.filter(has_text=bank.missing.arrival.isoformat())
    await expect(missing).to_contain_text(f"${bank.missing.amount / 100:,.2f}")
    await shots(page, "chart")


async def test_a_read_key_sees_exceptions_but_no_resolve_button(
    hub: HubContext, api: str, store: EventStore, recon: Recon, browser: Browser,
) -> None:  # fmt: skip
    month = stripe_month()
    await recon.run(store, [*month.events, *statement(month).lines])
    planted = await recon.exceptions(resolved=False)
    page = await browser.new_page()
    await sign_in(page, api, await console_key(hub, "read"))
    await page.goto(f"{api}/console/exceptions?as_of={LATE}")
    await expect(page.locator("tr[data-exception]")).to_have_count(len(planted))
    await expect(page.get_by_role("button", name="Resolve")).to_have_count(0)
    await expect(page.get_by_role("link", name="Parked")).to_have_count(0)


async def test_a_trial_balance_line_leads_down_to_the_raw_webhook_and_its_verified_signature(
    hub: HubContext, api: str, dsn: str, store: EventStore, books: Books, browser: Browser,
    shots: Screenshots,
) -> None:  # fmt: skip
    scenario = stripe_scenario()
    charges = [e for e in scenario.before_payout if e.type == "stripe.charge.succeeded"]
    async with aiohttp.ClientSession() as http:
        positions = [await deliver_webhook(http, api, e.data) for e in charges]
    await store.append([e for e in scenario.before_payout if e not in charges])
    await store.append(scenario.payout_paid)
    async with ledger_running(dsn):
        await books.settle()
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    await sign_in(page, api, await console_key(hub, "read"))
    await page.get_by_role("link", name="Ledger", exact=True).click()
    await expect(page.get_by_text("balanced", exact=True)).to_be_visible()
    revenue = page.get_by_role("row").filter(has=page.get_by_role("link", name="4000"))
    await expect(revenue).to_contain_text("$35.99")  # ch_A 10.99 + ch_B 25.00, credited
    await shots(page, "trial-balance")

    await revenue.get_by_role("link", name="4000").click()
    await expect(page.get_by_role("heading", name="Account 4000")).to_be_visible()
    await shots(page, "account")
    await page.get_by_role("link", name="stripe:acct_demo/charge:ch_A").click()
    await expect(
        page.get_by_role("heading", name="Entry stripe:acct_demo/charge:ch_A")
    ).to_be_visible()
    await expect(page.get_by_role("row").filter(has_text="1200")).to_contain_text("$10.99")
    await shots(page, "entry")

    await page.get_by_role("link", name=str(positions[0]), exact=True).click()
    await expect(page.get_by_role("heading", name=f"Event {positions[0]}")).to_be_visible()
    await expect(page.locator("#signature")).to_contain_text("Signature verified")
    await expect(page.locator("pre.raw")).to_contain_text('"id":"evt_ch_A_charge.succeeded"')
    await expect(page.locator("dl.mono")).to_contain_text("stripe-signature")
    await shots(page, "event")

    # the same walk for an event that came through the API: no signature to show
    await page.goto(f"{api}/console/events/{positions[-1] + 1}")
    await expect(page.locator("#signature")).to_contain_text("Not a webhook delivery")


async def test_an_operator_retries_a_parked_event_and_the_worker_applies_it(
    hub: HubContext, api: str, dsn: str, store: EventStore, model: ReadModel, tmp_path: Path,
    browser: Browser, shots: Screenshots, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("LEDGERHUB_TEST_DIR", str(tmp_path))
    await store.append([event("fine"), event("poisoned", data={"poison": True})])
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    operator = await console_key(hub, "read", "operate")
    await sign_in(page, api, operator)
    async with running(dsn, CountByType):
        await wait_until(model.caught_up, what="the projection to pass the poison event")
        await page.get_by_role("link", name="Parked", exact=True).click()
        row = page.locator("tr[data-parked]")
        await expect(row).to_have_count(1)
        await expect(row).to_contain_text("parked")
        await shots(page, "parked")
        (tmp_path / "fixed").touch()
        await row.get_by_role("button", name="Retry").click()
        await expect(page.get_by_role("status")).to_contain_text("retry requested")

        async def applied() -> bool:
            return 2 in await model.applications()

        await wait_until(applied, what="the retried event to be applied")
    await page.goto(f"{api}/console/parked?status=all")
    await expect(page.locator("tr[data-parked]")).to_contain_text("resolved")
    await page.goto(f"{api}/console/parked")
    await expect(page.locator("tr[data-parked]")).to_have_count(0)
    await page.goto(f"{api}/console/")
    await shots(page, "overview-after-retry")
    [audited] = [e for e in await store.read_after(0, limit=100) if e.source == AUDIT_SOURCE]
    assert audited.type == "audit.parked.retry"
    assert audited.data["key_prefix"] == key_prefix(operator), "the session's key did it"
    assert audited.data["from"] == "127.0.0.1"
    assert audited.data["subject"]["via"] == "console"


async def test_an_order_s_chain_from_the_order_to_its_bank_line(
    hub: HubContext, api: str, store: EventStore, recon: Recon, browser: Browser,
    shots: Screenshots,
) -> None:  # fmt: skip
    owed = _order(1001, "pending")
    total = Money.parse(owed.data["total_price"], "USD").minor
    half = total // 2
    bt = balance_transaction("txn_ch_1", "ch_1", half, 30, "charge", T)
    payout = {**copy.deepcopy(STRIPE["payout"]), "id": "po_1", "amount": half - 30,
              "created": T, "arrival_date": T + 86400, "status": "paid"}  # fmt: skip
    await recon.run(store, [
        owed,
        _charge("ch_1", half, "1001"),
        new(STRIPE_SOURCE, "txn_ch_1", "stripe.balance_transaction",
            {"data": {"object": bt}, "payout": "po_1"}, "2008-01-10T20:00:00+00:00"),
        new(STRIPE_SOURCE, "evt_po_1", "stripe.payout.paid",
            stripe_event("payout.paid", payout, T + 86400), "2008-01-11T06:00:00+00:00"),
        bank_line("B1", "2008-01-11", half - 30, "STRIPE TRANSFER"),
    ])  # fmt: skip
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    await sign_in(page, api, await console_key(hub, "read"))
    await page.get_by_label("Order id").fill("1001")
    await page.get_by_role("button", name="Show its chain").click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text("1001")
    payment = page.get_by_role("row").filter(has_text="ch_1")
    for shown in ("po_1", "matched", "B1", f"${half / 100:,.2f}"):
        await expect(payment).to_contain_text(shown)
    await expect(page.get_by_text("No document: the tenant syncs nowhere.")).to_be_visible()
    await expect(page.locator("main")).to_contain_text("order unpaid")
    await shots(page, "order")


async def test_a_form_posted_from_another_site_is_refused(
    hub: HubContext, api: str, browser: Browser
) -> None:
    async def evil(request: web.Request) -> web.Response:
        form = (
            f'<form method="post" action="{api}/console/sign-out">'
            '<input type="hidden" name="csrf" value="guessed"><button>Win a prize</button></form>'
        )
        return web.Response(
            text=f"<!doctype html><title>prize</title>{form}", content_type="text/html"
        )

    app = web.Application()
    app.router.add_get("/", evil)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        context = await browser.new_context()
        page = await context.new_page()
        await sign_in(page, api, await console_key(hub, "read"))
        other = await context.new_page()
        await other.goto(f"http://localhost:{port}/")  # another site than 127.0.0.1
        async with other.expect_navigation():
            await other.get_by_role("button", name="Win a prize").click()
        await expect(other.get_by_role("alert")).to_be_visible()
        refused = await other.content()
        await page.reload()
        await expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    finally:
        await runner.cleanup()
    assert "Not allowed" in refused
