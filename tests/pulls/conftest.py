"""Fixtures for the pull tests: the hub's pool on the test's database, a config file naming a
fake's URL, and reading back what the log holds."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import asyncpg
import pytest

from hub.config import Config
from hub.config.file import load_config
from hub.store.pool import create_pool
from tests.ledger.harness import Books

STRIPE_KEY = "rk_test_51FakeRestrictedKeyForPulls0000secret"
STRIPE_SOURCE = "stripe:acct_pulled"


@pytest.fixture
async def pool(dsn: str) -> AsyncIterator[asyncpg.Pool]:
    """The hub's pool (role ``ledgerhub_app``) on the test's database."""
    created = await create_pool(dsn, max_size=4)
    try:
        yield created
    finally:
        await created.close()


ConfigWriter = Callable[[str], Config]


@pytest.fixture
def write_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ConfigWriter:
    """Write ``LEDGERHUB_CONFIG`` with the given ``[[connections]]`` TOML and load it."""
    monkeypatch.setenv("STRIPE_API_KEY", STRIPE_KEY)
    path = tmp_path / "ledgerhub.toml"
    monkeypatch.setenv("LEDGERHUB_CONFIG", str(path))

    def write(text: str) -> Config:
        path.write_text(text)
        return load_config(path)

    return write


def stripe_connection(url: str, *, every: str = "15m", source: str = STRIPE_SOURCE) -> str:
    return (
        f'[[connections]]\nid = "{source}"\nconnector = "stripe"\napi_key = "env:STRIPE_API_KEY"\n'
        f'api_url = "{url}"\npull = {{ every = "{every}" }}\n'
    )


async def logged(dsn: str, source: str) -> list[str]:
    """The external ids of ``source``'s events, in log order."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT external_id FROM ledgerhub.events WHERE source = $1 ORDER BY position", source
        )
    finally:
        await conn.close()
    return [r["external_id"] for r in rows]


@pytest.fixture
async def books(dsn: str) -> AsyncIterator[Books]:
    """The ledger's read model on the test's database."""
    conn = await asyncpg.connect(dsn)
    try:
        yield Books(conn)
    finally:
        await conn.close()
