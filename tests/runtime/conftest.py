"""Fixtures for runtime tests: worker processes, the test's read model, a scratch directory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from hub.store.projections import ProjectionStore
from tests.runtime.harness import ReadModel, Workers


@pytest.fixture
def workers(dsn: str, tmp_path: Path) -> Iterator[Workers]:
    pool = Workers(dsn, tmp_path)
    try:
        yield pool
    finally:
        pool.stop_all()


@pytest.fixture
async def model(dsn: str) -> AsyncIterator[ReadModel]:
    conn = await asyncpg.connect(dsn)
    try:
        yield ReadModel(conn)
    finally:
        await conn.close()


@pytest.fixture
async def projections(dsn: str) -> AsyncIterator[ProjectionStore]:
    """The runtime's store on this test's database."""
    async with await ProjectionStore.open(dsn, lease_ttl=1) as store:
        yield store
