"""Done when (issue 16): ``ledgerhub serve`` and ``ledgerhub worker`` share the health schedule
with a local alert receiver. A check made to fail (Stripe refusing the key) yields exactly one
``failing`` POST, a reminder once ``remind_after`` passed, and one ``recovered`` POST when fixed;
the two processes never alert twice. ``GET /v1/health/connections`` shows the state."""

from __future__ import annotations

import itertools
import re
import time
from pathlib import Path

import aiohttp
import asyncpg

from tests.health.conftest import AlertReceiver
from tests.pulls.conftest import STRIPE_KEY
from tests.pulls.fake_stripe import FakeStripe, History, serve
from tests.runtime.harness import Workers, cli, wait_until

SOURCE = "stripe:acct_health"
REMIND = 3.0


def _config(tmp_path: Path, stripe_url: str) -> Path:
    path = tmp_path / "ledgerhub.toml"
    path.write_text(
        f'[health]\nevery = "1s"\nremind_after = "{REMIND:g}s"\n'
        '[alerts]\nwebhook_url = "env:LEDGERHUB_ALERT_WEBHOOK"\n'
        f'[[connections]]\nid = "{SOURCE}"\nconnector = "stripe"\n'
        f'api_key = "env:STRIPE_API_KEY"\napi_url = "{stripe_url}"\n'
    )
    return path


async def _state(conn: asyncpg.Connection) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT state, checked_at FROM ledgerhub.connection_health WHERE connection = $1", SOURCE
    )


async def test_serve_and_a_worker_alert_once_remind_and_recover_once(
    dsn: str, tmp_path: Path, receiver: AlertReceiver
) -> None:
    workers = Workers(dsn, tmp_path)
    conn = await asyncpg.connect(dsn)
    async with serve(FakeStripe(History(), api_key=STRIPE_KEY)) as fake:
        env = {
            "LEDGERHUB_CONFIG": str(_config(tmp_path, fake.url)),
            "LEDGERHUB_HOME": str(tmp_path / "home"),
            "LEDGERHUB_ALERT_WEBHOOK": receiver.url,
            "STRIPE_API_KEY": STRIPE_KEY,
            "LEDGERHUB_HEALTH_TICK": "0.2",
            "LEDGERHUB_LOG_FORMAT": "json",
        }
        try:
            workers.start("serve", "--port", "0", **env)
            workers.start("worker", "--projection", "count_by_type", "--no-sync", **env)

            async def listening() -> re.Match[str] | None:
                return re.search(r"serving on (http://127\.0\.0\.1:\d+)", workers.logs())

            url = await wait_until(listening, what="serve to listen", within=60)

            async def ok() -> bool:
                row = await _state(conn)
                return row is not None and row["state"] == "ok"

            await wait_until(ok, what="the first check to pass")
            assert receiver.received == []  # a first check that passes raises nothing

            fake.api_key = "rk_test_51RolledKeyNobodyToldTheHub0000"  # the key was rolled
            [failing] = await receiver.wait_for(1, state="failing")
            assert failing.body["text"].startswith(f"ledgerhub: connection {SOURCE} is failing")
            assert failing.alert["connection"] == SOURCE
            assert failing.alert["reminder"] is False
            assert "HTTP 401" in failing.alert["detail"]
            assert "Invalid API Key" in failing.alert["detail"]
            assert STRIPE_KEY not in str(failing.body)  # Stripe masks the key; so do we

            reminders = await receiver.wait_for(1, state="failing", reminder=True)
            assert reminders[0].alert["since"] == failing.alert["since"]
            assert reminders[0].at - failing.at >= REMIND - 0.5

            fake.api_key = STRIPE_KEY  # fixed
            [recovered] = await receiver.wait_for(1, state="recovered")
            fixed_at = (await _state(conn))["checked_at"]  # type: ignore[index]

            async def checked_twice_more() -> bool:
                row = await _state(conn)
                seconds = (row["checked_at"] - fixed_at).total_seconds() if row else 0
                return seconds >= 2.0

            await wait_until(checked_twice_more, what="two more passing checks")
            key = cli(dsn, tmp_path, "keys", "create", "--tenant", "default", "--scope",
                      "operate", **env).stdout.strip().splitlines()[-1]  # fmt: skip
            async with (
                aiohttp.ClientSession() as http,
                http.get(
                    f"{url[1]}/v1/health/connections",
                    headers={"Authorization": f"Bearer {key}"},
                ) as response,
            ):
                assert response.status == 200
                listed = await response.json()
        finally:
            workers.stop_all()
            await conn.close()

    # exactly one failing and one recovered POST from two processes checking every second;
    # reminders no closer together than remind_after
    assert len(receiver.health(state="failing", reminder=False)) == 1
    assert len(receiver.health(state="recovered")) == 1
    assert recovered.alert["detail"] == "Stripe accepted the API key"
    failing_posts = receiver.health(state="failing")
    gaps = [b.at - a.at for a, b in itertools.pairwise(failing_posts)]
    assert all(gap >= REMIND - 0.5 for gap in gaps), gaps
    assert time.monotonic() > recovered.at
    [row] = listed["connections"]
    assert (row["id"], row["state"]) == (SOURCE, "ok")
    assert set(row) >= {"id", "state", "checked_at", "detail"}
