"""Pulling Shopify through the fake REST Admin API: orders with their refunds, payouts and their
balance transactions land once; a second pull appends nothing; updated orders and payouts that
arrived are new events; 429s (the leaky bucket's and injected), 5xx and timeouts change nothing;
the ledger books every pulled event."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import aiohttp
import asyncpg
import pytest

from connectors.shopify.puller import _overflow
from hub.spi.puller import AiohttpTransport
from hub.usecases.pull import pull_connection
from projections.ledger import Ledger
from tests.ledger.harness import Books, ledger_running
from tests.pulls.conftest import ConfigWriter, logged
from tests.pulls.fake_shopify import TOKEN, FakeShopify, Store, serve
from tests.pulls.test_stripe import FAST

SOURCE = "shopify:acme-store"
START = datetime(2025, 1, 1, tzinfo=UTC)
NOW = datetime(2025, 3, 1, tzinfo=UTC)


def connection(url: str) -> str:
    return (
        f'[[connections]]\nid = "{SOURCE}"\nconnector = "shopify"\n'
        f'api_key = "env:SHOPIFY_TOKEN"\napi_url = "{url}"\npull = {{ every = "1h" }}\n'
    )


@pytest.fixture
def shopify_config(write_config: ConfigWriter, monkeypatch: pytest.MonkeyPatch) -> ConfigWriter:
    monkeypatch.setenv("SHOPIFY_TOKEN", TOKEN)
    return lambda url: write_config(connection(url))


def shop(orders: int = 600) -> Store:
    store = Store()
    for n in range(orders):
        order = store.order(START + timedelta(minutes=90 * n))
        if n % 10 == 3:
            store.refund(order["id"], START + timedelta(minutes=90 * n + 45))
    for day in range(20):
        store.payout(f"2025-01-{day + 2:02d}", "paid", 30)
    store.payout("2025-02-27", "in_transit", 12)
    store.payout("2025-02-28", "scheduled", 8)
    return store


async def test_orders_refunds_payouts_land_once_then_only_what_changed(
    dsn: str, pool: asyncpg.Pool, shopify_config: ConfigWriter, books: Books
) -> None:
    store = shop()
    fake = FakeShopify(store)
    async with serve(fake):
        config = shopify_config(fake.url)
        since = START.date()
        report = await pull_connection(pool, config, SOURCE, since=since, retry=FAST, now=NOW)
        assert report.ok, report.error
        ids = await logged(dsn, SOURCE)
        expected = store.expected_ids()
        assert len(ids) == len(set(ids)) == len(expected)
        assert set(ids) == expected
        assert report.streams["orders"] == 600 + 60  # each order, each refund

        again = await pull_connection(pool, config, SOURCE, retry=FAST, now=NOW)
        assert again.ok, again.error
        assert again.appended == 0

        later = NOW + timedelta(hours=2)
        first = next(iter(store.orders))
        store.touch(first, NOW + timedelta(minutes=30), financial_status="refunded")
        store.refund(first, NOW + timedelta(minutes=31))
        store.order(NOW + timedelta(minutes=40))
        store.pay()
        newly = store.expected_ids() - expected
        fresh = await pull_connection(pool, config, SOURCE, retry=FAST, now=later)
        assert fresh.ok, fresh.error
        assert fresh.appended == len(newly)
        after = await logged(dsn, SOURCE)
        assert set(after[len(ids) :]) == newly
    assert fake.calls == report.api_calls + again.api_calls + fresh.api_calls

    async with ledger_running(dsn):
        await books.settle()
    unmapped = await books.conn.fetch(f"SELECT reason FROM {Ledger.view('unmapped')}")
    assert [r["reason"] for r in unmapped] == []  # every pulled event maps and books
    balances = await books.balances()
    assert balances[("1000", "USD")] > 0  # the paid payouts reached the bank


async def test_rate_limits_and_faults_change_nothing(
    dsn: str, pool: asyncpg.Pool, shopify_config: ConfigWriter
) -> None:
    store = shop(400)
    fake = FakeShopify(store, fault_rate=0.2, stall=3.0, seed=3)
    async with serve(fake), aiohttp.ClientSession() as session:
        config = shopify_config(fake.url)
        report = await pull_connection(
            pool,
            config,
            SOURCE,
            since=START.date(),
            retry=FAST,
            now=NOW,
            transport=AiohttpTransport(session, timeout=1.0),
        )
    assert report.ok, report.error
    assert fake.injected["429"] > 0
    assert fake.injected["timeout"] > 0
    assert fake.injected["500"] + fake.injected["503"] > 0
    # every fault was an error to the client (a call slowed past the timeout by a loaded
    # machine would be one more)
    assert report.errors >= fake.injected.total() + fake.throttled
    ids = await logged(dsn, SOURCE)
    assert len(ids) == len(set(ids))
    assert set(ids) == store.expected_ids()


async def test_a_refused_token_stops_the_pull_with_shopify_s_message(
    dsn: str, pool: asyncpg.Pool, shopify_config: ConfigWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeShopify(shop(5))
    async with serve(fake):
        monkeypatch.setenv("SHOPIFY_TOKEN", "shpat_wrong_wrong_wrong_0000")
        config = shopify_config(fake.url)
        report = await pull_connection(pool, config, SOURCE, retry=FAST, now=NOW)
    assert report.error == (
        "Shopify: HTTP 401: [API] Invalid API key or access token (unrecognized login or wrong "
        "password)"
    )
    assert report.api_calls == 1


def test_the_bucket_header_says_how_many_calls_to_let_leak_first() -> None:
    assert _overflow("32/40") == 0.0
    assert _overflow("39/40") == pytest.approx(3.0)
    assert _overflow("40/40") == pytest.approx(4.0)
    assert _overflow(None) == 0.0
    assert _overflow("garbage") == 0.0
