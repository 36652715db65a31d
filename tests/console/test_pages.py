"""The console's lists over real HTTP: pages that follow one another to the end, amounts in the
currency's format and times in the tenant's zone."""

from __future__ import annotations

import html
import re
from zoneinfo import ZoneInfo

import pytest

from hub.api.context import HubContext
from hub.console import routes
from hub.store import EventStore
from hub.store.runs import RunLog
from tests.console.client import Console, console_key
from tests.reconciliation.conftest import recon
from tests.reconciliation.harness import Recon
from tests.reconciliation.scenarios import statement, stripe_month

__all__ = ["recon"]

_NEXT = re.compile(r'<a rel="next" href="([^"]+)"')
_PAYOUT = re.compile(r'<tr><th scope="row">(po_[0-9]+)</th>.*?<td class="num">([^<]*)</td>')


async def test_payouts_come_in_pages_that_follow_one_another_in_the_currency_s_format(
    hub: HubContext, api: str, store: EventStore, recon: Recon,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setattr(routes, "PAGE_SIZE", 4)
    month = stripe_month()
    await recon.run(store, [*month.events, *statement(month).lines])
    seen: list[tuple[str, str]] = []
    pages = 0
    async with Console(api) as console:
        await console.sign_in(await console_key(hub, "read"))
        path = "/console/reconciliation?as_of=2030-01-01"
        while path:
            status, page, _ = await console.get(path)
            assert status == 200
            pages += 1
            seen += _PAYOUT.findall(page)
            found = _NEXT.search(page)
            path = html.unescape(found[1]) if found else ""
    assert pages >= len(month.payouts) / 4 > 1
    assert [payout for payout, _ in seen] == [p.payout_id for p in month.payouts]
    assert [amount for _, amount in seen] == [f"${p.amount / 100:,.2f}" for p in month.payouts]


async def test_times_are_shown_in_the_tenant_s_zone(hub: HubContext, api: str) -> None:
    runs = RunLog.over(hub.store)
    run = await runs.start("pull", "default", "stripe:acct_demo")
    started = (await runs.get(run)).started_at  # type: ignore[union-attr]
    async with Console(api) as console:
        await console.sign_in(await console_key(hub, "read", "operate"))
        _, page, _ = await console.get("/console/")
    local = started.astimezone(ZoneInfo("America/New_York"))
    assert local.strftime("%Y-%m-%d %H:%M:%S %Z") in page
    assert local.strftime("%Z") in ("EST", "EDT")
