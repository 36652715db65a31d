"""The Xero target against the local Xero-compatible server: faults, rotation, refusals, limits."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import orjson
import pytest

from connectors.xero.target import AiohttpTransport, Tokens, XeroTarget
from hub.errors import ConfigError, TargetRejected, TargetUnavailable
from hub.store import EventStore
from hub.sync.sender import Backoff, Sender
from hub.testing.target import document as _document
from projections.accounting import Accounting
from tests.accounting.fake_xero import SCHEMAS, SPEC, FakeXero, extract_schemas, serve
from tests.accounting.harness import documents, running, settle, write_config
from tests.accounting.targets import CHART
from tests.ledger.harness import Books
from tests.ledger.scenarios import stripe_scenario

FAST = Backoff(attempts=6, initial=0.001, maximum=0.02)


@contextlib.asynccontextmanager
async def _xero(tmp: Path, accounts: set[str]) -> AsyncIterator[tuple[FakeXero, XeroTarget]]:
    refresh = tmp / "xero-refresh-token"
    refresh.write_text("r0")
    fake = FakeXero(accounts, "r0", "org-1")
    async with serve(fake), aiohttp.ClientSession() as session:
        transport = AiohttpTransport(session, timeout=5)
        tokens = Tokens(transport, "client", "secret", refresh, f"{fake.url}/connect/token")
        yield fake, XeroTarget(transport, tokens, "org-1", api=f"{fake.url}/api.xro/2.0")


async def test_every_document_exists_once_despite_faults(
    dsn: str, store: EventStore, config: Path, books: Books, tmp_path: Path
) -> None:
    write_config(config, "per_transaction", target="xero")
    scenario = stripe_scenario()
    async with running(dsn):
        await store.append(scenario.before_payout + scenario.payout_paid)
        await settle(books.conn, ("ledger", "accounting"))
    docs = await documents(books.conn, target="xero")
    assert docs
    async with _xero(tmp_path, set(CHART)) as (fake, target):
        fake.faults.extend(["500", "drop", "429", "drop", "500", "429", "drop"])
        sender = Sender(store, Accounting, FAST)
        for _ in range(5):  # a run may leave failures for the next one
            await sender.run("default", target)
            if not fake.faults:
                break
        await sender.run("default", target)
        journals = [j for j in fake.journals.values() if j["Status"] == "POSTED"]
    tags = [j["Narration"].rsplit("[", 1)[1] for j in journals]
    assert len(tags) == len(set(tags)) == len(docs)  # each document once, no second copy
    rows = await books.conn.fetch(
        "SELECT data::text AS d FROM ledgerhub.events WHERE type = 'accounting.document.synced'"
    )
    synced = [orjson.loads(r["d"])["doc_key"] for r in rows]
    assert sorted(synced) == sorted(docs)  # one outcome per document
    runs = await books.conn.fetch("SELECT retries FROM ledgerhub.sync_runs")
    # each 500 and 429 was retried (a dropped PUT may be resent by aiohttp itself, keyed the same)
    assert sum(r["retries"] for r in runs) >= 4


async def test_refresh_tokens_rotate_and_a_refused_token_is_refreshed(tmp_path: Path) -> None:
    async with _xero(tmp_path, set(CHART)) as (fake, target):
        await target.create(_document("a", 100))
        assert fake.refreshes == 1
        assert (tmp_path / "xero-refresh-token").read_text() == fake.refresh_token
        assert "r0" not in repr(target.tokens)
        fake.access_tokens.clear()  # Xero revoked the access token
        await target.create(_document("b", 200))
        assert fake.refreshes == 2
        assert (tmp_path / "xero-refresh-token").read_text() == fake.refresh_token
        assert len(await target.held()) == 2


async def test_a_refresh_whose_answer_was_lost_is_retried_with_the_old_token(
    tmp_path: Path,
) -> None:
    async with _xero(tmp_path, set(CHART)) as (fake, target), aiohttp.ClientSession() as http:
        # a process refreshed, Xero rotated the token, and the process died before saving it
        form = {"grant_type": "refresh_token", "refresh_token": "r0"}
        async with http.post(f"{fake.url}/connect/token", data=form) as lost:
            assert lost.status == 200
        assert fake.refresh_token != "r0"
        await target.create(_document("a", 100))  # the file still says r0: within the grace
        assert (tmp_path / "xero-refresh-token").read_text() == fake.refresh_token
        fake.rotated = dict.fromkeys(fake.rotated, 0.0)  # 30 minutes later
        (tmp_path / "xero-refresh-token").write_text("r0")
        fake.access_tokens.clear()
        with pytest.raises(ConfigError, match=r"Xero refused the refresh token \(HTTP 400\)"):
            await target.create(_document("b", 200))


async def test_a_validation_error_carries_xeros_message(tmp_path: Path) -> None:
    async with _xero(tmp_path, set(CHART) - {"4000"}) as (fake, target):
        with pytest.raises(TargetRejected, match="Account code '4000' is not a valid code"):
            await target.create(_document("c", 100))
        assert fake.writes == 0


async def test_no_more_than_five_calls_in_flight(tmp_path: Path) -> None:
    async with _xero(tmp_path, set(CHART)) as (fake, target):
        fake.latency = 0.02
        await asyncio.gather(*(target.create(_document(f"k{i}", 100 + i)) for i in range(12)))
        assert fake.writes == 12
        assert 1 < fake.max_in_flight <= 5


async def test_a_timeout_after_the_write_is_answered_by_the_idempotency_key(
    tmp_path: Path,
) -> None:
    refresh = tmp_path / "xero-refresh-token"
    refresh.write_text("r0")
    fake = FakeXero(set(CHART), "r0", "org-1")
    fake.stall = 0.5
    async with serve(fake), aiohttp.ClientSession() as session:
        transport = AiohttpTransport(session, timeout=0.2)
        tokens = Tokens(transport, "client", "secret", refresh, f"{fake.url}/connect/token")
        target = XeroTarget(transport, tokens, "org-1", api=f"{fake.url}/api.xro/2.0")
        fake.faults.append("timeout")
        with pytest.raises(TargetUnavailable, match="timed out"):
            await target.create(_document("t", 100))
        assert fake.writes == 1  # applied although the caller gave up
        again = await target.create(_document("t", 100))
        assert fake.writes == 1
        assert again.target_id.split("/")[-1] in fake.journals
        assert fake.injected["timeout"] == 1


async def test_random_faults_are_drawn_from_the_seed(tmp_path: Path) -> None:
    async with _xero(tmp_path, set(CHART)) as (fake, target):
        fake.fault_rate = 0.5
        fake.fault_kinds = ("500", "429")
        outcomes = []
        for i in range(20):
            try:
                await target.create(_document(f"r{i}", 100 + i))
                outcomes.append("ok")
            except TargetUnavailable:
                outcomes.append("fault")
        assert sum(fake.injected.values()) == outcomes.count("fault")
        assert 3 < outcomes.count("fault") < 17
        assert set(fake.injected) <= {"500", "429"}


def test_the_copied_schemas_are_the_specs() -> None:
    if not SPEC.is_file():
        pytest.skip(f"Xero's spec is not beside this checkout ({SPEC})")
    copied = orjson.loads(SCHEMAS.read_bytes())
    assert copied == extract_schemas(SPEC.read_text(encoding="utf-8"))
    assert {"Invoices", "Payments", "BankTransfers", "Contacts"} <= set(
        copied["components"]["schemas"]
    )
