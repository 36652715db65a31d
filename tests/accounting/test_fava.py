"""The Beancount file the sync writes opens in Fava (the real ``fava`` server on 127.0.0.1),
without errors, and Fava's balances are the ledger's."""

from __future__ import annotations

import asyncio
import socket
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp

from connectors.beancount import BeancountTarget, account_name
from hub.store import EventStore
from hub.sync.sender import Sender
from hub.usecases.demo_month import build_month
from projections.accounting import Accounting
from tests.accounting.harness import running, settle, write_config
from tests.accounting.targets import CHART
from tests.accounting.test_documents import _ledger_sums
from tests.ledger.harness import Books
from tests.ledger.scenarios import stripe_scenario


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _get(session: aiohttp.ClientSession, url: str) -> Any:
    async with session.get(url) as response:
        assert response.status == 200, (url, response.status, await response.text())
        return await response.json()


async def test_the_synced_file_opens_in_fava_with_the_ledgers_balances(
    dsn: str, store: EventStore, config: Path, books: Books, tmp_path: Path
) -> None:
    write_config(config, "per_payout")
    scenario = stripe_scenario()
    async with running(dsn):
        await store.append(scenario.before_payout + scenario.payout_paid)
        await settle(books.conn, ("ledger", "accounting"))
    path = tmp_path / "books.beancount"
    await Sender(store, Accounting).run("default", BeancountTarget(path, CHART))
    expected = await _ledger_sums(books.conn)

    port = _free_port()
    fava = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("fava")), "--host", "127.0.0.1", "--port", str(port),
        "--read-only", str(path),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(100):  # Fava takes a moment to start
                try:
                    async with session.get(base + "/") as response:
                        slug = response.url.path.strip("/").split("/")[0]
                        assert response.status == 200
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
            else:
                raise AssertionError("fava did not start")
            errors = await _get(session, f"{base}/{slug}/api/errors")
            assert errors["data"] == []
            query = "SELECT account, sum(number) AS total GROUP BY account"
            result = await _get(session, f"{base}/{slug}/api/query?query_string={query}")
    finally:
        fava.terminate()
        await fava.wait()
    totals = {row[0]: Decimal(str(row[1])) for row in result["data"]["rows"]}
    assert totals, result
    assert totals.pop(account_name(CHART["1200"])) == 0  # the payout emptied clearing
    # every other ledger balance, to the cent, under the account's Beancount name
    assert sorted(totals.values()) == sorted(
        Decimal(amount).scaleb(-2) for amount in expected.values()
    )


async def test_the_demos_file_opens_cleanly_in_favas_own_pages(dsn: str, tmp_path: Path) -> None:
    """The file ``ledgerhub demo`` writes, served by Fava: no errors, and its pages (balance
    sheet, income statement, journal, an account, a payout's link) render with the books."""
    from tests.cli.test_cli import demo_env, ledgerhub

    result = await asyncio.to_thread(ledgerhub, "demo", env=demo_env(dsn, tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    path = tmp_path / "sync" / "default.beancount"
    port = _free_port()
    fava = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("fava")), "--host", "127.0.0.1", "--port", str(port),
        "--read-only", str(path),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    pages: dict[str, str] = {}
    try:
        async with aiohttp.ClientSession() as session:
            slug = await _started(session, base)
            errors = await _get(session, f"{base}/{slug}/api/errors")
            for page in ("balance_sheet/", "income_statement/", "journal/", "trial_balance/",
                         "account/Assets:1250-Processor-Reserves/", "errors/"):  # fmt: skip
                async with session.get(f"{base}/{slug}/{page}") as response:
                    assert response.status == 200, (page, response.status)
                    pages[page] = await response.text()
            first = next(iter(build_month().payouts))
            query = f"SELECT DISTINCT date, payee, narration WHERE 'payout-{first}' IN links"
            linked = await _get(session, f"{base}/{slug}/api/query?query_string={query}")
    finally:
        fava.terminate()
        await fava.wait()
    assert errors["data"] == []
    assert "default (ledgerhub)" in pages["balance_sheet/"]  # the file's title
    assert "Processor-Reserves" in pages["balance_sheet/"]
    assert "Ava Patel" in pages["journal/"]  # payees show
    assert len(linked["data"]["rows"]) == 1, linked


async def _started(session: aiohttp.ClientSession, base: str) -> str:
    """Wait (bounded) until Fava answers; the ledger's slug."""
    for _ in range(150):
        try:
            async with session.get(base + "/") as response:
                assert response.status == 200
                return response.url.path.strip("/").split("/")[0]
        except aiohttp.ClientConnectionError:
            await asyncio.sleep(0.1)
    raise AssertionError("fava did not start")
