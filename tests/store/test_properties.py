"""Property: any interleaving of concurrent batches with duplicates keeps every log invariant."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.store import EventStore
from hub.testing.postgres import Databases
from hub.usecases.verify import verify_chain
from tests.factories import event

pytestmark = pytest.mark.store

keys = st.tuples(st.sampled_from(["stripe:acct_a", "shopify:acme"]), st.integers(0, 7))
batches = st.lists(
    st.tuples(st.integers(0, 2), st.lists(keys, min_size=1, max_size=6)), min_size=1, max_size=12
)


async def _run(databases: Databases, plan: list[tuple[int, list[tuple[str, int]]]]) -> None:
    dsn = await databases.create()
    # three stores = three hub processes, each with its own group commit, racing for the lock
    stores = [await EventStore.open(dsn, max_connections=4) for _ in range(3)]
    try:
        results = await asyncio.gather(
            *(
                stores[who].append([event(f"x{n}", source=source) for source, n in batch])
                for who, batch in plan
            )
        )
        log = await stores[0].read_after(0, limit=10_000)
        distinct = {(source, f"x{n}") for _, batch in plan for source, n in batch}

        assert [e.position for e in log] == list(range(1, len(distinct) + 1))
        stored = [(e.source, e.external_id) for e in log]
        assert sorted(stored) == sorted(distinct)  # each key exactly once
        by_position = {e.position: (e.source, e.external_id) for e in log}
        for (_, batch), answered in zip(plan, results, strict=True):
            assert len(answered) == len(batch)
            for (source, n), result in zip(batch, answered, strict=True):
                assert by_position[result.position] == (source, f"x{n}")
        appended = sum(r.status == "appended" for answered in results for r in answered)
        assert appended == len(distinct)
        assert (await verify_chain(stores[0])).ok
    finally:
        for s in stores:
            await s.close()
        await databases.drop(dsn)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=batches)
def test_any_interleaving_keeps_the_invariants(
    databases: Databases, plan: list[tuple[int, list[tuple[str, int]]]]
) -> None:
    asyncio.run(_run(databases, plan))
