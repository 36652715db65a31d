"""Schemathesis over the served ``/openapi.json``: whatever a client sends, the answer is one the
document promises.

A real ``ledgerhub serve`` (a process of its own, on 127.0.0.1, with its projection workers) on a
migrated database holding a month of processor, shop and bank activity, the projections built so
their routes answer. Schemathesis (its own command line, as CI or a person would run it) reads
the served document and sends generated requests to every operation, once per kind of key:
``ingest`` (``ingest:*``), ``read``, ``operate`` (all tenants) and none. Its checks:

- ``not_a_server_error``: no answer is a 5xx;
- ``status_code_conformance`` and ``content_type_conformance``: every status and media type
  answered is one the document lists for that operation;
- ``response_schema_conformance``: every body matches the schema documented for it;
- ``negative_data_rejection``: a request the document says is invalid is refused (4xx), so the
  server is no more lenient than its document;
- ``positive_data_acceptance``: a request the document says is valid is not refused as
  malformed (400/422), so the server is no stricter than its document.

Two operations cannot say all of their rules in JSON Schema, so ``positive_data_acceptance``
is off for them (their 422s are tested directly): ``POST /v1/events`` (``data`` and ``meta`` are
free-form JSON, in which the log refuses NUL and numbers it cannot keep exactly) and ``POST
/v1/projections/{name}/replay`` (``from <= to <= the projection's position``). A page cursor
(``format: page-cursor``, the previous page's ``next``) is generated as one.

Bounded: at most ``EXAMPLES`` generated requests per operation and phase, and a fixed seed, so a
run is repeatable and takes well under a minute.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hub.domain.keys import Scope, key_digest, key_prefix, new_key
from hub.store import EventStore
from hub.store.keys import KeyStore
from hub.testing.postgres import Databases
from hub.usecases.demo import sample_events
from tests.reconciliation.scenarios import statement, stripe_month

EXAMPLES = 20
"""Generated requests per operation (per phase), for each kind of key."""
SEED = 20260101
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "positive_data_acceptance",
)
KEYS: dict[str, tuple[str, str] | None] = {
    "ingest": ("ingest:*", "default"),
    "read": ("read", "default"),
    "operate": ("operate", "*"),
    "none": None,
}
"""Each kind of caller: its key's scope and tenant (None: no key at all)."""
STARTUP = 60.0
"""Seconds the server may take to listen and its workers to build the projections."""
CHECK_LINES = "\n".join(f"{check}.enabled = true" for check in CHECKS)
CONFIG = f"""
seed = {SEED}
workers = 1
[generation]
max-examples = {EXAMPLES}
[phases.stateful]
enabled = false
[checks]
enabled = false
{CHECK_LINES}
negative_data_rejection.expected-statuses = ["400", "401", "403", "404", "409", "413", "415", "422"]
[[operations]]
include-path = "/v1/events"
include-method = "POST"
checks.positive_data_acceptance.enabled = false
[[operations]]
include-path = "/v1/projections/{{name}}/replay"
include-method = "POST"
checks.positive_data_acceptance.enabled = false
"""
"""Schemathesis's configuration (``schemathesis.toml``): ``CHECKS`` on, everywhere but where an
operation says otherwise."""
HOOKS = """
import schemathesis
from hypothesis import strategies as st

_PART = st.text(
    st.characters(exclude_characters="|\\x00", exclude_categories=["Cs"]), min_size=1, max_size=12
)
schemathesis.openapi.format(
    "page-cursor",
    st.just("")
    | st.builds(
        lambda day, n, a, b: f"{day.isoformat()}|{n}|{a}|{b}",
        st.dates(), st.integers(0, 10**6), _PART, _PART,
    ),
)
"""
"""A page cursor, as the ledger's and reconciliation's pages write their ``next`` (one shape
that parses as each of them), or empty for the first page."""


@dataclass(frozen=True)
class Served:
    """The running server, its document saved to a file, a key of each kind, its log."""

    url: str
    home: Path
    keys: dict[str, str]
    log: Path

    @property
    def document(self) -> Path:
        return self.home / "openapi.json"

    @property
    def config(self) -> Path:
        return self.home / "schemathesis.toml"

    @property
    def hooks(self) -> Path:
        return self.home / "hooks.py"


async def _seed(dsn: str) -> dict[str, str]:
    """A month of activity in the log, and a key of each kind (as ``keys create`` stores it)."""
    month = stripe_month()
    async with await EventStore.open(dsn) as store:
        await store.append(sample_events())
        await store.append([*month.events, *statement(month).lines])
    keys = await KeyStore.open(dsn)
    try:
        found = {}
        for kind, grant in KEYS.items():
            if grant is None:
                continue
            key = new_key()
            await keys.create(
                digest=key_digest(key),
                prefix=key_prefix(key),
                tenant=grant[1],
                scope=Scope.parse(grant[0]),
            )
            found[kind] = key
        return found
    finally:
        await keys.close()


def _get(url: str, key: str) -> Any:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _wait_for_url(server: subprocess.Popen[bytes], log: Path, deadline: float) -> str:
    while time.monotonic() < deadline:
        for line in log.read_text(errors="replace").splitlines():
            if "ledgerhub serving on " in line:
                return line.split("ledgerhub serving on ", 1)[1].split()[0]
        if server.poll() is not None:
            raise AssertionError(f"serve exited {server.returncode}:\n{log.read_text()}")
        time.sleep(0.1)
    raise AssertionError(f"serve did not start:\n{log.read_text()}")


def _wait_until_built(url: str, operate: str, deadline: float) -> None:
    """Until every projection has applied the whole log (so its routes answer)."""
    while time.monotonic() < deadline:
        statuses = _get(f"{url}/v1/projections", operate)["projections"]
        if statuses and all(s["lag_events"] == 0 and s["position"] > 0 for s in statuses):
            return
        time.sleep(0.2)
    raise AssertionError(f"the projections were not built in time: {statuses}")


@pytest.fixture(scope="module")
def served(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("schemathesis")
    dsn = asyncio.run(databases.create())
    keys = asyncio.run(_seed(dsn))
    config = home / "ledgerhub.toml"
    config.write_text('[tenants.default]\ntimezone = "America/New_York"\ncurrency = "USD"\n')
    log = home / "serve.log"
    env = {
        **os.environ,
        "LEDGERHUB_DSN": dsn,
        "LEDGERHUB_CONFIG": str(config),
        "LEDGERHUB_HOME": str(home),
        "LEDGERHUB_POLL_INTERVAL": "0.2",
        "LEDGERHUB_LOG_FORMAT": "json",
        "LEDGERHUB_LOG_LEVEL": "WARNING",
    }
    with log.open("wb") as sink:
        server = subprocess.Popen(
            [sys.executable, "-m", "hub", "serve", "--host", "127.0.0.1", "--port", "0"],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + STARTUP
        url = _wait_for_url(server, log, deadline)
        _wait_until_built(url, keys["operate"], deadline)
        found = Served(url, home, keys, log)
        found.document.write_text(json.dumps(_get(f"{url}/openapi.json", keys["read"])))
        found.config.write_text(CONFIG)
        found.hooks.write_text(HOOKS)
        yield found
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        asyncio.run(databases.drop(dsn))


def _crashes(log: Path) -> list[str]:
    """The server's log lines about requests it answered with a 500 (``hub.api.problems``)."""
    return [line for line in log.read_text(errors="replace").splitlines() if "unhandled" in line]


@pytest.mark.parametrize("kind", list(KEYS))
def test_every_answer_is_one_the_document_promises(served: Served, kind: str) -> None:
    key = served.keys.get(kind)
    headers = [] if key is None else ["-H", f"Authorization: Bearer {key}"]
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(served.config), "--no-color",
        "run", str(served.document), "--url", served.url, *headers,
        "--request-timeout", "20", "--output-truncate", "false",
    ]  # fmt: skip
    env = {**os.environ, "SCHEMATHESIS_HOOKS": str(served.hooks)}
    started = time.monotonic()
    run = subprocess.run(  # in the server's home: schemathesis keeps a cache where it runs
        command, capture_output=True, text=True, timeout=300, check=False, env=env, cwd=served.home
    )
    took = time.monotonic() - started
    report = run.stdout
    for heading in ("=== ERRORS ===", "=== FAILURES ==="):
        if heading in report:
            report = report[report.index(heading) :]
            break
    assert run.returncode == 0, (
        f"schemathesis ({kind} key, {took:.0f} s) found failures:\n{report[:30000]}\n"
        f"{run.stderr[-2000:]}"
    )
    generated = re.search(r"(\d+) generated", run.stdout)
    assert generated is not None, run.stdout[-2000:]
    assert int(generated[1]) > 100, "schemathesis sent the server too little to mean anything"
    assert _crashes(served.log) == []
