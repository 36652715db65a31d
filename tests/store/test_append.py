"""The event store's append invariants: idempotency, expected_version, atomic batches, isolation."""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import asyncpg
import pytest

from hub.domain.events import AppendResult, NewEvent
from hub.errors import ConcurrencyConflict, InvalidInput
from hub.store import EventStore
from hub.store.events import EVENT_LOG_LOCK, WRITERS
from hub.usecases.verify import verify_chain
from tests.factories import event
from tests.runtime.harness import wait_until

pytestmark = pytest.mark.store


async def count(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM ledgerhub.events"))
    finally:
        await conn.close()


async def test_positions_start_at_one_and_are_contiguous(store: EventStore) -> None:
    first = await store.append([event("evt_1"), event("evt_2")])
    second = await store.append([event("evt_3")])
    assert [r.position for r in first + second] == [1, 2, 3]
    assert all(r.status == "appended" for r in first + second)
    assert await store.head() == 3
    stored = await store.read_after(0)
    assert [e.external_id for e in stored] == ["evt_1", "evt_2", "evt_3"]
    assert stored[0].data == {"id": "evt_1", "amount": 1099, "currency": "usd"}
    assert stored[0].occurred_at == datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


async def test_duplicate_returns_original_position_and_writes_nothing(
    store: EventStore, dsn: str
) -> None:
    await store.append([event("evt_a"), event("evt_b")])
    again = await store.append([event("evt_x"), event("evt_b", data={"changed": True})])
    assert [(r.external_id, r.status, r.position) for r in again] == [
        ("evt_x", "appended", 3),
        ("evt_b", "duplicate", 2),
    ]
    assert await count(dsn) == 3
    # the stored payload is the first delivery's, never rewritten
    stored = await store.read_after(1, limit=1)
    assert stored[0].data["id"] == "evt_b"


async def test_duplicate_within_one_batch_is_stored_once(store: EventStore) -> None:
    results = await store.append([event("evt_1"), event("evt_1")])
    assert [(r.status, r.position) for r in results] == [("appended", 1), ("duplicate", 1)]
    assert await store.head() == 1


async def test_idempotency_is_per_tenant_and_source(store: EventStore) -> None:
    results = await store.append(
        [
            event("same"),
            event("same", source="shopify:acme"),
            event("same", tenant="other-books"),
        ]
    )
    assert [r.status for r in results] == ["appended"] * 3


async def test_stream_versions_count_up_per_stream(store: EventStore) -> None:
    results = await store.append(
        [
            event("e1", stream="stripe:acct_test/ch_1"),
            event("e2", stream="stripe:acct_test/ch_1"),
            event("e3", stream="stripe:acct_test/ch_2"),
        ]
    )
    assert [r.stream_version for r in results] == [1, 2, 1]
    later = await store.append([event("e4", stream="stripe:acct_test/ch_1")])
    assert later[0].stream_version == 3
    stream = await store.read_stream("default", "stripe:acct_test/ch_1")
    assert [(e.external_id, e.stream_version) for e in stream] == [("e1", 1), ("e2", 2), ("e4", 3)]


async def test_expected_version_conflict_rejects_whole_batch(store: EventStore, dsn: str) -> None:
    await store.append([event("e1", stream="s/1"), event("e2", stream="s/1")])
    with pytest.raises(ConcurrencyConflict) as info:
        await store.append(
            [
                event("e3", stream="s/2"),  # fine on its own
                event("e4", stream="s/1", expected_version=1),  # s/1 is at 2
            ]
        )
    assert info.value.actual == 2
    assert info.value.expected == 1
    assert info.value.errors[0]["index"] == 1
    assert await count(dsn) == 2  # nothing of the batch
    ok = await store.append([event("e4", stream="s/1", expected_version=2)])
    assert ok[0].stream_version == 3


async def test_expected_version_zero_means_new_stream(store: EventStore) -> None:
    await store.append([event("e1", stream="s/new", expected_version=0)])
    with pytest.raises(ConcurrencyConflict):
        await store.append([event("e2", stream="s/new", expected_version=0)])


async def test_retry_of_a_committed_batch_with_expected_version_is_duplicate(
    store: EventStore,
) -> None:
    batch = [event("e1", stream="s/1", expected_version=0)]
    await store.append(batch)
    again = await store.append(batch)  # a client retrying after a lost response
    assert again[0].status == "duplicate"


async def test_a_conflicting_request_never_fails_its_neighbours_in_a_group(
    store: EventStore, dsn: str
) -> None:
    await store.append([event("e0", stream="s/1")])
    # Hold the log lock so the next appends queue up and are committed as one group.
    blocker = await asyncpg.connect(dsn)
    tx = blocker.transaction()
    await tx.start()
    await blocker.execute("SELECT pg_advisory_xact_lock($1)", EVENT_LOG_LOCK)
    try:
        first = asyncio.create_task(store.append([event("first")]))
        await asyncio.sleep(0.2)  # the writer is now waiting on the lock with `first`
        good = asyncio.create_task(store.append([event("good-1"), event("good-2")]))
        bad = asyncio.create_task(
            store.append([event("bad-1"), event("bad-2", stream="s/1", expected_version=5)])
        )
        also_good = asyncio.create_task(store.append([event("good-3")]))
        await asyncio.sleep(0.1)
        assert not first.done()
    finally:
        await tx.rollback()
        await blocker.close()
    await first
    with pytest.raises(ConcurrencyConflict):
        await bad
    assert [r.position for r in await good] == [3, 4]
    assert [r.position for r in await also_good] == [5]
    ids = [e.external_id for e in await store.read_after(0)]
    assert ids == ["e0", "first", "good-1", "good-2", "good-3"]
    assert (await verify_chain(store)).ok


async def test_a_request_the_database_refuses_fails_alone(store: EventStore) -> None:
    # Built without validation, as a buggy caller might: jsonb cannot hold \u0000.
    poison = NewEvent.model_construct(
        **event("poison").model_dump(exclude={"data"}), data={"note": "nul \x00 here"}
    )
    results = await asyncio.gather(
        store.append([event("a")]),
        store.append([event("b")]),
        store.append([poison]),
        store.append([event("c")]),
        return_exceptions=True,
    )
    assert isinstance(results[2], InvalidInput)
    assert sorted(e.external_id for e in await store.read_after(0)) == ["a", "b", "c"]
    assert (await verify_chain(store)).ok


async def test_concurrent_appends_are_group_committed(store: EventStore) -> None:
    results = await asyncio.gather(*(store.append([event(f"e{i}")]) for i in range(200)))
    positions = sorted(r[0].position for r in results)
    assert positions == list(range(1, 201))
    assert store.stats.groups < 50  # 200 requests, far fewer transactions
    assert store.stats.events_appended == 200


async def test_empty_batch_is_a_no_op(store: EventStore) -> None:
    assert await store.append([]) == []
    assert await store.head() == 0


async def test_notify_on_append(store: EventStore) -> None:
    async with store.notifications() as heads:
        await store.append([event("e1"), event("e2")])
        assert await asyncio.wait_for(heads.get(), timeout=5) == 2


async def test_payload_numbers_and_unicode_survive_and_verify(store: EventStore) -> None:
    data = {"rate": 1e20, "price": 1.5, "tiny": 1.5e-7, "big": 12345678901234567, "name": "Zoë ☕"}
    await store.append([event("e1", data=data, meta={"request_id": "r-1"})])
    stored = (await store.read_after(0))[0]
    assert stored.data["name"] == "Zoë ☕"
    assert stored.data["big"] == 12345678901234567
    assert stored.data["price"] == 1.5
    assert stored.meta == {"request_id": "r-1"}
    assert (await verify_chain(store)).ok


async def test_raw_bytes_kept_exactly(store: EventStore) -> None:
    raw = b'{"id": "evt_1",  "amount":1099}\n'
    await store.append([event("evt_1", raw=raw)])
    assert (await store.read_after(0))[0].raw == raw
    assert (await verify_chain(store)).ok


async def test_read_filters(store: EventStore) -> None:
    await store.append(
        [
            event("a1"),
            event("b1", source="shopify:acme", type="shopify.orders.paid"),
            event("a2", tenant="t2"),
        ]
    )
    assert [e.external_id for e in await store.read_after(0, source="shopify:acme")] == ["b1"]
    assert [e.external_id for e in await store.read_after(0, tenant="t2")] == ["a2"]
    assert [e.external_id for e in await store.read_after(0, type="stripe.charge.succeeded")] == [
        "a1",
        "a2",
    ]
    assert [e.external_id for e in await store.read_after(1, limit=1)] == ["b1"]


async def _wait_for(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Wait until ``check()`` holds, looking every 10 ms, for at most 30 s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while not await check():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


async def _as_one_group(
    store: EventStore, dsn: str, batches: list[list[NewEvent]]
) -> list[list[AppendResult] | BaseException]:
    """Append ``batches`` as concurrent requests that are certainly committed in one group: a
    blocker holds the log's lock until one writer waits on it with a lead request, and the
    other (``WRITERS``) with every batch, all queued before it took them."""
    assert WRITERS == 2
    blocker = await asyncpg.connect(dsn)
    tx = blocker.transaction()
    await tx.start()
    await blocker.execute("SELECT pg_advisory_xact_lock($1)", EVENT_LOG_LOCK)

    async def writers_wait(count: int) -> bool:
        waiting = await blocker.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        return waiting == count and not store._queue

    try:
        lead = asyncio.create_task(store.append([event("lead")]))
        await _wait_for(lambda: writers_wait(1), "the first writer to wait on the lock")
        # queued in one turn of the loop, before the second writer runs and takes them
        tasks = [asyncio.create_task(store.append(batch)) for batch in batches]
        await _wait_for(lambda: writers_wait(2), "the second writer to wait with every batch")
    finally:
        await tx.rollback()
        await blocker.close()
    await lead
    return list(await asyncio.gather(*tasks, return_exceptions=True))


def _unvalidated(**fields: Any) -> NewEvent:
    """An event built without validation, as a buggy caller might."""
    return NewEvent.model_construct(**{**event("poison").model_dump(), **fields})


@pytest.mark.parametrize(
    ("poison", "field"),
    [
        # the hash chain covers the UTC instant, which this time does not have
        (
            _unvalidated(occurred_at=datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14)))),
            "occurred_at",
        ),
        # orjson cannot write it; the API would have refused it with its path
        (_unvalidated(data={"n": 10**30}), "data"),
        # no UTF-8 for a lone surrogate: the driver fails the group's COPY
        (_unvalidated(external_id="poison-\udcff"), None),
        # nor for text only the hashed bytes hold: refused before the lock, naming it
        (_unvalidated(type="stripe.poison\udcff"), "type"),
    ],
    ids=[
        "time outside years 1-9999 in UTC",
        "integer beyond 64 bits",
        "not UTF-8",
        "not UTF-8 outside the keys",
    ],
)
async def test_a_request_the_log_cannot_hold_fails_alone_in_its_group(
    store: EventStore, dsn: str, poison: NewEvent, field: str | None
) -> None:
    outcomes = await _as_one_group(
        store,
        dsn,
        [[event("a")], [event("b1"), event("b2")], [event("c1"), poison], [event("d")]],
    )
    assert isinstance(outcomes[2], InvalidInput), outcomes[2]
    if field is not None:
        assert outcomes[2].errors[0]["index"] == 1
        assert outcomes[2].errors[0]["field"] == field
    assert [[r.external_id for r in o] for o in outcomes if isinstance(o, list)] == [
        ["a"],
        ["b1", "b2"],
        ["d"],
    ]
    stored = [e.external_id for e in await store.read_after(0)]
    assert sorted(stored) == ["a", "b1", "b2", "d", "lead"]  # nothing of the poisoned batch
    assert (await verify_chain(store)).ok
    assert store.stats.rejected == 1


async def test_a_key_too_long_for_the_index_is_the_requests_422_not_a_503(
    store: EventStore, dsn: str
) -> None:
    # valid by length in characters, but 4 bytes each in UTF-8 and hardly compressible: more
    # than a btree index entry can hold
    symbols = random.Random(13)

    def wide(length: int) -> str:
        return "".join(chr(symbols.randrange(0x1F300, 0x1FAFF)) for _ in range(length))

    too_long = event(wide(500), source=wide(200), tenant=wide(200))
    outcomes = await _as_one_group(store, dsn, [[event("a")], [too_long], [event("b")]])
    assert isinstance(outcomes[1], InvalidInput), outcomes[1]
    assert outcomes[1].errors[0]["field"] == "tenant, source, external_id"
    assert sorted(e.external_id for e in await store.read_after(0)) == ["a", "b", "lead"]
    assert (await verify_chain(store)).ok


async def test_a_stored_infinity_verifies_on_any_hosts_time_zone(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # asyncpg writes 0001-01-01T00:00:00Z as -infinity and reads it back as a naive
    # datetime.min; such rows (appended before NewEvent refused that instant) still verify.
    edge = _unvalidated(external_id="edge", occurred_at=datetime(1, 1, 1, tzinfo=UTC))
    await store.append([edge, event("after")])
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        report = await verify_chain(store)
    finally:
        monkeypatch.undo()
        time.tzset()
    assert report.ok, report.reason


TRUSTED = 10_000
"""The events ``ledgerhub.append_state`` wants its statistics gathered from before it plans
its lookups by them (migration 0024)."""


async def _analyze(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("ANALYZE ledgerhub.events")
    finally:
        await conn.close()


async def _fill(store: EventStore, count: int) -> None:
    for start in range(0, count, 500):
        await store.append([event(f"fill-{n}") for n in range(start, min(count, start + 500))])


@pytest.mark.parametrize("analyzed", [False, True], ids=["statistics untrusted", "trusted"])
async def test_keys_and_stream_versions_are_read_alike_whatever_the_statistics(
    store: EventStore, dsn: str, analyzed: bool
) -> None:
    """``ledgerhub.append_state`` reads the log one way while its statistics can be trusted
    and another until then; both find the same keys and the same versions."""
    await _fill(store, TRUSTED)
    await store.append(
        [event("a"), event("b", stream="orders/1"), event("c", stream="orders/1"), event("z")]
    )
    if analyzed:
        await _analyze(dsn)
    head = TRUSTED
    results = await store.append(
        [
            event("a"),
            event("d", stream="orders/1", expected_version=2),
            event("e", stream="orders/0", expected_version=0),
            event("z"),
            event("y", source="stripe:acct_other", stream="orders/1", expected_version=3),
        ]
    )
    assert [(r.status, r.position, r.stream_version) for r in results] == [
        ("duplicate", head + 1, 1),
        ("appended", head + 5, 3),
        ("appended", head + 6, 1),
        ("duplicate", head + 4, 1),
        ("appended", head + 7, 4),
    ]
    with pytest.raises(ConcurrencyConflict):
        await store.append([event("f", stream="orders/1", expected_version=3)])
    with pytest.raises(ConcurrencyConflict):
        await store.append([event("g", stream="orders/2", expected_version=1)])


@pytest.mark.parametrize(
    "statistics", ["never analyzed", "analyzed empty", "analyzed at one event", "analyzed"]
)
async def test_the_key_lookup_probes_the_idempotency_index_whatever_the_statistics(
    store: EventStore, dsn: str, statistics: str
) -> None:
    """An append looks its keys and its streams' versions up one probe of their own unique
    index each, however large the log and whatever PostgreSQL knows of it: a plain join of the
    keys with the log was planned as a scan of the whole log on a table never analyzed, and
    equality on the key's columns, on a log analyzed while empty or at one event, as a probe of
    ``events_tenant_position`` reading every event of the tenant per key. The query checked is
    the one ``ledgerhub.append_state`` runs in that state, as the database holds it."""
    if statistics == "analyzed at one event":
        await store.append([event("first")])
    if statistics in ("analyzed empty", "analyzed at one event"):
        await _analyze(dsn)
    await _fill(store, TRUSTED)
    if statistics == "analyzed":
        await _analyze(dsn)
    conn = await asyncpg.connect(dsn)
    tag = "trusted" if statistics == "analyzed" else "untrusted"
    try:
        keys = [event(f"fill-{n}").idempotency_key for n in range(0, TRUSTED, 200)]
        streams = [(tenant, f"{source}/{external_id}") for tenant, source, external_id in keys]
        # the query ledgerhub.append_state runs under the lock, as the database holds it
        body = await conn.fetchval(
            "SELECT prosrc FROM pg_proc WHERE oid = 'ledgerhub.append_state'::regproc"
        )
        head = re.search(r"\$head\$(.*)\$head\$", body, re.DOTALL)
        query = re.search(rf"\${tag}\$(.*)\${tag}\$", body, re.DOTALL)
        assert head is not None, body
        assert query is not None, body
        plan = await conn.fetchval(
            f"EXPLAIN (FORMAT JSON) {head.group(1)} {query.group(1)}",
            *(list(column) for column in zip(*keys, strict=True)),
            *(list(column) for column in zip(*streams, strict=True)),
        )
    finally:
        await conn.close()
    text = str(plan)
    assert "events_idempotency" in text
    assert "events_stream_version" in text
    assert "events_tenant_position" not in text
    assert "Seq Scan" not in text


async def test_appends_never_scan_the_log_after_it_was_analyzed_nearly_empty(
    store: EventStore, dsn: str
) -> None:
    """A session caches a generic plan for a statement after five runs. Cached while the log
    held two analyzed rows, the append's reads under the lock (head, keys, stream versions)
    were sequential scans, every key of every later group reading the whole log until
    autovacuum analyzed it again."""
    await store.append([event("first"), event("second")])
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("ANALYZE ledgerhub.events")
        before = await _scans_and_inserts(conn)
        own = await EventStore.open(dsn)
        try:
            for n in range(10):  # each plan cached now is made for a two-row log
                await own.append([event(f"one-{n}")])
            for n in range(6):
                await own.append([event(f"b{n}-{i}") for i in range(500)])
        finally:
            await own.close()
        written = before[1] + 10 + 6 * 500
        # a session's statistics reach the shared counters as it ends: wait for the rows
        after = await wait_until(
            lambda: _counted(conn, written), what="the appends' table statistics"
        )
    finally:
        await conn.close()
    assert after[0] == before[0], f"{after[0] - before[0]} sequential scans of the log"


@pytest.mark.parametrize("first", [0, 1], ids=["analyzed empty", "analyzed at one event"])
async def test_appends_probe_only_their_own_indexes_after_a_tiny_log_was_analyzed(
    dsn: str, first: int
) -> None:
    """Analyzed while empty, or at one event (every column then looks unique), the log's
    statistics mislead the planner; an import then came in at about 250-330 events/s
    (500-event batches from 8 clients) until autovacuum analyzed it again: the keys were looked
    up through ``events_tenant_position``, reading every event of the tenant per key. The
    append path never reads that index, whatever the statistics say."""
    conn = await asyncpg.connect(dsn)
    try:
        if first:
            async with await EventStore.open(dsn) as once:
                await once.append([event("first")])
        await conn.execute("ANALYZE ledgerhub.events")
        before = await _tenant_index_scans(conn)
        own = await EventStore.open(dsn)
        try:
            singles = iter([event(f"one-{n}")] for n in range(64))
            batches = iter([event(f"b{n}-{i}") for i in range(500)] for n in range(24))

            async def client(requests: Iterator[list[NewEvent]]) -> None:
                for request in requests:  # the clients share one iterator, as HTTP clients do
                    await own.append(request)

            await asyncio.gather(*(client(singles) for _ in range(8)))
            await asyncio.gather(*(client(batches) for _ in range(8)))
        finally:
            await own.close()
        written = first + 64 + 24 * 500
        after = await wait_until(
            lambda: _counted(conn, written), what="the appends' table statistics"
        )
        assert after[0] == 0, f"{after[0]} sequential scans of the log"
        assert await _tenant_index_scans(conn) == before
    finally:
        await conn.close()


async def _tenant_index_scans(conn: asyncpg.Connection) -> int:
    return int(
        await conn.fetchval(
            "SELECT idx_scan FROM pg_stat_user_indexes WHERE schemaname = 'ledgerhub' "
            "AND indexrelname = 'events_tenant_position'"
        )
    )


async def _scans_and_inserts(conn: asyncpg.Connection) -> tuple[int, int]:
    row = await conn.fetchrow(
        "SELECT seq_scan, n_tup_ins FROM pg_stat_user_tables "
        "WHERE schemaname = 'ledgerhub' AND relname = 'events'"
    )
    assert row is not None
    return row["seq_scan"], row["n_tup_ins"]


async def _counted(conn: asyncpg.Connection, written: int) -> tuple[int, int] | None:
    found = await _scans_and_inserts(conn)
    return found if found[1] >= written else None
