"""Fixtures for ledger tests: the books' read model and a config file of the test's own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from tests.ledger.harness import Books


@pytest.fixture
async def books(dsn: str) -> AsyncIterator[Books]:
    conn = await asyncpg.connect(dsn)
    try:
        yield Books(conn)
    finally:
        await conn.close()


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``LEDGERHUB_CONFIG`` for this test (write it before the ledger starts)."""
    path = tmp_path / "ledgerhub.toml"
    path.write_text("")
    monkeypatch.setenv("LEDGERHUB_CONFIG", str(path))
    return path
