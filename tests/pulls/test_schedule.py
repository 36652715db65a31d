"""Scheduled pulls: one process pulls a connection at a time and once per period; a scheduled
pull that found nothing writes no run; ``pull_forever`` pulls what is due."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping

import aiohttp
import asyncpg
import pytest

from hub.spi.puller import AiohttpTransport, Response
from hub.store.runs import RunLog
from hub.usecases.pull import PullBusy, pull_connection, pull_forever
from tests.pulls.conftest import STRIPE_SOURCE, ConfigWriter, logged, stripe_connection
from tests.pulls.fake_stripe import DAY, FakeStripe, History, serve
from tests.pulls.test_stripe import FAST


def _history() -> History:
    today = int(time.time()) // DAY * DAY
    history = History(seed=9)
    history.add_days(today - 10 * DAY, 10, 4)
    history.settle(today - 1)
    return history


async def test_two_schedulers_pull_a_connection_once_per_period(
    dsn: str, pool: asyncpg.Pool, write_config: ConfigWriter
) -> None:
    history = _history()
    async with serve(FakeStripe(history)) as fake:
        config = write_config(stripe_connection(fake.url, every="1h"))
        reports = await asyncio.gather(
            *(
                pull_connection(pool, config, STRIPE_SOURCE, manual=False, if_due=3600, retry=FAST)
                for _ in range(2)
            )
        )
        done = [r for r in reports if not r.skipped]
        assert len(done) == 1  # the other found the lease held, or the pull just done
        assert done[0].appended == len(history.expected_ids())
        calls = fake.requests.total()
        later = await pull_connection(
            pool, config, STRIPE_SOURCE, manual=False, if_due=3600, retry=FAST
        )
        assert later.skipped  # not due for an hour
        assert fake.requests.total() == calls
        runs = await RunLog(pool).recent(kind="pull")
        assert [(r.status, r.records) for r in runs] == [("succeeded", done[0].appended)]

        # due, but nothing new: no row
        empty = await pull_connection(pool, config, STRIPE_SOURCE, manual=False, retry=FAST)
        assert not empty.skipped
        assert empty.ok
        assert empty.appended == 0
        assert empty.run_id is None
        assert len(await RunLog(pool).recent(kind="pull")) == 1


async def test_a_person_s_pull_while_one_runs_is_refused_with_a_failed_run(
    dsn: str, pool: asyncpg.Pool, write_config: ConfigWriter
) -> None:
    history = _history()
    entered, release = asyncio.Event(), asyncio.Event()
    async with serve(FakeStripe(history)) as fake, aiohttp.ClientSession() as session:
        config = write_config(stripe_connection(fake.url))
        real = AiohttpTransport(session)

        class Held:
            """Holds the first pull at its first call until released."""

            async def request(
                self, method: str, url: str, headers: Mapping[str, str], body: bytes | None
            ) -> Response:
                entered.set()
                await release.wait()
                return await real.request(method, url, headers, body)

        first = asyncio.create_task(
            pull_connection(pool, config, STRIPE_SOURCE, retry=FAST, transport=Held())
        )
        await entered.wait()  # the first pull holds the lease and is calling the API
        with pytest.raises(PullBusy, match="is being pulled by another process"):
            await pull_connection(pool, config, STRIPE_SOURCE, retry=FAST)
        release.set()
        report = await first
        assert report.ok, report.error
    runs = await RunLog(pool).recent(kind="pull")
    assert sorted(r.status for r in runs) == ["failed", "succeeded"]
    refused = next(r for r in runs if r.status == "failed")
    assert refused.error is not None
    assert "being pulled by another process" in refused.error
    assert refused.api_calls == 0


async def test_pull_forever_pulls_what_is_due(
    dsn: str, pool: asyncpg.Pool, write_config: ConfigWriter
) -> None:
    history = _history()
    async with serve(FakeStripe(history)) as fake:
        config = write_config(stripe_connection(fake.url, every="1h"))
        loops = [
            asyncio.create_task(pull_forever(pool, config, retry=FAST, tick=0.05)) for _ in range(2)
        ]
        try:
            deadline = asyncio.get_running_loop().time() + 60
            while len(await RunLog(pool).recent(kind="pull")) < 1:
                assert asyncio.get_running_loop().time() < deadline, "no scheduled pull ran"
                await asyncio.sleep(0.05)
        finally:
            for loop in loops:
                loop.cancel()
            for loop in loops:
                with contextlib.suppress(asyncio.CancelledError):
                    await loop
    ids = await logged(dsn, STRIPE_SOURCE)
    assert set(ids) == history.expected_ids()
    (run,) = await RunLog(pool).recent(kind="pull")
    assert (run.status, run.records) == ("succeeded", len(ids))
