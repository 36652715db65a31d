"""Fixtures for reconciliation tests: the ledger tests' config file fixture, and a reader."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from tests.ledger.conftest import config
from tests.reconciliation.harness import Recon

__all__ = ["config"]


@pytest.fixture
async def recon(dsn: str, config: Path) -> AsyncIterator[Recon]:
    conn = await asyncpg.connect(dsn)
    try:
        yield Recon(dsn, conn)
    finally:
        await conn.close()
