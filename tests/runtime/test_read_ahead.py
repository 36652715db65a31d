"""A runner alone behind the head reads the next batch, and prepares it, while it applies this one.

``Projection.prepare`` is the projection's database-free work on a batch (mapping and booking,
remembered for ``handle``); run on the batch after the one being applied, Python's work on it
overlaps the database's on this one. These tests hold the runtime to that, and to the batches
it applies being the same as without reading ahead; and runners that prepare, behind together,
to staying near each other in the log (what one prepared is remembered for the others).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Sequence
from typing import ClassVar

import asyncpg
import pytest

from hub.domain.events import RecordedEvent
from hub.runtime.settings import RuntimeSettings
from hub.runtime.worker import Worker
from hub.spi.projection import Context, Projection
from hub.store import EventStore
from hub.store.projections import ProjectionStore
from tests.factories import event
from tests.runtime.harness import wait_until

JOURNAL: list[tuple[str, tuple[int, ...]]] = []
"""What the projection below was asked to do, in order: ("prepare" | "handle", positions)."""


class Journaled(Projection):
    """Writes each position it handles once; journals its calls."""

    name: ClassVar[str] = "journaled"
    tables: ClassVar[dict[str, str]] = {"seen": "position bigint PRIMARY KEY"}

    delay: ClassVar[float] = 0.0
    """Seconds each batch takes besides its writes (a slow projection)."""

    def prepare(self, events: Sequence[RecordedEvent]) -> None:
        JOURNAL.append(("prepare", tuple(e.position for e in events)))

    async def handle(self, events: Sequence[RecordedEvent], ctx: Context) -> None:
        JOURNAL.append(("handle", tuple(e.position for e in events)))
        await asyncio.sleep(self.delay)
        await ctx.conn.executemany(
            f"INSERT INTO {ctx.tables['seen']} (position) VALUES ($1)",
            [(e.position,) for e in events],
        )


async def _at(conn: asyncpg.Connection, name: str, head: int) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT position >= $2 FROM ledgerhub.projection_generations WHERE projection = $1",
            name,
            head,
        )
    )


async def _run_until_caught_up(
    dsn: str,
    head: int,
    settings: RuntimeSettings,
    projections: Sequence[type[Journaled]] = (Journaled,),
) -> None:
    """One worker running ``projections`` until each has applied the log up to ``head``."""
    conn = await asyncpg.connect(dsn)
    try:
        worker = asyncio.create_task(Worker(dsn, list(projections), settings).run())
        try:
            for projection in projections:
                await wait_until(
                    functools.partial(_at, conn, projection.name, head),
                    what=f"{projection.name} caught up",
                )
        finally:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
    finally:
        await conn.close()


async def test_a_catch_up_prepares_each_batch_before_it_is_handled(
    dsn: str, store: EventStore
) -> None:
    await store.append([event(f"evt_{i}") for i in range(50)])
    JOURNAL.clear()
    await _run_until_caught_up(
        dsn, 50, RuntimeSettings(lease_ttl=2, poll_interval=0.05, batch_size=10)
    )
    handled = [positions for call, positions in JOURNAL if call == "handle"]
    # every event handled once, in order, in batches of 10
    assert [p for batch in handled for p in batch] == list(range(1, 51))
    assert handled[0] == tuple(range(1, 11))
    # batches 2..5 were read ahead: prepared (in slices) before they were handled
    for batch in handled[1:]:
        at = JOURNAL.index(("handle", batch))
        prepared = {p for call, ps in JOURNAL[:at] if call == "prepare" for p in ps}
        assert set(batch) <= prepared, f"batch {batch} handled before it was prepared"
    # the first batch was not read ahead: nothing was applied before the worker read it
    assert not any(1 in ps for call, ps in JOURNAL if call == "prepare")


async def test_a_runner_at_the_head_does_not_read_ahead(dsn: str, store: EventStore) -> None:
    await store.append([event("first")])
    JOURNAL.clear()
    settings = RuntimeSettings(lease_ttl=2, poll_interval=0.05, batch_size=10)
    await _run_until_caught_up(dsn, 1, settings)
    assert JOURNAL == [("handle", (1,))]


async def test_a_read_looks_at_a_window_of_positions_and_misses_nothing(
    store: EventStore, projections: ProjectionStore, dsn: str
) -> None:
    """One read covers at most ``limit`` positions (four times that for some types only), so
    its cost does not depend on how much of the log is left, whatever plan PostgreSQL picks
    with its statistics; reading on from each covered position still yields every event."""
    await store.append([event("first"), event("second")])
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("ANALYZE ledgerhub.events")  # statistics of a two-event log
    finally:
        await conn.close()
    await store.append(
        [event(f"evt_{i}", type="t.rare" if i % 25 == 0 else "t.common") for i in range(1000)]
    )
    head = 1002
    seen: list[int] = []
    covered = 0
    while covered < head:
        events, reached = await projections.read(covered, head, types=["t.rare"], limit=10)
        assert covered < reached <= covered + 40
        seen += [e.position for e in events]
        covered = reached
    rare = [n + 3 for n in range(1000) if n % 25 == 0]
    assert seen == rare
    events, reached = await projections.read(0, head, types=None, limit=10)
    assert [e.position for e in events] == list(range(1, 11))
    assert reached == 10


class Journaled2(Journaled):
    """A second projection, journaling into the same list."""

    name: ClassVar[str] = "journaled_too"

    def prepare(self, events: Sequence[RecordedEvent]) -> None:
        JOURNAL.append(("prepare too", tuple(e.position for e in events)))


async def test_runners_behind_together_do_not_read_ahead(
    dsn: str, store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two projections catching up in one process keep its CPU busy between them; reading
    ahead there only adds work. Allowed: a batch read before the second runner fell behind,
    and one after the first caught up (the other alone then)."""
    monkeypatch.setattr(Journaled, "delay", 0.05)  # both slow: behind together most of the way
    await store.append([event(f"evt_{i}") for i in range(50)])
    JOURNAL.clear()
    settings = RuntimeSettings(lease_ttl=2, poll_interval=0.05, batch_size=10)
    await _run_until_caught_up(dsn, 50, settings, (Journaled, Journaled2))
    handled = [ps for call, ps in JOURNAL if call == "handle"]
    assert sorted(p for ps in handled for p in ps) == sorted(2 * list(range(1, 51)))
    prepared = [p for call, ps in JOURNAL if call.startswith("prepare") for p in ps]
    assert len(prepared) <= 20, f"{len(prepared)} events read ahead"


class Slow(Journaled2):
    """A preparing projection slower than ``Journaled``, journaling its batches apart."""

    name: ClassVar[str] = "journaled_slowly"

    async def handle(self, events: Sequence[RecordedEvent], ctx: Context) -> None:
        JOURNAL.append(("handle slowly", tuple(e.position for e in events)))
        await asyncio.sleep(0.03)
        await ctx.conn.executemany(
            f"INSERT INTO {ctx.tables['seen']} (position) VALUES ($1)",
            [(e.position,) for e in events],
        )


async def test_runners_that_prepare_keep_within_the_window_of_the_slowest(
    dsn: str, store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What one runner maps the others find in the process's memo only while they are near
    each other in the log: a fast runner waits for a slow one (``Behind.keep_up``). Each reads
    from where it has applied; the slow one is at most a batch past what it has handled."""
    monkeypatch.setattr("hub.runtime.behind.WINDOW", 20)
    await store.append([event(f"evt_{i}") for i in range(120)])
    JOURNAL.clear()
    settings = RuntimeSettings(lease_ttl=2, poll_interval=0.05, batch_size=10)
    await _run_until_caught_up(dsn, 120, settings, (Journaled, Slow))
    slow_done = 0
    fast = []
    for call, positions in JOURNAL:
        if call == "handle slowly":
            slow_done = max(slow_done, *positions)
        elif call == "handle":
            fast.append(positions)
            assert positions[0] - 1 <= slow_done + 10 + 20, (positions, slow_done)
    assert sorted(p for ps in fast for p in ps) == list(range(1, 121))
