"""A tenant's ``sync`` table: refused at start when wrong, and a Xero target run from it by
``ledgerhub sync run`` as a user would (secrets from the environment, the rotated refresh token
written back, never printed)."""

from __future__ import annotations

import asyncio
import contextlib
import stat
import uuid
from pathlib import Path

import orjson
import pytest

from connectors.beancount import BeancountTarget
from hub.config import Settings, load, load_config
from hub.errors import ConfigError
from hub.store import EventStore
from hub.sync.loop import sync_forever
from projections.accounting import Accounting
from tests.accounting.fake_xero import FakeXero, serve
from tests.accounting.harness import XERO_SECRET_ENV, cli, documents, running, settle, write_config
from tests.accounting.targets import CHART
from tests.ledger.harness import Books
from tests.ledger.scenarios import stripe_scenario


@pytest.mark.parametrize(
    ("sync", "message"),
    [
        ('target = "xero"\ntenant_id = "org-1"\n',
         "tenants.default.sync: the xero target needs client_id, client_secret, "
         "refresh_token_file"),
        ('target = "xero"\ntenant_id = "o"\nclient_id = "c"\nclient_secret = "s3cr3t"\n'
         'refresh_token_file = "r"\n',
         "tenants.default.sync.client_secret: write env:NAME or file:PATH"),
        ('target = "beancount"\ntenant_id = "org-1"\n',
         "tenants.default.sync: unknown key 'tenant_id' for target 'beancount'"),
        ('target = "xero"\ntenant_id = "o"\nclient_id = "c"\nclient_secret = "env:X"\n'
         'refresh_token_file = "r"\ntimeout = -1\n',
         "tenants.default.sync.timeout: expected a positive number of seconds"),
        ('target = "sage"\n', "tenants.default.sync.target: 'sage' is not one of"),
        ('target = "quickbooks"\n',
         "tenants.default.sync: the quickbooks target needs realm_id, client_id, client_secret, "
         "refresh_token_file"),
        ('target = "xero"\ntenant_id = "o"\nclient_id = "c"\nclient_secret = "env:X"\n'
         'refresh_token_file = "r"\napi_url = "http://127.0.0.1.example.com/api"\n',
         "tenants.default.sync.api_url: expected an https:// URL (http:// only to this machine)"),
    ],
)  # fmt: skip
def test_a_wrong_sync_table_is_refused_at_start_with_its_line(
    tmp_path: Path, sync: str, message: str
) -> None:
    path = tmp_path / "ledgerhub.toml"
    path.write_text(f'[tenants.default]\ntimezone = "UTC"\n\n[tenants.default.sync]\n{sync}')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith(f"{path}:4: {message}"), caught.value


async def test_sync_run_sends_to_xero_from_the_config_file(
    dsn: str, store: EventStore, config: Path, books: Books, tmp_path: Path
) -> None:
    fake = FakeXero(set(CHART), "first-refresh-token", "org-1")
    async with serve(fake):
        write_config(config, "per_transaction", target="xero", xero_url=fake.url)
        scenario = stripe_scenario()
        async with running(dsn):
            await store.append(scenario.before_payout + scenario.payout_paid)
            await settle(books.conn, ("ledger", "accounting"))
        docs = await documents(books.conn, target="xero")
        refresh = config.parent / "xero-refresh-token"
        home = tmp_path / "home"

        code, out, err = await cli(dsn, config, home, "sync", "run")
        assert code == 1
        assert err.strip().endswith(f"environment variable {XERO_SECRET_ENV} (a secret) is not set")
        assert fake.refreshes == 0

        refresh.write_text("first-refresh-token")
        secret = {XERO_SECRET_ENV: "client-secret-value"}
        code, out, err = await cli(dsn, config, home, "sync", "run", env=secret)
        assert code == 0, err
        assert f"default → xero: run 1: {len(docs)} sent, 0 failed" in out
        assert fake.refreshes == 1
        assert refresh.read_text() == fake.refresh_token  # the rotated token, saved
        assert stat.S_IMODE(refresh.stat().st_mode) == 0o600
        calls = await books.conn.fetch("SELECT request_id, status FROM ledgerhub.sync_calls")
        assert len(calls) == len(docs)  # each call in the run's log, under Xero's own id
        assert {c["status"] for c in calls} == {"ok"}
        assert {c["request_id"] for c in calls} <= set(fake.correlation_ids)
        for secret_text in ("client-secret-value", fake.refresh_token, *fake.access_tokens):
            assert secret_text not in out + err

        code, out, err = await cli(dsn, config, home, "sync", "run", env=secret)
        assert code == 0, err
        assert "run 2: 0 sent" in out  # nothing new
        held = await cli(dsn, config, home, "sync", "shadow", "--json", env=secret)
    assert held[0] == 0, held[2]
    assert orjson.loads(held[1]) == {"differences": []}


async def test_serve_and_worker_refuse_to_start_without_the_xero_secret(
    dsn: str, config: Path, tmp_path: Path
) -> None:
    write_config(config, "per_transaction", target="xero")
    (config.parent / "xero-refresh-token").write_text("token")
    for command in (("serve", "--port", "0"), ("worker",)):
        code, _, err = await cli(dsn, config, tmp_path, *command)
        assert code == 1, command
        assert (
            err.strip()
            .splitlines()[-1]
            .endswith(f"environment variable {XERO_SECRET_ENV} (a secret) is not set")
        ), err


async def test_one_tenants_refused_token_stops_neither_the_others_nor_itself_for_good(
    dsn: str,
    store: EventStore,
    config: Path,
    books: Books,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeXero(set(CHART), "the-right-token", "org-1")
    async with serve(fake):
        write_config(config, "per_transaction", target="xero", xero_url=fake.url,
                     extra='[tenants.other]\nsync = { target = "beancount" }\n')  # fmt: skip
        refresh = config.parent / "xero-refresh-token"
        refresh.write_text("a-revoked-token")
        monkeypatch.setenv(XERO_SECRET_ENV, "client-secret-value")
        monkeypatch.setenv("LEDGERHUB_HOME", str(tmp_path))
        scenario = stripe_scenario()
        events = scenario.before_payout + scenario.payout_paid
        async with running(dsn):
            await store.append(events)
            await store.append(
                [e.model_copy(update={"tenant": "other", "id": uuid.uuid4()}) for e in events]
            )
            await settle(books.conn, ("ledger", "accounting"))
        xero_docs = await documents(books.conn, target="xero")
        other_docs = await documents(books.conn, tenant="other")
        other = BeancountTarget(tmp_path / "sync" / "other.beancount", CHART)
        loop = asyncio.create_task(
            sync_forever(
                store, load(Settings.from_env()), Settings.from_env().home, 0.05, Accounting
            )
        )
        try:
            async with asyncio.timeout(30):
                while len(await other.held()) < len(other_docs):
                    assert not loop.done()
                    await asyncio.sleep(0.05)
                while (  # noqa: ASYNC110 - polling the database
                    await books.conn.fetchval(
                        "SELECT count(*) FROM ledgerhub.sync_runs "
                        "WHERE tenant = 'default' AND ended_at IS NOT NULL"  # ended: not racing
                    )
                    < 3
                ):
                    await asyncio.sleep(0.05)
            assert fake.live_keys() == []
            errors = [r for r in caplog.records if r.levelname == "ERROR"]
            assert len(errors) == 1  # once, not every round
            assert "Xero refused the refresh token" in errors[0].getMessage()

            refresh.write_text("the-right-token")  # the operator re-authorised
            async with asyncio.timeout(30):
                while len(fake.live_keys()) < len(xero_docs):
                    assert not loop.done()
                    await asyncio.sleep(0.05)
        finally:
            loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loop
    assert sorted(fake.live_keys()) == sorted(d["idempotency_key"] for d in xero_docs.values())
    failed = await books.conn.fetch(
        "SELECT error FROM ledgerhub.sync_runs WHERE tenant = 'default' AND error IS NOT NULL"
    )
    refused = [r for r in failed if "refused the refresh token" in r["error"]]
    assert len(refused) >= 3  # the runs before the fix say why they stopped
    assert [r["error"] for r in failed if r not in refused] in ([], ["CancelledError"]), failed
