"""``ledgerhub worker --metrics-port``: a worker books, sends, and shows both on its own
``GET /metrics`` (an operate key for all tenants), with the health routes beside it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
from pathlib import Path

import aiohttp
import asyncpg

from hub.domain.keys import Scope, key_digest, key_prefix, new_key
from hub.store import EventStore
from hub.store.keys import KeyStore
from tests.accounting.harness import ROOT, documents, write_config
from tests.api.test_metrics import parse, value
from tests.ledger.harness import Books
from tests.ledger.scenarios import stripe_scenario


async def test_a_worker_serves_its_sync_and_lag_metrics(
    dsn: str, store: EventStore, config: Path, books: Books, tmp_path: Path
) -> None:
    write_config(config, "per_transaction")
    keys = await KeyStore.open(dsn)
    try:
        key = new_key()
        await keys.create(digest=key_digest(key), prefix=key_prefix(key), tenant="*",
                          scope=Scope.parse("operate"))  # fmt: skip
    finally:
        await keys.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGERHUB_")}
    env.update(LEDGERHUB_DSN=dsn, LEDGERHUB_CONFIG=str(config), LEDGERHUB_HOME=str(tmp_path),
               LEDGERHUB_POLL_INTERVAL="0.1", LEDGERHUB_SYNC_INTERVAL="0.1",
               PYTHONPATH=str(ROOT))  # fmt: skip
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hub", "worker", "--metrics-port", "0", env=env, cwd=ROOT,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert worker.stderr is not None
    try:
        url = ""
        async with asyncio.timeout(30):
            while not url:
                line = (await worker.stderr.readline()).decode()
                assert line, "the worker exited"
                found = re.search(r"metrics on (http://127\.0\.0\.1:\d+)/metrics", line)
                url = found[1] if found else ""
        await store.append(stripe_scenario().before_payout)
        bearer = {"Authorization": f"Bearer {key}"}
        async with aiohttp.ClientSession() as http, asyncio.timeout(60):
            async with http.get(f"{url}/metrics") as response:
                assert response.status == 401
            async with http.get(f"{url}/healthz") as response:
                assert response.status == 200
            async with http.get(f"{url}/v1/events", headers=bearer) as response:
                assert response.status == 404  # metrics and health only, not the API
            while True:
                try:
                    docs = await documents(books.conn)
                except asyncpg.UndefinedTableError:  # the worker has not set up accounting yet
                    docs = {}
                async with http.get(f"{url}/metrics", headers=bearer) as response:
                    assert response.status == 200
                    samples = parse(await response.text())
                sent = value(samples, "ledgerhub_sync_documents_total", target="beancount",
                             outcome="sent")  # fmt: skip
                if docs and sent == len(docs):
                    break
                await asyncio.sleep(0.2)
        lag = ("ledgerhub_projection_lag_events", frozenset({("projection", "accounting")}))
        assert lag in samples  # read from the database at the scrape
        calls = value(samples, "ledgerhub_target_calls_total", target="beancount",
                      operation="create", outcome="ok")  # fmt: skip
        assert calls == len(docs)
    finally:
        with contextlib.suppress(ProcessLookupError):
            worker.send_signal(signal.SIGTERM)
        await asyncio.wait_for(worker.wait(), 30)
