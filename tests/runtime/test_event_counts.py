"""The built-in ``event_counts`` projection: correct, and idempotent under replay and rebuild."""

from __future__ import annotations

import asyncio

from hub.runtime.operate import follow_job
from hub.store import EventStore
from hub.store.jobs import Jobs
from hub.store.projections import ProjectionStore
from projections.event_counts import EventCounts
from tests.factories import event
from tests.runtime.harness import ReadModel, running, wait_until

VIEW = EventCounts.view("counts")


async def _counts(model: ReadModel) -> dict[tuple[str, str], int]:
    rows = await model.conn.fetch(f"SELECT source, type, events FROM {VIEW}")
    return {(r["source"], r["type"]): r["events"] for r in rows}


async def test_event_counts_counts_and_stays_the_same_after_replay_and_rebuild(
    dsn: str, store: EventStore, projections: ProjectionStore, model: ReadModel
) -> None:
    kinds = ("stripe.charge.succeeded", "stripe.refund.created", "bank.line")
    await store.append([event(f"c{i}", source=f"s:{i % 2}", type=kinds[i % 3]) for i in range(30)])
    expected = {(f"s:{s}", kinds[k]): 5 for s in range(2) for k in range(3)}
    jobs = Jobs(projections)
    async with running(dsn, EventCounts):
        await wait_until(lambda: model.caught_up("event_counts"), what="event_counts")
        assert await _counts(model) == expected
        for job in (
            await jobs.enqueue("event_counts", "replay", from_position=1, to_position=30),
            await jobs.enqueue("event_counts", "replay", from_position=7, to_position=19),
            await jobs.enqueue("event_counts", "rebuild"),
        ):
            assert (await asyncio.wait_for(follow_job(projections, job.id), 30)).state == "done"
            assert await _counts(model) == expected, f"after {job.kind}"
        await store.append([event("late", source="s:0", type="bank.line")])
        await wait_until(lambda: model.caught_up("event_counts"), what="the late event")
    assert (await _counts(model))[("s:0", "bank.line")] == 6
