"""Stopping a worker: SIGTERM ends it cleanly (exit 0, not the deadline's exit 1) and the next
worker takes over."""

from __future__ import annotations

import signal

from hub.store import EventStore
from tests.runtime.harness import ReadModel, Workers, pid_of, wait_until
from tests.runtime.test_failover import _types


async def test_sigterm_exits_cleanly_and_the_next_worker_takes_over(
    store: EventStore, workers: Workers, model: ReadModel
) -> None:
    await store.append(_types(5))
    first = workers.start()
    holder = await wait_until(model.holder, what="the first worker to take the lease")
    assert pid_of(holder) == first.pid
    second = workers.start()
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=10) == 0, workers.logs()

    async def second_holds() -> bool:
        holder = await model.holder()
        return holder is not None and pid_of(holder) == second.pid

    await wait_until(second_holds, what="the second worker to take over", within=20)
