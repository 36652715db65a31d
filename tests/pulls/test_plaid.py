"""Plaid ``/transactions/sync`` through the fake: added, modified and removed transactions reach
the books (the later state wins), pending ones are left out as the file import leaves them out,
a mutation during pagination restarts the loop from its first cursor, and a pull that dies
resumes at its next page."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal

import aiohttp
import asyncpg
import pytest

from hub.config import Config
from hub.spi.puller import AiohttpTransport, Response
from hub.store.pulls import PullStore
from hub.usecases.pull import pull_connection
from tests.ledger.harness import Books, ledger_running
from tests.pulls.conftest import ConfigWriter, logged
from tests.pulls.fake_plaid import FakePlaid, serve
from tests.pulls.test_stripe import FAST

SOURCE = "plaid:main-bank"


def plaid_connection(url: str) -> str:
    return (
        f'[[connections]]\nid = "{SOURCE}"\nconnector = "plaid"\n'
        'client_id = "env:PLAID_CLIENT_ID"\nsecret = "env:PLAID_SECRET"\n'
        'access_token = "env:PLAID_ACCESS_TOKEN"\n'
        f'api_url = "{url}"\naccounts = {{ "acc_checking" = "checking" }}\n'
        'pull = { every = "1d" }\n'
    )


@pytest.fixture
def plaid_config(write_config: ConfigWriter, monkeypatch: pytest.MonkeyPatch) -> ConfigWriter:
    fake = FakePlaid()
    monkeypatch.setenv("PLAID_CLIENT_ID", fake.client_id)
    monkeypatch.setenv("PLAID_SECRET", fake.secret)
    monkeypatch.setenv("PLAID_ACCESS_TOKEN", fake.access_token)

    def write(url: str) -> Config:
        return write_config(plaid_connection(url))

    return write


def history(fake: FakePlaid, n: int) -> None:
    """``n`` posted transactions on checking (odd ones money in), one on an account the
    connection does not take, and a pending one."""
    for i in range(n):
        amount = f"{'-' if i % 2 else ''}{10 + i}.{i % 100:02d}"
        fake.add(f"tx{i:04d}", amount, f"2025-03-{1 + i % 28:02d}", f"Payee {i % 7}")
    fake.accounts["acc_card"] = "USD"
    fake.add("card0001", "99.00", "2025-03-02", "Card purchase", account_id="acc_card")
    fake.add("pend0001", "45.10", "2025-03-28", "Pending coffee", pending=True)


async def test_added_modified_and_removed_reach_the_books(
    dsn: str, pool: asyncpg.Pool, plaid_config: ConfigWriter, books: Books
) -> None:
    fake = FakePlaid()
    history(fake, 250)
    async with serve(fake):
        config = plaid_config(fake.url)
        first = await pull_connection(pool, config, SOURCE, retry=FAST)
        assert first.ok, first.error
        assert first.appended == 250  # not the card's, not the pending one
        assert fake.calls == 3  # pages of 100
        fake.modify("tx0005", amount="-123.45")  # now 123.45 in
        fake.remove("tx0007")
        fake.remove("pend0001")  # the pending one posts under a new id
        fake.add("post0001", "45.10", "2025-03-29", "Coffee", pending_transaction_id="pend0001")
        second = await pull_connection(
            pool, config, SOURCE, retry=FAST, now=datetime(2025, 4, 1, 12, tzinfo=UTC)
        )
        assert second.ok, second.error
        again = await pull_connection(pool, config, SOURCE, retry=FAST)
        assert again.ok
        assert again.appended == 0
    ids = await logged(dsn, SOURCE)
    assert len(ids) == len(set(ids)) == 253
    later = sorted(ids[250:])
    assert later[0] == "post0001"
    assert later[1].startswith("tx0005:modified:")
    assert later[2] == "tx0007:removed"
    (cursor,) = await PullStore(pool).cursors(SOURCE)
    assert cursor.state["pending"] == []  # pend0001's removal was its posting, not a line

    async with ledger_running(dsn):
        await books.settle()
    final = [
        tx
        for tx in fake.transactions.values()
        if tx["account_id"] == "acc_checking" and not tx["pending"]
    ]
    assert len(final) == 250  # 250 + the posted one - the removed one
    expected = sum(-int(Decimal(str(tx["amount"])) * 100) for tx in final)
    balances = await books.balances()
    assert balances[("1000", "USD")] == expected  # the bank account: every line's last state
    assert balances[("2900", "USD")] == -expected  # uncategorized lines wait in suspense
    entry = await books.entry(f"{SOURCE}/line:tx0007")
    assert entry is not None
    assert list(entry["amounts"]) == []
    restated = await books.entry(f"{SOURCE}/line:tx0005")
    assert restated is not None
    assert sorted(restated["amounts"]) == [-12345, 12345]


async def test_a_mutation_during_pagination_restarts_the_loop_from_its_first_cursor(
    dsn: str, pool: asyncpg.Pool, plaid_config: ConfigWriter
) -> None:
    fake = FakePlaid()
    history(fake, 250)

    def mutate(call: int) -> None:
        if call == 2:  # after the first page: the data changes under the loop
            fake.modify("tx0003", name="Payee renamed")
            fake.add("late0001", "5.00", "2025-03-30", "Late one")

    fake.on_request = mutate
    async with serve(fake):
        config = plaid_config(fake.url)
        report = await pull_connection(pool, config, SOURCE, retry=FAST)
    assert report.ok, report.error
    assert fake.mutation_errors == 1
    assert report.duplicates == 100  # the first page, fetched again from the loop's start
    ids = await logged(dsn, SOURCE)
    assert len(ids) == len(set(ids)) == 252
    assert "late0001" in ids
    assert any(i.startswith("tx0003:modified:") for i in ids)
    (cursor,) = await PullStore(pool).cursors(SOURCE)
    assert "next" not in cursor.state  # the loop finished: the cursor is its last next_cursor
    assert cursor.state["pending"] == ["pend0001"]


async def test_a_pull_that_dies_resumes_at_its_next_page_and_faults_change_nothing(
    dsn: str, pool: asyncpg.Pool, plaid_config: ConfigWriter
) -> None:
    fake = FakePlaid(fault_rate=0.2, stall=3.0, seed=4)
    history(fake, 450)

    class Killed(Exception):
        pass

    async with serve(fake), aiohttp.ClientSession() as session:
        config = plaid_config(fake.url)
        real = AiohttpTransport(session, timeout=1.0)
        answered = 0

        class Dying:
            """Dies once two pages have been answered."""

            async def request(
                self, method: str, url: str, headers: Mapping[str, str], body: bytes | None
            ) -> Response:
                nonlocal answered
                if answered == 2:
                    raise Killed
                response = await real.request(method, url, headers, body)
                answered += response.status == 200
                return response

        with pytest.raises(Killed):
            await pull_connection(pool, config, SOURCE, retry=FAST, transport=Dying())
        assert len(await logged(dsn, SOURCE)) == 200
        (cursor,) = await PullStore(pool).cursors(SOURCE)
        assert cursor.state["cursor"] is None
        assert cursor.state["next"]
        report = await pull_connection(pool, config, SOURCE, retry=FAST, transport=real)
    assert report.ok, report.error
    assert report.duplicates == 0  # resumed at the third page
    assert fake.injected.total() > 0
    ids = await logged(dsn, SOURCE)
    assert len(ids) == len(set(ids)) == 450


async def test_a_refused_access_token_stops_the_pull_with_plaid_s_error_not_the_token(
    dsn: str, pool: asyncpg.Pool, plaid_config: ConfigWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakePlaid()
    history(fake, 3)
    async with serve(fake):
        monkeypatch.setenv("PLAID_ACCESS_TOKEN", "access-sandbox-wrong-token-777")
        config = plaid_config(fake.url)
        report = await pull_connection(pool, config, SOURCE, retry=FAST)
    assert report.error is not None
    assert "HTTP 400: INVALID_INPUT/INVALID_ACCESS_TOKEN" in report.error
    assert "access-sandbox-wrong-token-777" not in report.error
    assert report.api_calls == 1
