"""Each connector's declared check against its local fake (behaving like the real API): the
credentials accepted → ok; refused → failing with the API's words, never the credential; the
Beancount target's file writable."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from connectors.beancount import BeancountTarget
from hub.config import Config, load_config
from hub.domain.health import CheckResult
from hub.errors import TargetUnavailable
from hub.runtime.health import all_checks, run_check
from hub.store.health import HealthStore
from tests.accounting.targets import CHART
from tests.pulls.fake_plaid import FakePlaid
from tests.pulls.fake_plaid import serve as serve_plaid
from tests.pulls.fake_shopify import TOKEN, FakeShopify, Store
from tests.pulls.fake_shopify import serve as serve_shopify


def _config(path: Path, text: str) -> Config:
    path.write_text(text)
    return load_config(path)


async def _check_all(pool: asyncpg.Pool, path: Path, text: str) -> list[CheckResult]:
    config = _config(path, text)
    async with all_checks(config, path.parent, HealthStore(pool)) as checks:
        return [await run_check(check, 10) for check in checks]


async def test_shopify_and_plaid_checks_tell_accepted_from_refused_credentials(
    pool: asyncpg.Pool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plaid = FakePlaid()
    monkeypatch.setenv("SHOPIFY_TOKEN", TOKEN)
    monkeypatch.setenv("PLAID_CLIENT_ID", plaid.client_id)
    monkeypatch.setenv("PLAID_SECRET", plaid.secret)
    monkeypatch.setenv("PLAID_ACCESS_TOKEN", plaid.access_token)
    async with serve_shopify(FakeShopify(Store())) as shopify, serve_plaid(plaid) as fake:
        text = (
            '[[connections]]\nid = "shopify:acme"\nconnector = "shopify"\n'
            f'api_key = "env:SHOPIFY_TOKEN"\napi_url = "{shopify.url}"\n'
            '[[connections]]\nid = "plaid:main-bank"\nconnector = "plaid"\n'
            'client_id = "env:PLAID_CLIENT_ID"\nsecret = "env:PLAID_SECRET"\n'
            f'access_token = "env:PLAID_ACCESS_TOKEN"\napi_url = "{fake.url}"\n'
        )
        ok = await _check_all(pool, tmp_path / "ledgerhub.toml", text)
        assert [(r.connection, r.ok, r.detail) for r in ok] == [
            ("shopify:acme", True, "Shopify accepted the access token"),
            ("plaid:main-bank", True, "Plaid accepted the access token"),
        ]
        monkeypatch.setenv("SHOPIFY_TOKEN", "shpat_revoked_0000000000000000")
        monkeypatch.setenv("PLAID_ACCESS_TOKEN", "access-sandbox-revoked-item")
        refused = await _check_all(pool, tmp_path / "ledgerhub.toml", text)
    assert [(r.connection, r.ok) for r in refused] == [
        ("shopify:acme", False),
        ("plaid:main-bank", False),
    ]
    assert "HTTP 401" in refused[0].detail
    assert "INVALID_ACCESS_TOKEN" in refused[1].detail
    assert not any("revoked" in r.detail for r in refused)  # never the credential


async def test_the_beancount_check_says_whether_the_file_can_be_written(tmp_path: Path) -> None:
    ledger = tmp_path / "books" / "main.beancount"
    assert await BeancountTarget(ledger, CHART).health_check() == f"{ledger} is writable"
    assert not ledger.parent.exists()  # a check creates nothing
    (tmp_path / "taken").write_text("a file where the ledger's folder should be")
    blocked = BeancountTarget(tmp_path / "taken" / "main.beancount", CHART)
    with pytest.raises(TargetUnavailable, match="cannot write in"):
        await blocked.health_check()
