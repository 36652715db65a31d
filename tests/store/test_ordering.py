"""Gap-free, commit-ordered positions: a reader never skips an event that commits late."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import asyncpg
import pytest

from hub.config import APP_ROLE
from hub.domain.chain import GENESIS_HASH, ChainLink, event_hash
from hub.store import EventStore
from hub.store.events import EVENT_LOG_LOCK
from hub.usecases.verify import verify_chain
from tests.factories import event

pytestmark = pytest.mark.store


async def _reader(store: EventStore, seen: list[int], stop: asyncio.Event) -> None:
    """A projection-style reader: pages with `position > checkpoint`, never looks back."""
    checkpoint = 0
    while not stop.is_set():
        for recorded in await store.read_after(checkpoint, limit=100):
            seen.append(recorded.position)
            checkpoint = recorded.position
        await asyncio.sleep(0.01)
    for recorded in await store.read_after(checkpoint, limit=1000):
        seen.append(recorded.position)


async def test_reader_never_skips_an_append_that_commits_late(store: EventStore, dsn: str) -> None:
    await store.append([event("before")])

    # One append transaction, done by hand exactly as the store does it, held open.
    held = await asyncpg.connect(dsn, server_settings={"role": APP_ROLE})
    tx = held.transaction()
    await tx.start()
    await held.execute("SELECT pg_advisory_xact_lock($1)", EVENT_LOG_LOCK)
    head = await held.fetchrow(
        "SELECT position, hash FROM ledgerhub.events ORDER BY position DESC LIMIT 1"
    )
    assert head is not None  # the "before" event was appended above
    now = await held.fetchval("SELECT clock_timestamp()")
    data = await held.fetchval("""SELECT '{"held": true}'::jsonb::text""")
    link = ChainLink(
        position=head["position"] + 1,
        id=uuid.uuid4(),
        tenant="default",
        source="stripe:acct_test",
        external_id="held",
        type="stripe.charge.succeeded",
        stream="stripe:acct_test/held",
        stream_version=1,
        occurred_at=datetime(2026, 11, 1, tzinfo=UTC),
        recorded_at=now,
        data_json=data,
        meta_json="{}",
        raw=None,
    )
    await held.execute(
        "INSERT INTO ledgerhub.events (position, id, tenant, source, external_id, type, stream, "
        "stream_version, occurred_at, recorded_at, data, meta, raw, hash) "
        "VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11::jsonb,$12::jsonb,$13,$14)",
        link.position,
        link.id,
        link.tenant,
        link.source,
        link.external_id,
        link.type,
        link.stream,
        link.stream_version,
        link.occurred_at,
        link.recorded_at,
        link.data_json,
        link.meta_json,
        link.raw,
        event_hash(head["hash"] or GENESIS_HASH, link),
    )

    seen: list[int] = []
    stop = asyncio.Event()
    reader = asyncio.create_task(_reader(store, seen, stop))
    # Other appenders (a second store = a second hub process) arrive while it is held.
    other = await EventStore.open(dsn)
    later = [
        asyncio.create_task(s.append([event(f"later-{i}")]))
        for i, s in enumerate([store, other, store, other])
    ]
    await asyncio.sleep(0.5)
    assert not any(t.done() for t in later), "appends must wait for the held transaction"
    assert seen == [1], "the reader sees only what has committed, and nothing past a hole"

    await tx.commit()  # the held append commits last of all…
    await held.close()
    results = await asyncio.gather(*later)
    await other.close()
    stop.set()
    await reader

    # …yet it owns position 2, and everything after it committed after it.
    assert sorted(r[0].position for r in results) == [3, 4, 5, 6]
    assert seen == [1, 2, 3, 4, 5, 6]
    assert (await verify_chain(store)).ok


async def test_concurrent_writers_in_two_processes_interleave_without_holes(dsn: str) -> None:
    stores = [await EventStore.open(dsn) for _ in range(3)]
    try:
        seen: list[int] = []
        stop = asyncio.Event()
        reader = asyncio.create_task(_reader(stores[0], seen, stop))
        await asyncio.gather(
            *(
                stores[i % 3].append([event(f"e{i}-{j}") for j in range(i % 4 + 1)])
                for i in range(60)
            )
        )
        stop.set()
        await reader
        head = await stores[0].head()
        assert seen == list(range(1, head + 1))
        assert (await verify_chain(stores[0])).ok
    finally:
        for s in stores:
            await s.close()
