"""No secret in the logs of a full run (DESIGN "Logs"): ``keys create``, a ``serve`` with its
workers, events ingested through the API, signed webhooks of every provider (and one forged),
a pull of a Stripe account, the accounting sync to Xero (OAuth refresh with token rotation,
the refresh token sealed under ``LEDGERHUB_SECRET_KEY``), ``verify --signatures``, ``status``
and ``runs`` — every process at debug level, JSON lines on stderr. Not one line holds an API
key, a webhook secret, the Xero client secret, a refresh or access token, the pull's API key or
the secret key (nor the last 12 characters of any of them)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web

from tests.accounting.fake_xero import FakeXero
from tests.accounting.fake_xero import serve as serve_xero
from tests.accounting.harness import XERO_SECRET_ENV
from tests.accounting.targets import BANKS, CHART
from tests.api import deliveries
from tests.api.conftest import CONNECTIONS, SECRETS, write_config
from tests.ops.harness import cli, hub_env, serving
from tests.pulls.conftest import STRIPE_KEY, STRIPE_SOURCE, stripe_connection
from tests.pulls.fake_stripe import DAY, FakeStripe, History
from tests.pulls.fake_stripe import serve as serve_stripe
from tests.reconciliation.scenarios import stripe_month

XERO_CLIENT_SECRET = "xero-client-secret-4f1c9a7e2b"
FIRST_REFRESH = "xero-refresh-0-9d8c7b6a5f4e"


class RecordingXero(FakeXero):
    """The fake Xero, keeping every access and refresh token it ever issued."""

    def __init__(self) -> None:
        super().__init__(set(CHART), FIRST_REFRESH, "org-1", bank_accounts=BANKS)
        self.issued: set[str] = {FIRST_REFRESH}

    async def _token(self, request: web.Request) -> web.Response:
        response = await super()._token(request)
        self.issued |= self.access_tokens | {self.refresh_token}
        return response


def _config(directory: Path, xero: str, stripe: str) -> Path:
    """The API tests' webhook connections (secrets in files), a Stripe account to pull, and
    the default tenant syncing to Xero."""
    path = write_config(directory)
    sync = (
        '\n[tenants.default.sync]\ntarget = "xero"\nmode = "per_transaction"\n'
        'tenant_id = "org-1"\nclient_id = "client"\n'
        f'client_secret = "env:{XERO_SECRET_ENV}"\nrefresh_token_file = "xero-refresh-token"\n'
        f'api_url = "{xero}/api.xro/2.0"\ntoken_url = "{xero}/connect/token"\ntimeout = 5\n'
    )
    text = path.read_text()
    head, _, rest = text.partition("[tenants.t2]")  # the sync table belongs to tenant default
    path.write_text(f"{head}{sync}\n[tenants.t2]{rest}\n{stripe_connection(stripe)}")
    (directory / "xero-refresh-token").write_text(FIRST_REFRESH)
    return path


def _event(event: Any) -> dict[str, Any]:
    return {
        "source": event.source,
        "external_id": event.external_id,
        "type": event.type,
        "occurred_at": event.occurred_at.isoformat(),
        "data": event.data,
    }


async def _wait(what: str, check: Any, log: Path, patience: float = 120) -> None:
    deadline = asyncio.get_running_loop().time() + patience
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            text = await asyncio.to_thread(log.read_text, errors="replace")
            raise AssertionError(f"{what} never happened:\n{text[-3000:]}")
        await asyncio.sleep(0.2)


async def test_a_full_run_logs_no_secret(dsn: str, tmp_path: Path) -> None:
    secret_key = base64.b64encode(os.urandom(32)).decode()
    today = int(time.time()) // DAY * DAY
    history = History(seed=4)
    history.add_days(today - 4 * DAY, 4, 1)
    history.settle(today - 1)
    stripe = FakeStripe(history)
    xero = RecordingXero()
    log = tmp_path / "logs.jsonl"
    async with serve_stripe(stripe), serve_xero(xero):
        config = _config(tmp_path, xero.url, stripe.url)
        env = hub_env(
            dsn, config, tmp_path / "home",
            LEDGERHUB_LOG_LEVEL="debug", LEDGERHUB_LOG_FORMAT="json",
            LEDGERHUB_SECRET_KEY=secret_key, STRIPE_API_KEY=STRIPE_KEY,
            LEDGERHUB_SYNC_INTERVAL="0.3", LEDGERHUB_POLL_INTERVAL="0.2",
            **{XERO_SECRET_ENV: XERO_CLIENT_SECRET},
        )  # fmt: skip
        code, out = await cli(
            env, log, "keys", "create", "--tenant", "default", "--scope", "ingest:*"
        )
        assert code == 0, log.read_text()[-2000:]
        ingest = out.strip().splitlines()[-1]
        code, out = await cli(env, log, "keys", "create", "--tenant", "*", "--scope", "operate")
        assert code == 0, log.read_text()[-2000:]
        operate = out.strip().splitlines()[-1]

        async with serving(env, log) as url, aiohttp.ClientSession() as http:
            auth = {"Authorization": f"Bearer {ingest}"}
            month = stripe_month(seed=3)
            first_days = sorted({e.occurred_at.date() for e in month.events})[:2]
            events = [_event(e) for e in month.events if e.occurred_at.date() in first_days]
            async with http.post(f"{url}/v1/events", json={"events": events}, headers=auth) as r:
                assert r.status == 200, await r.text()
            async with http.get(f"{url}/v1/runs?token={ingest}", headers=auth) as r:
                assert r.status in (403, 422)
            async with http.get(f"{url}/v1/runs", headers={"Authorization": "Bearer lh_bad"}) as r:
                assert r.status == 401
            for connector, account in CONNECTIONS.items():
                delivery = getattr(deliveries, connector)()
                webhook = f"{url}/v1/webhooks/{connector}/{account.split(':', 1)[1]}"
                async with http.post(webhook, data=delivery.body, headers=delivery.headers) as r:
                    assert r.status in (200, 202), (connector, r.status, await r.text())
            forged = deliveries.stripe(b"not-the-secret", evt="evt_forged")
            async with http.post(
                f"{url}/v1/webhooks/stripe/acct_1", data=forged.body, headers=forged.headers
            ) as r:
                assert r.status in (400, 401)

            since = datetime.fromtimestamp(today - 20 * DAY, UTC).date().isoformat()
            code, out = await cli(env, log, "pull", "run", STRIPE_SOURCE, "--since", since)
            assert code == 0, log.read_text()[-2000:]

            conn = await asyncpg.connect(dsn)
            try:

                async def synced() -> bool:
                    runs = await conn.fetchval(
                        "SELECT count(*) FROM ledgerhub.sync_runs WHERE ended_at IS NOT NULL "
                        "AND sent > 0"
                    )
                    return bool(xero.writes and runs)

                await _wait("a sync run writing to Xero", synced, log)
            finally:
                await conn.close()
            operate_auth = {"Authorization": f"Bearer {operate}"}
            async with http.get(f"{url}/metrics", headers=operate_auth) as r:
                assert r.status == 200
        for command in (("verify", "--signatures"), ("status",), ("runs",), ("pull", "status")):
            code, out = await cli(env, log, *command)
            assert code == 0, (command, out, log.read_text()[-2000:])

    assert xero.refreshes >= 1  # tokens were issued and rotated
    assert len(xero.issued) >= 3
    assert STRIPE_KEY in stripe.seen_keys  # the key did travel: to the API only
    stored = (tmp_path / "xero-refresh-token").read_text()
    assert not any(token in stored for token in xero.issued)  # sealed at rest
    secrets = {
        "ingest key": ingest,
        "operate key": operate,
        "Xero client secret": XERO_CLIENT_SECRET,
        "Stripe API key": STRIPE_KEY,
        "LEDGERHUB_SECRET_KEY": secret_key,
        **{f"{name} webhook secret": value.decode() for name, value in SECRETS.items()},
        **{f"Xero token {n}": token for n, token in enumerate(sorted(xero.issued))},
    }
    text = log.read_text(errors="replace")
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    levels = {line["level"] for line in lines}
    assert "debug" in levels, levels  # the most talkative level was on
    access = [line for line in lines if line.get("logger") == "ledgerhub.access"]
    webhooks = [line for line in access if line["path"].startswith("/v1/webhooks/")]
    assert len(webhooks) == len(CONNECTIONS) + 1
    said = " ".join(str(line["event"]) for line in lines)
    for expected in ("sealed the plain-text file", "pull stripe:acct_pulled:", "serving on"):
        assert expected in said, expected  # each part of the run logged what it did
    leaked = {
        name
        for name, secret in secrets.items()
        if secret in text or secret[-12:] in text or secret.strip("=")[-12:] in text
    }
    assert not leaked, leaked
