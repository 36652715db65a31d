"""``GET /v1/ledger/trial-balance`` and ``GET /v1/ledger/accounts/{code}/entries`` through a
real server on 127.0.0.1, with scoped keys."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from yarl import URL

from hub.api.context import ApiLimits, HubContext
from hub.api.server import open_hub, serving
from hub.config import Config
from hub.spi.exports import CSV, XLSX
from hub.store import EventStore
from tests.api.conftest import bearer, make_key
from tests.ledger.harness import Books, ledger_running, new
from tests.ledger.scenarios import STRIPE_SOURCE, stripe_scenario
from tests.ledger.test_books import RULES, bank_line


@pytest.fixture
async def hub(dsn: str, config: Path) -> AsyncIterator[HubContext]:
    async with open_hub(dsn, Config(), ApiLimits()) as context:
        yield context


@pytest.fixture
async def api(hub: HubContext) -> AsyncIterator[str]:
    async with serving(hub, "127.0.0.1", 0) as url:
        yield url


async def test_trial_balance_and_account_entries_over_http(
    dsn: str, store: EventStore, books: Books, hub: HubContext, api: str
) -> None:
    scenario = stripe_scenario()
    async with ledger_running(dsn):
        await store.append([*scenario.before_payout, *scenario.payout_paid])
        await books.settle()
    read = bearer(await make_key(hub, "read"))
    other = bearer(await make_key(hub, "read", tenant="t2"))
    ingest = bearer(await make_key(hub, f"ingest:{STRIPE_SOURCE}"))
    tb_url = f"{api}/v1/ledger/trial-balance"
    async with aiohttp.ClientSession() as http:
        async with http.get(tb_url, params={"as_of": "2024-03-01"}, headers=read) as response:
            assert response.status == 200
            body = await response.json()
        async with http.get(tb_url, params={"as_of": "2024-02-29"}, headers=read) as response:
            before = await response.json()
        async with http.get(tb_url, headers=read) as response:
            everything = await response.json()
        statuses = []
        for headers, params in [({}, {}), (ingest, {}), (other, {"tenant": "default"}),
                                (read, {"as_of": "yesterday"})]:  # fmt: skip
            async with http.get(tb_url, headers=headers, params=params) as response:
                statuses.append(response.status)
                assert response.content_type == "application/problem+json"
        async with http.get(tb_url, headers={**read, "Accept": "text/csv"}) as response:
            csv_text = await response.text()
        entries_url = f"{api}/v1/ledger/accounts/1200/entries"
        pages, after = [], None
        while True:
            params = {"limit": "2", **({"after": after} if after else {})}
            async with http.get(entries_url, headers=read, params=params) as response:
                assert response.status == 200
                page = await response.json()
            pages.append(page["entries"])
            after = page["next"]
            if after is None:
                break
        async with http.get(f"{api}/v1/ledger/accounts/9999/entries", headers=read) as response:
            missing = response.status
    assert statuses == [401, 403, 403, 422]
    assert missing == 404
    assert body["as_of"] == "2024-03-01"
    assert body["balanced"] is True
    assert set(body["lines"][0]) == {
        "code", "name", "role", "currency", "debit_minor", "credit_minor", "balance_minor"
    }  # fmt: skip
    clearing = {line["role"]: line["balance_minor"] for line in body["lines"]}
    assert clearing["clearing:stripe"] == sum(bt["net"] for bt in scenario.balance_transactions)
    assert before["lines"] == []
    final = {line["role"]: line["balance_minor"] for line in everything["lines"]}
    assert final["clearing:stripe"] == 0  # the payout landed (dated after March 1st)
    assert csv_text.splitlines()[0] == (
        "code,name,role,currency,debit_minor,credit_minor,balance_minor"
    )
    postings = [e for page in pages for e in page]
    assert len(pages) > 1
    assert len({(e["entry_key"], e["debit_minor"], e["credit_minor"]) for e in postings}) == len(
        postings
    )
    assert sum(e["debit_minor"] - e["credit_minor"] for e in postings) == 0
    assert all(e["positions"] for e in postings)


async def test_before_any_worker_has_built_the_ledger_the_routes_answer_404(
    hub: HubContext, api: str
) -> None:
    read = bearer(await make_key(hub, "read"))
    async with aiohttp.ClientSession() as http:
        for path in ("/v1/ledger/trial-balance", "/v1/ledger/accounts/1000/entries"):
            async with http.get(f"{api}{path}", headers=read) as response:
                assert response.status == 404
                assert "not been built" in (await response.json())["detail"]


async def test_suggestions_and_unmapped_over_http(
    dsn: str, store: EventStore, books: Books, config: Path, hub: HubContext, api: str
) -> None:
    config.write_text(RULES)  # noqa: ASYNC240
    await store.append(
        [
            bank_line("L1", "2024-01-05", -4999, "GITHUB INC 1234"),
            bank_line("L2", "2024-02-05", -4999, "GitHub, Inc. #5678"),
            new("custom:erp", "e-1", "custom.thing", {"id": 1}, "2024-02-05T00:00:00+00:00"),
        ]
    )
    async with ledger_running(dsn):
        await books.settle()
    read = bearer(await make_key(hub, "read"))
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{api}/v1/ledger/suggestions", headers=read) as response:
            suggested = (await response.json())["suggestions"]
        async with http.get(f"{api}/v1/ledger/unmapped", headers=read) as response:
            unmapped = await response.json()
    assert [(s["entry_key"], s["suggested_account"]) for s in suggested] == [
        ("bank:checking/line:L2", "6500")
    ]
    assert unmapped["count"] == 1
    assert unmapped["events"][0]["source"] == "custom:erp"


async def test_the_ledger_s_parameters_are_taken_only_as_documented(
    dsn: str, store: EventStore, books: Books, hub: HubContext, api: str
) -> None:
    """Issue 13: ``as_of=0.0`` gave the trial balance of 1970-01-01 where the document says a
    date; ``%00`` in a parameter reached the database; an empty ``after`` is the first page; the
    404 of a ledger not built yet is documented."""
    scenario = stripe_scenario()
    async with ledger_running(dsn):
        await store.append([*scenario.before_payout, *scenario.payout_paid])
        await books.settle()
    read = bearer(await make_key(hub, "read"))
    tb_url = f"{api}/v1/ledger/trial-balance"
    entries_url = f"{api}/v1/ledger/accounts/1200/entries"
    answers = {}
    async with aiohttp.ClientSession() as http:
        for query in ("as_of=0.0", "as_of=0", "as_of=2024-03-01T00:00", "as_of=20240301",
                      "tenant=default%00", "as_of=2024-03-01&as_of=2024-03-02"):  # fmt: skip
            async with http.get(URL(f"{tb_url}?{query}", encoded=True), headers=read) as response:
                answers[query] = (response.status, (await response.json())["errors"][0]["field"])
        for tail in ("1200%00/entries", "1200/entries?after=2024-03-01%7C1%7Ca%00"):
            url = URL(f"{api}/v1/ledger/accounts/{tail}", encoded=True)
            async with http.get(url, headers=read) as response:
                answers[tail] = (response.status, (await response.json())["errors"][0]["field"])
        async with http.get(entries_url, headers=read) as response:
            absent = await response.json()
        async with http.get(f"{entries_url}?after=", headers=read) as response:
            empty = (response.status, await response.json())
        async with http.get(f"{api}/openapi.json", headers=read) as response:
            documented = (await response.json())["paths"]["/v1/ledger/trial-balance"]["get"]
    assert answers == {
        "as_of=0.0": (422, "as_of"),
        "as_of=0": (422, "as_of"),
        "as_of=2024-03-01T00:00": (422, "as_of"),
        "as_of=20240301": (422, "as_of"),
        "tenant=default%00": (422, "tenant"),
        "as_of=2024-03-01&as_of=2024-03-02": (422, "as_of"),
        "1200%00/entries": (422, "code"),
        "1200/entries?after=2024-03-01%7C1%7Ca%00": (422, "after"),
    }
    assert empty == (200, absent)
    assert {"404", "422"} <= set(documented["responses"])
    assert set(documented["responses"]["200"]["content"]) == {"application/json", CSV, XLSX}
