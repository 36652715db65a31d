"""``ledgerhub pull run`` killed with SIGKILL five times mid-backfill, against a Stripe that
fails 20% of its calls (429, 5xx, stalls past the timeout, dropped connections): once a run
finishes, every object is in the log exactly once; the killed runs are marked failed; and no
output of any of the runs (with ``-v``) holds the API key."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from hub.store.runs import RunLog
from tests.pulls.conftest import STRIPE_KEY, STRIPE_SOURCE, ConfigWriter, logged, stripe_connection
from tests.pulls.fake_stripe import DAY, FakeStripe, History, serve

KILL_AT = (2, 4, 7, 12, 20)
"""Each killed run dies as it makes its n-th API call."""


async def test_five_kills_and_faults_still_land_every_object_once_and_no_secret_is_logged(
    dsn: str, pool: asyncpg.Pool, write_config: ConfigWriter, tmp_path: Path
) -> None:
    today = int(time.time()) // DAY * DAY
    history = History(seed=3)
    history.add_days(today - 120 * DAY, 120, 5)
    history.settle(today - 1)
    fake = FakeStripe(history, fault_rate=0.2, stall=3.0, seed=5)
    outputs: list[bytes] = []
    async with serve(fake):
        write_config(stripe_connection(fake.url))
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("LEDGERHUB_")},
            "LEDGERHUB_CONFIG": str(tmp_path / "ledgerhub.toml"),
            "LEDGERHUB_DSN": dsn,
            "LEDGERHUB_PULL_TIMEOUT": "0.5",
            "LEDGERHUB_PULL_RETRY_WAIT": "0.01",
            "LEDGERHUB_PULL_BACKOFF_MAX": "0.05",
            "LEDGERHUB_PULL_RETRY_ATTEMPTS": "20",
            "LEDGERHUB_LOG_LEVEL": "DEBUG",
        }
        since = datetime.fromtimestamp(today - 130 * DAY, UTC).date().isoformat()
        command = [sys.executable, "-m", "hub", "-v", "pull", "run", STRIPE_SOURCE]
        kills = 0
        for number, kill_at in enumerate((*KILL_AT, None)):
            args = command + (["--since", since] if number == 0 else [])
            proc = await asyncio.create_subprocess_exec(
                *args,
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                cwd=tmp_path,
            )
            base = fake.requests.total()

            def kill(
                count: int,
                base: int = base,
                at: int | None = kill_at,
                pid: int = proc.pid,
            ) -> None:
                nonlocal kills
                if at is not None and count - base == at:
                    os.kill(pid, signal.SIGKILL)
                    kills += 1

            fake.on_request = kill
            out, _ = await proc.communicate()
            outputs.append(out)
            if kill_at is None:
                assert proc.returncode == 0, out.decode()
            else:
                assert proc.returncode == -signal.SIGKILL, out.decode()
        fake.on_request = None
    assert kills == len(KILL_AT)
    assert fake.injected.total() > 0
    ids = await logged(dsn, STRIPE_SOURCE)
    assert len(ids) == len(set(ids))
    assert set(ids) == history.expected_ids()
    runs = await RunLog(pool).recent(kind="pull")
    assert [r.status for r in runs] == ["succeeded"] + ["failed"] * len(KILL_AT)
    assert all(r.error == "the process running it ended before it did" for r in runs[1:])
    assert b"pulled stripe:acct_pulled:" in outputs[-1]
    for out in outputs:
        assert STRIPE_KEY.encode() not in out
        assert STRIPE_KEY[-12:].encode() not in out
    assert STRIPE_KEY in fake.seen_keys  # the key did travel, to the API only
