"""Pulling Stripe through the fake API: a year's backfill lands every object exactly once, a
second pull appends nothing, new activity appends only what is new, and faults (429, 5xx,
timeouts, dropped connections) change nothing about the result."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime

import aiohttp
import asyncpg
import pytest

from connectors.stripe.puller import _judge
from hub.spi.puller import (
    AiohttpTransport,
    Response,
    RetryPolicy,
    SourceRejected,
    SourceUnavailable,
)
from hub.store.pulls import PullStore
from hub.store.runs import RunLog
from hub.usecases.pull import pull_connection
from tests.pulls.conftest import STRIPE_SOURCE, ConfigWriter, logged, stripe_connection
from tests.pulls.fake_stripe import DAY, FakeStripe, History, serve

FAST = RetryPolicy(attempts=12, initial=0.001, maximum=0.02)


def year_of_history(per_day: int = 8, days: int = 365) -> tuple[History, int]:
    """``days`` days of activity ending yesterday (UTC), yesterday's payout still in transit;
    and today's midnight."""
    today = int(time.time()) // DAY * DAY
    history = History()
    history.add_days(today - days * DAY, days, per_day)
    history.settle(today - 1)
    return history, today


def at(moment: int) -> datetime:
    return datetime.fromtimestamp(moment, UTC)


async def test_a_year_of_history_lands_once_then_nothing_then_only_what_is_new(
    dsn: str, pool: asyncpg.Pool, write_config: ConfigWriter
) -> None:
    history, today = year_of_history()
    objects = sum(
        len(history.objects(r))
        for r in ("charges", "refunds", "disputes", "payouts", "balance_transactions")
    )
    assert objects > 6000
    async with serve(FakeStripe(history)) as fake:
        fake.now = today
        config = write_config(stripe_connection(fake.url))
        since = at(today - 366 * DAY).date()
        report = await pull_connection(
            pool, config, STRIPE_SOURCE, since=since, retry=FAST, now=at(today)
        )
        assert report.ok, report.error
        ids = await logged(dsn, STRIPE_SOURCE)
        expected = history.expected_ids(today)
        assert len(ids) == len(set(ids)) == len(expected)
        assert set(ids) == expected
        assert report.appended == len(expected)
        assert report.duplicates == 0
        # every object is in the log: none left out
        for resource in ("charges", "refunds", "disputes"):
            listed = {o["id"] for o in history.objects(resource) if o["created"] <= today}
            assert {i.split(":")[0] for i in ids} >= listed
        paid = [p for p in history.payouts if p["status"] == "paid"]
        assert [p["status"] for p in history.payouts][-1] == "in_transit"
        assert {f"{p['id']}:paid" for p in paid} <= set(ids)
        assert fake.requests["balance_transactions"] == len(paid)
        assert max(Counter(fake.requests).values()) < 400  # pages of 100, not of 10
        run = await RunLog(pool).get(report.run_id or 0)
        assert run is not None
        assert (run.kind, run.status, run.records) == ("pull", "succeeded", len(expected))
        assert run.api_calls == fake.requests.total() == report.api_calls
        assert run.errors == 0

        again = await pull_connection(pool, config, STRIPE_SOURCE, retry=FAST, now=at(today))
        assert again.ok, again.error
        assert again.appended == 0
        assert await logged(dsn, STRIPE_SOURCE) == ids
        rerun = await RunLog(pool).get(again.run_id or 0)
        assert rerun is not None
        assert (rerun.status, rerun.records) == ("succeeded", 0)  # a person asked: a row

        # new activity: a day of charges (refunds, disputes), its payout, and yesterday's
        # payout arrives
        history.add_days(today, 1, 8)
        later = today + DAY + 3600
        history.settle(later)
        fake.now = later
        newly = history.expected_ids(later) - expected
        assert len([i for i in newly if i.startswith("ch_")]) == 8
        assert any(i.startswith("po_") for i in newly)
        fresh = await pull_connection(pool, config, STRIPE_SOURCE, retry=FAST, now=at(later))
        assert fresh.ok, fresh.error
        assert fresh.appended == len(newly)
        after = await logged(dsn, STRIPE_SOURCE)
        assert after[: len(ids)] == ids
        assert set(after[len(ids) :]) == newly


async def test_faults_change_nothing_about_what_lands(
    dsn: str, pool: asyncpg.Pool, write_config: ConfigWriter
) -> None:
    history, today = year_of_history(per_day=4, days=180)
    fake = FakeStripe(history, fault_rate=0.2, stall=3.0)
    fake.now = today
    async with serve(fake), aiohttp.ClientSession() as session:
        config = write_config(stripe_connection(fake.url))
        transport = AiohttpTransport(session, timeout=1.0)
        report = await pull_connection(
            pool,
            config,
            STRIPE_SOURCE,
            since=at(today - 200 * DAY).date(),
            retry=FAST,
            transport=transport,
            now=at(today),
        )
        assert report.ok, report.error
        kinds = set(fake.injected)
        assert kinds == {"429", "500", "503", "timeout", "drop"}, fake.injected
        # every fault was an error to the client, but a dropped kept-alive connection, which
        # aiohttp itself tries once more (a call slowed past the timeout by a loaded machine
        # would be one more error)
        faults = fake.injected.total()
        assert report.errors >= faults - fake.injected["drop"]
        assert report.errors > 0.1 * report.api_calls
        ids = await logged(dsn, STRIPE_SOURCE)
        assert len(ids) == len(set(ids))
        assert set(ids) == history.expected_ids(today)


async def test_a_refused_key_stops_the_pull_with_stripe_s_message_and_a_failed_run(
    dsn: str, pool: asyncpg.Pool, write_config: ConfigWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    history, _ = year_of_history(per_day=1, days=3)
    async with serve(FakeStripe(history)) as fake:
        monkeypatch.setenv("STRIPE_API_KEY", "rk_test_wrongwrongwrongwrong9999")
        config = write_config(stripe_connection(fake.url))
        report = await pull_connection(pool, config, STRIPE_SOURCE, retry=FAST)
    assert report.error is not None
    assert "HTTP 401: invalid_request_error: Invalid API Key provided" in report.error
    assert "rk_test_wrongwrongwrongwrong9999" not in report.error
    assert report.api_calls == 1  # a refusal is not retried
    run = await RunLog(pool).get(report.run_id or 0)
    assert run is not None
    assert (run.status, run.records, run.errors) == ("failed", 0, 1)
    assert run.error == report.error


async def test_a_restricted_key_without_a_permission_is_refused_naming_it(
    dsn: str, pool: asyncpg.Pool, write_config: ConfigWriter
) -> None:
    history, _ = year_of_history(per_day=2, days=10)
    fake = FakeStripe(history, readable=("charges", "refunds"))
    async with serve(fake):
        config = write_config(stripe_connection(fake.url))
        report = await pull_connection(pool, config, STRIPE_SOURCE, retry=FAST)
    assert report.error is not None
    assert "HTTP 403" in report.error
    assert "disputes_read" in report.error
    # what came before the refusal is kept, with its cursors
    cursors = {c.stream for c in await PullStore(pool).cursors(STRIPE_SOURCE)}
    assert cursors == {"charges", "refunds"}
    assert len(await logged(dsn, STRIPE_SOURCE)) == len(history.charges) + len(history.refunds)


async def test_a_pull_that_dies_mid_window_resumes_from_its_last_page(
    dsn: str, pool: asyncpg.Pool, write_config: ConfigWriter
) -> None:
    history, _today = year_of_history(per_day=5, days=60)

    class Killed(Exception):
        pass

    fake = FakeStripe(history)

    def die_at(count: int) -> None:
        if count == 2:
            raise Killed  # the second page request: one page committed

    async with serve(fake), aiohttp.ClientSession() as session:
        config = write_config(stripe_connection(fake.url))
        real = AiohttpTransport(session)

        class Dying:
            calls = 0

            async def request(self, method: str, url: str, headers: object, body: None) -> object:
                Dying.calls += 1
                die_at(Dying.calls)
                return await real.request(method, url, headers, body)  # type: ignore[arg-type]

        with pytest.raises(Killed):
            await pull_connection(
                pool,
                config,
                STRIPE_SOURCE,
                retry=FAST,
                transport=Dying(),  # type: ignore[arg-type]
            )
        first = await logged(dsn, STRIPE_SOURCE)
        assert len(first) == 100  # one page of charges, committed with its cursor
        (cursor,) = [c for c in await PullStore(pool).cursors(STRIPE_SOURCE)]
        assert cursor.stream == "charges"
        assert cursor.state["after"] == first[-1].split(":")[0]
        report = await pull_connection(pool, config, STRIPE_SOURCE, retry=FAST)
        assert report.ok, report.error
        assert report.duplicates == 0  # resumed after the committed page, not from the start
        ids = await logged(dsn, STRIPE_SOURCE)
        assert set(ids) == history.expected_ids()
        assert len(ids) == len(set(ids))


@pytest.mark.parametrize(
    ("status", "headers", "retried", "wait"),
    [
        (429, {}, True, None),
        (429, {"Retry-After": "2"}, True, 2.0),
        (500, {"Stripe-Should-Retry": "false"}, False, None),
        (400, {"Stripe-Should-Retry": "true"}, True, None),
        (409, {}, True, None),
        (503, {"Retry-After": "soon"}, True, None),
        (402, {}, False, None),
        (403, {}, False, None),
    ],
)
def test_stripe_should_retry_decides_before_the_status(
    status: int, headers: dict[str, str], retried: bool, wait: float | None
) -> None:
    body = b'{"error": {"type": "api_error", "code": "x", "message": "m"}}'
    with pytest.raises(SourceUnavailable if retried else SourceRejected) as caught:
        _judge("/v1/charges", Response(status, headers, body))
    assert f"HTTP {status}: api_error/x: m" in str(caught.value)
    if retried:
        assert isinstance(caught.value, SourceUnavailable)
        assert caught.value.retry_after == wait
