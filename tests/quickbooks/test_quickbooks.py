"""The QuickBooks target against the local QuickBooks server: faults, token rotation, Faults,
limits, ``requestid``, ``minorversion``, ``intuit_tid``, settings; and the server itself where
the target relies on it behaving as QuickBooks documents."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import logging
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from pydantic import ValidationError

from connectors.quickbooks import QuickBooksPlugin, QuickBooksSettings
from hub.errors import ConfigError, TargetRejected, TargetUnavailable
from hub.spi.target import TargetEnvironment
from hub.store import EventStore
from hub.sync.sender import Backoff, Sender
from hub.testing.target import default_books
from hub.testing.target import document as _document
from projections.accounting import Accounting
from tests.accounting.harness import documents, running, settle
from tests.ledger.harness import Books
from tests.ledger.scenarios import stripe_scenario
from tests.quickbooks.fake_qbo import FakeQuickBooks, serve
from tests.quickbooks.harness import REALM, SECRET_ENV, TOKEN_FILE, new_fake, qbo, write_config

FAST = Backoff(attempts=6, initial=0.001, maximum=0.02)


async def test_every_document_exists_once_despite_faults(
    dsn: str, store: EventStore, config: Path, books: Books, tmp_path: Path
) -> None:
    write_config(config, "per_transaction")
    scenario = stripe_scenario()
    async with running(dsn):
        await store.append(scenario.before_payout + scenario.payout_paid)
        await settle(books.conn, ("ledger", "accounting"))
    docs = await documents(books.conn, target="quickbooks")
    assert docs
    fake = new_fake()
    fake.stall = 0.5
    async with qbo(tmp_path, fake=fake, call_timeout=0.2) as (_, target):
        fake.faults.extend(["500", "drop", "429", "timeout", "503", "drop", "timeout_before"])
        sender = Sender(store, Accounting, FAST)
        for _ in range(5):  # a run may leave failures for the next one
            await sender.run("default", target)
            if not fake.faults:
                break
        await sender.run("default", target)
        held = {h.idempotency_key: h.content_hash for h in await target.held()}
    tags = fake.live_keys()
    assert sorted(tags) == sorted(r["idempotency_key"] for r in docs.values())  # each once
    assert held == {r["idempotency_key"]: r["content_hash"] for r in docs.values()}
    rows = await books.conn.fetch(
        "SELECT data::text AS d FROM ledgerhub.events WHERE type = 'accounting.document.synced'"
    )
    assert sorted(orjson.loads(r["d"])["doc_key"] for r in rows) == sorted(docs)
    runs = await books.conn.fetch("SELECT retries FROM ledgerhub.sync_runs")
    assert sum(r["retries"] for r in runs) >= 5  # each 500, 503, 429 and timeout retried
    assert fake.injected == {"500": 1, "503": 1, "429": 1, "timeout": 1, "drop": 2,
                             "timeout_before": 1}  # fmt: skip


async def test_refresh_tokens_rotate_and_a_refused_token_is_refreshed(tmp_path: Path) -> None:
    async with qbo(tmp_path) as (fake, target):
        await target.create(_document("a", 100))
        assert fake.refreshes == 1
        assert (tmp_path / TOKEN_FILE).read_text() == fake.refresh_token != "r0"
        assert (tmp_path / TOKEN_FILE).stat().st_mode & 0o777 == 0o600
        assert "r0" not in repr(target.tokens)
        assert fake.refresh_token not in repr(target.tokens)
        fake.access_tokens.clear()  # Intuit revoked the access token
        await target.create(_document("b", 200))
        assert fake.refreshes == 2
        assert (tmp_path / TOKEN_FILE).read_text() == fake.refresh_token
        assert len(await target.held()) == 2


async def test_a_refresh_whose_answer_was_lost_is_retried_with_the_old_token(
    tmp_path: Path,
) -> None:
    async with qbo(tmp_path) as (fake, target), aiohttp.ClientSession() as http:
        # a process refreshed, Intuit rotated the token, and the process died before saving it
        form = {"grant_type": "refresh_token", "refresh_token": "r0"}
        auth = {"Authorization": "Basic " + base64.b64encode(b"client:secret").decode()}
        url = f"{fake.url}/oauth2/v1/tokens/bearer"
        async with http.post(url, data=form, headers=auth) as lost:
            assert lost.status == 200
        assert fake.refresh_token != "r0"
        await target.create(_document("a", 100))  # the file still says r0: within the grace
        assert (tmp_path / TOKEN_FILE).read_text() == fake.refresh_token
        fake.rotated = dict.fromkeys(fake.rotated, 0.0)  # long after
        (tmp_path / TOKEN_FILE).write_text("r0")
        fake.access_tokens.clear()
        with pytest.raises(
            ConfigError, match=r"Intuit refused the refresh token \(HTTP 400: invalid_grant\)"
        ):
            await target.create(_document("b", 200))


async def test_a_validation_fault_parks_with_quickbooks_message(tmp_path: Path) -> None:
    async with qbo(tmp_path) as (fake, target):
        fake.store["Account"][fake.account_id("1200")]["AccountType"] = "Expense"
        with pytest.raises(TargetRejected) as refused:
            await target.create(_document("c", 100))  # a Deposit to 1200
        text = str(refused.value)
        assert "Business Validation Error: DepositToAccountRef must be one of Bank" in text
        assert "intuit_tid" in text
        assert fake.writes == 0
        assert fake.live_tags() == []


async def test_a_refused_document_whose_content_changed_is_not_refused_by_replay(
    tmp_path: Path,
) -> None:
    async with qbo(tmp_path) as (fake, target):
        account = fake.store["Account"][fake.account_id("1200")]
        account["AccountType"] = "Expense"
        first = _document("fix", 100)
        with pytest.raises(TargetRejected, match="DepositToAccountRef"):
            await target.create(first)
        assert fake.replies[first.idempotency_key][0] == 400  # the refusal, kept for replays
        account["AccountType"] = "Bank"  # the bookkeeper fixed the account
        changed = dataclasses.replace(first, description="fixed")
        made = await target.create(changed)  # the same key: replayed refusal, then its content
        again = await target.create(changed)  # a retry of that: the same entity
        assert again.target_id == made.target_id
        assert fake.live_keys() == [changed.idempotency_key]
        assert len(fake.live("Deposit")) == 1


async def test_an_account_quickbooks_lacks_refuses_before_writing(tmp_path: Path) -> None:
    fake = new_fake()
    del fake.store["Account"][fake.account_id("4000")]
    async with qbo(tmp_path, fake=fake) as (_, target):
        with pytest.raises(TargetRejected, match="no account numbered 4000 or named 'Sales'"):
            await target.create(_document("d", 100))
        assert fake.writes == 0


async def test_no_more_than_ten_calls_in_flight(tmp_path: Path) -> None:
    async with qbo(tmp_path) as (fake, target):
        await target.create(_document("warm", 1))  # accounts, customer: looked up once
        fake.latency = 0.02
        await asyncio.gather(*(target.create(_document(f"k{i}", 100 + i)) for i in range(30)))
        assert len(fake.live_keys()) == 31
        assert 1 < fake.max_in_flight <= 10
        assert fake.throttled == 0


async def test_the_server_throttles_beyond_its_limits(tmp_path: Path) -> None:
    async with qbo(tmp_path) as (fake, target):
        fake.per_minute = 3

        async def burst() -> None:
            for i in range(5):
                await target.create(_document(f"t{i}", 100 + i))

        with pytest.raises(TargetUnavailable, match=r"HTTP 429.*throttled"):
            await burst()
        assert fake.throttled == 1


async def test_a_timeout_after_the_write_is_answered_by_the_requestid(tmp_path: Path) -> None:
    fake = new_fake()
    fake.stall = 0.5
    async with qbo(tmp_path, fake=fake, call_timeout=0.2) as (_, target):
        await target.create(_document("warm", 1))
        writes = fake.writes
        fake.faults.append("timeout")
        with pytest.raises(TargetUnavailable, match="timed out"):
            await target.create(_document("t", 100))
        assert fake.writes == writes + 1  # applied although the caller gave up
        again = await target.create(_document("t", 100))
        assert fake.writes == writes + 1
        assert again.target_id.split("/")[-1] in fake.store["Deposit"]
        assert fake.injected["timeout"] == 1


async def test_minorversion_on_every_call_and_intuit_tid_in_the_receipt(tmp_path: Path) -> None:
    fake = new_fake()
    async with qbo(tmp_path, fake=fake) as (_, target):
        target.minor_version = 80
        receipt = await target.create(_document("m", 100))
        await target.held()
        void = await target.void(receipt.target_id)
    assert fake.minor_versions
    assert set(fake.minor_versions) == {"80"}
    assert receipt.request_id in fake.tids
    assert void.request_id in fake.tids
    assert all(method == "GET" or "requestid=" in path for method, path in fake.requests)


async def test_random_faults_are_drawn_from_the_seed(tmp_path: Path) -> None:
    async with qbo(tmp_path) as (fake, target):
        fake.fault_rate = 0.5
        fake.fault_kinds = ("500", "429")
        outcomes = []
        for i in range(20):
            try:
                await target.create(_document(f"r{i}", 100 + i))
                outcomes.append("ok")
            except TargetUnavailable:
                outcomes.append("fault")
        assert 3 < outcomes.count("fault") < 17
        assert set(fake.injected) <= {"500", "429"}


async def test_no_secret_reaches_a_log(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with qbo(tmp_path) as (fake, target):
        await target.create(_document("s", 100))
        fake.access_tokens.clear()
        await target.create(_document("s2", 100))
        secrets = ["secret", "r0", fake.refresh_token, *fake.access_tokens]
    assert not [s for s in secrets if s in caplog.text]


# --------------------------------------------------------------------- the server itself


async def _post(
    http: aiohttp.ClientSession, fake: FakeQuickBooks, token: str, entity: str, body: Any, **q: str
) -> tuple[int, Any, str]:
    url = f"{fake.url}/v3/company/{REALM}/{entity}"
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    async with http.post(url, json=body, params={"minorversion": "75", **q}, headers=headers) as r:
        return r.status, orjson.loads(await r.read()), r.headers.get("intuit_tid", "")


async def test_the_server_answers_as_quickbooks_documents(tmp_path: Path) -> None:
    async with qbo(tmp_path) as (fake, target), aiohttp.ClientSession() as http:
        token = await target.tokens.access()
        cash, wages = fake.account_id("1000"), fake.account_id("6100")
        entry = {"TxnDate": "2024-03-01", "Line": [
            {"Amount": 5, "DetailType": "JournalEntryLineDetail", "JournalEntryLineDetail":
             {"PostingType": "Debit", "AccountRef": {"value": wages}}},
            {"Amount": 5, "DetailType": "JournalEntryLineDetail", "JournalEntryLineDetail":
             {"PostingType": "Credit", "AccountRef": {"value": cash}}}]}  # fmt: skip
        # a repeated requestid is answered with the first response, whatever the request
        status, first, tid = await _post(http, fake, token, "journalentry", entry, requestid="x1")
        assert (status, first["JournalEntry"]["SyncToken"]) == (200, "0")
        assert tid in fake.tids
        other = {**entry, "PrivateNote": "different"}
        _, again, _ = await _post(http, fake, token, "journalentry", other, requestid="x1")
        assert again == first
        assert len(fake.store["JournalEntry"]) == 1
        made = first["JournalEntry"]
        # an update with an old SyncToken is a stale object error (5010)
        update = {**entry, "Id": made["Id"], "SyncToken": "0", "PrivateNote": "v2"}
        assert (await _post(http, fake, token, "journalentry", update))[0] == 200
        status, stale, _ = await _post(http, fake, token, "journalentry", update)
        assert status == 400
        assert stale["Fault"]["type"] == "ValidationFault"
        (error,) = stale["Fault"]["Error"]
        assert (error["code"], error["Message"]) == ("5010", "Stale Object Error")
        # an unbalanced journal, an unknown property: validation faults
        lopsided = {**entry, "Line": [entry["Line"][0]]}
        status, fault, _ = await _post(http, fake, token, "journalentry", lopsided)
        assert status == 400
        assert "out of balance" in fault["Fault"]["Error"][0]["Detail"]
        status, fault, _ = await _post(http, fake, token, "journalentry", {**entry, "Bogus": 1})
        assert (status, fault["Fault"]["Error"][0]["code"]) == (400, "2010")
        # deleted: gone from reads (610 Object Not Found)
        delete = {"Id": made["Id"], "SyncToken": "1"}
        status, gone, _ = await _post(http, fake, token, "journalentry", delete, operation="delete")
        assert (status, gone["JournalEntry"]["status"]) == (200, "Deleted")
        url = f"{fake.url}/v3/company/{REALM}/journalentry/{made['Id']}?minorversion=75"
        async with http.get(url, headers={"Authorization": f"Bearer {token}"}) as read:
            assert read.status == 400
            assert (await read.json())["Fault"]["Error"][0]["code"] == "610"
        # a wrong token is an AuthenticationFailed 401
        status, fault, _ = await _post(http, fake, "nope", "journalentry", entry)
        assert (status, fault["Fault"]["Error"][0]["code"]) == (401, "3200")


# --------------------------------------------------------------------- settings and plugin

SETTINGS = {
    "realm_id": REALM,
    "client_id": "client",
    "client_secret": f"env:{SECRET_ENV}",
    "refresh_token_file": TOKEN_FILE,
}


def test_the_settings_are_the_designs() -> None:
    plugin = QuickBooksPlugin()
    settings = plugin.validate(dict(SETTINGS))
    assert isinstance(settings, QuickBooksSettings)
    assert settings.api_url == "https://quickbooks.api.intuit.com/v3"
    assert settings.token_url == "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer"
    assert settings.minor_version == 75
    assert QuickBooksSettings.model_validate({**SETTINGS, "minor_version": 80}).minor_version == 80
    for wrong in (
        {"client_secret": "the-secret-itself"},
        {"api_url": "http://quickbooks.example.com/v3"},
        {"minor_version": "75"},
        {"minor_version": 0},
        {"realm_id": ""},
        {"tenant_id": "x"},
    ):
        with pytest.raises(ValidationError):
            plugin.validate({**SETTINGS, **wrong})


async def test_the_plugin_names_what_it_cannot_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugin = QuickBooksPlugin()
    settings = QuickBooksSettings.model_validate(SETTINGS)
    async with aiohttp.ClientSession() as session:
        env = TargetEnvironment(default_books(), tmp_path, tmp_path, session)
        monkeypatch.delenv(SECRET_ENV, raising=False)
        with pytest.raises(ConfigError, match=r"tenants\.default\.sync\.client_secret"):
            plugin.open(settings, env)
        monkeypatch.setenv(SECRET_ENV, "secret")
        with pytest.raises(ConfigError, match=r"tenants\.default\.sync\.refresh_token_file"):
            plugin.open(settings, env)
        (tmp_path / TOKEN_FILE).write_text("r0")
        fake = new_fake()
        async with serve(fake):
            raw = {**SETTINGS, "api_url": f"{fake.url}/v3",
                   "token_url": f"{fake.url}/oauth2/v1/tokens/bearer"}  # fmt: skip
            target = plugin.open(QuickBooksSettings.model_validate(raw), env)
            assert (await target.create(_document("p", 100))).target_id.startswith("Deposit/")
