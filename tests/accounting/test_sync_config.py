"""A tenant's ``sync`` table: refused at start when wrong, and a Xero target run from it by
``ledgerhub sync run`` as a user would (secrets from the environment, the rotated refresh token
written back, never printed)."""

from __future__ import annotations

import stat
from pathlib import Path

import orjson
import pytest

from hub.config_file import load_config
from hub.errors import ConfigError
from hub.store import EventStore
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
        ('target = "quickbooks"\n', "tenants.default.sync.target: 'quickbooks' is not one of"),
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
