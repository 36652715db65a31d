"""Target faults the sender meets feed the same health state: Xero refusing the refresh token
marks ``sync:xero`` failing (one alert, however many rounds fail), and the sends that work once
the operator re-authorised end it (one recovery). The target's own check runs in the sender's
loop, on the sender's target instance."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import asyncpg
import pytest

from hub.alerts import AlertChannel
from hub.config import Settings, load
from hub.runtime.health import HealthMonitor
from hub.store import EventStore
from hub.sync.loop import sync_forever
from projections.accounting import Accounting
from tests.accounting.fake_xero import FakeXero, serve
from tests.accounting.harness import XERO_SECRET_ENV, documents, running, settle, write_config
from tests.accounting.targets import CHART
from tests.health.conftest import AlertReceiver
from tests.ledger.conftest import books, config
from tests.ledger.harness import Books
from tests.ledger.scenarios import stripe_scenario
from tests.runtime.harness import wait_until

__all__ = ["books", "config"]


async def test_a_refused_token_alerts_once_and_a_working_send_recovers_once(
    dsn: str,
    store: EventStore,
    pool: asyncpg.Pool,
    config: Path,
    books: Books,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    receiver: AlertReceiver,
) -> None:
    fake = FakeXero(set(CHART), "the-right-token", "org-1")
    async with serve(fake):
        write_config(config, "per_transaction", target="xero", xero_url=fake.url)
        refresh = config.parent / "xero-refresh-token"
        refresh.write_text("a-revoked-token")
        monkeypatch.setenv(XERO_SECRET_ENV, "client-secret-value")
        monkeypatch.setenv("LEDGERHUB_HOME", str(tmp_path))
        monkeypatch.setenv("LEDGERHUB_HEALTH_EVERY", "0.2")
        scenario = stripe_scenario()
        async with running(dsn):
            await store.append(scenario.before_payout + scenario.payout_paid)
            await settle(books.conn, ("ledger", "accounting"))
        xero_docs = await documents(books.conn, target="xero")
        loaded = load(Settings.from_env())
        monitor = HealthMonitor(pool, loaded, AlertChannel(receiver.url))
        loop = asyncio.create_task(sync_forever(store, loaded, tmp_path, 0.05, Accounting, monitor))
        try:
            [failing] = await receiver.wait_for(1, state="failing")
            assert failing.alert["connection"] == "sync:xero"
            assert "Xero refused the refresh token" in failing.alert["detail"]

            async def rounds() -> bool:
                ended: int = await books.conn.fetchval(
                    "SELECT count(*) FROM ledgerhub.sync_runs WHERE ended_at IS NOT NULL"
                )
                return ended >= 4

            await wait_until(rounds, what="several failing rounds")
            refresh.write_text("the-right-token")  # the operator re-authorised
            [recovered] = await receiver.wait_for(1, state="recovered")

            async def all_sent() -> bool:
                return len(fake.live_keys()) == len(xero_docs)

            await wait_until(all_sent, what="every document at Xero")
        finally:
            loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loop
    assert len(receiver.health(state="failing", reminder=False)) == 1
    assert len(receiver.health(state="recovered")) == 1
    assert recovered.alert["connection"] == "sync:xero"
    [row] = await monitor.store.all()
    assert (row.connection, row.state) == ("sync:xero", "ok")
