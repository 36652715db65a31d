"""``GET /v1/health/connections`` (operate keys: 401, 403, one tenant's rows or all) and
``ledgerhub health [--json]`` (checks now; exit 1 when any connection is failing) and
``ledgerhub status`` (connection health beside the projections)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson

from hub.api.server import open_hub, serving
from hub.config import load_config
from hub.domain.health import CheckResult
from hub.domain.keys import ALL_TENANTS, Scope, key_digest, key_prefix, new_key
from hub.store.health import HealthStore
from hub.store.keys import KeyStore
from tests.accounting.harness import cli
from tests.health.conftest import AlertReceiver
from tests.pulls.conftest import STRIPE_KEY
from tests.pulls.fake_stripe import FakeStripe, History, serve

REMIND = timedelta(hours=4)


async def _key(keys: KeyStore, tenant: str, scope: str) -> str:
    key = new_key()
    await keys.create(
        digest=key_digest(key), prefix=key_prefix(key), tenant=tenant, scope=Scope.parse(scope)
    )
    return key


async def _get(http: aiohttp.ClientSession, url: str, key: str | None) -> tuple[int, str, Any]:
    headers = {} if key is None else {"Authorization": f"Bearer {key}"}
    async with http.get(f"{url}/v1/health/connections", headers=headers) as response:
        return response.status, response.content_type, await response.json(content_type=None)


async def test_the_route_lists_a_tenant_s_connections_to_operate_keys_only(
    dsn: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    store = HealthStore(pool)
    await store.record(CheckResult("stripe:a", "default", False, "HTTP 401"), REMIND)
    await store.record(CheckResult("sync:beancount", "default", True, "writable"), REMIND)
    await store.record(CheckResult("shopify:b", "t2", True, "fine"), REMIND)
    (tmp_path / "ledgerhub.toml").write_text("[tenants.default]\n[tenants.t2]\n")
    config = load_config(tmp_path / "ledgerhub.toml")
    async with (
        open_hub(dsn, config) as hub,
        serving(hub, "127.0.0.1", 0) as url,
        aiohttp.ClientSession() as http,
    ):
        status, kind, body = await _get(http, url, None)
        assert (status, kind) == (401, "application/problem+json")
        read = await _key(hub.keys, "default", "read")
        status, kind, body = await _get(http, url, read)
        assert (status, kind) == (403, "application/problem+json")
        operate = await _key(hub.keys, "default", "operate")
        status, _, body = await _get(http, url, operate)
        assert status == 200
        assert [(c["id"], c["state"]) for c in body["connections"]] == [
            ("stripe:a", "failing"),
            ("sync:beancount", "ok"),
        ]
        assert set(body["connections"][0]) == {
            "id", "tenant", "state", "checked_at", "detail", "since",
        }  # fmt: skip
        assert body["connections"][0]["detail"] == "HTTP 401"
        everyone = await _key(hub.keys, ALL_TENANTS, "operate")
        _, _, body = await _get(http, url, everyone)
        assert [c["id"] for c in body["connections"]] == ["shopify:b", "stripe:a", "sync:beancount"]


async def test_ledgerhub_health_checks_now_and_exits_1_while_failing(
    dsn: str, tmp_path: Path, receiver: AlertReceiver
) -> None:
    config = tmp_path / "ledgerhub.toml"
    async with serve(FakeStripe(History(), api_key=STRIPE_KEY)) as fake:
        config.write_text(
            '[alerts]\nwebhook_url = "env:LEDGERHUB_ALERT_WEBHOOK"\n'
            '[[connections]]\nid = "stripe:acct_cli"\nconnector = "stripe"\n'
            f'api_key = "env:STRIPE_API_KEY"\napi_url = "{fake.url}"\n'
        )
        env = {"STRIPE_API_KEY": STRIPE_KEY, "LEDGERHUB_ALERT_WEBHOOK": receiver.url}
        home = tmp_path / "home"
        code, out, err = await cli(dsn, config, home, "health", "--json", env=env)
        assert (code, err) == (0, "")
        [row] = orjson.loads(out)["connections"]
        assert (row["id"], row["tenant"], row["state"]) == ("stripe:acct_cli", "default", "ok")
        assert row["detail"] == "Stripe accepted the API key"

        fake.api_key = "rk_test_51AnotherKeyEntirely000000000000"
        code, out, err = await cli(dsn, config, home, "health", "--json", env=env)
        assert code == 1
        assert err == "health: 1 connection(s) failing: stripe:acct_cli\n"
        [row] = orjson.loads(out)["connections"]
        assert row["state"] == "failing"
        assert "HTTP 401" in row["detail"]
        code, out, err = await cli(dsn, config, home, "health", env=env)
        assert code == 1
        assert "stripe:acct_cli\tdefault\tfailing\t" in out  # a table, tab-separated off a tty

        code, out, err = await cli(dsn, config, home, "status", "--json", env=env)
        assert code == 0, err
        [listed] = orjson.loads(out)["connections"]
        assert (listed["id"], listed["state"]) == ("stripe:acct_cli", "failing")
    # the CLI records like the workers: one failing alert for two failing runs
    assert [r.alert["state"] for r in receiver.received] == ["failing"]


async def test_a_bad_health_variable_is_one_line_and_exit_1(dsn: str, tmp_path: Path) -> None:
    config = tmp_path / "ledgerhub.toml"
    config.write_text("")
    code, out, err = await cli(
        dsn, config, tmp_path, "health", env={"LEDGERHUB_HEALTH_TIMEOUT": "soon"}
    )
    assert code != 0
    assert out == ""
    assert err.count("\n") == 1
    assert "LEDGERHUB_HEALTH_TIMEOUT" in err
