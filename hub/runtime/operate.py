"""What operators do to projections, shared by the CLI and the HTTP API.

Replays, rebuilds and parked retries are carried out by the workers that hold the projection's
leases, one per partition (so they never race the live runners); these helpers queue them and
follow them. A command line run while some partition has no worker runs a worker for that
projection itself meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from hub.domain.projections import Job, ParkedEvent
from hub.errors import ConfigError
from hub.runtime.settings import RuntimeSettings
from hub.runtime.worker import Worker
from hub.spi.registry import discover
from hub.store.jobs import Jobs
from hub.store.leases import Leases
from hub.store.parked import Parked
from hub.store.projections import ProjectionStore

log = logging.getLogger(__name__)


async def follow_job(
    store: ProjectionStore,
    job_id: int,
    on_progress: Callable[[int, int], None] | None = None,
    *,
    poll: float = 0.3,
) -> Job:
    """Wait until job ``job_id`` is done or failed, reporting ``(done, total)`` as it moves."""
    jobs = Jobs(store)
    while True:
        job = await jobs.get(job_id)
        if on_progress is not None and job.state != "queued":
            on_progress(job.done, job.total)
        if job.finished:
            return job
        await asyncio.sleep(poll)


async def follow_parked(
    store: ProjectionStore, parked_id: int, *, poll: float = 0.3
) -> ParkedEvent:
    """Wait until a parked event's retry has been tried (its status is no longer ``retry``)."""
    parked = Parked(store)
    while True:
        event = await parked.get(parked_id)
        if event.status != "retry":
            return event
        await asyncio.sleep(poll)


@contextlib.asynccontextmanager
async def worker_for(
    dsn: str, store: ProjectionStore, projection: str, settings: RuntimeSettings | None = None
) -> AsyncIterator[str]:
    """Make sure some worker runs ``projection`` while the body runs; yield who does.

    If workers hold the leases of every partition of its active generation, nothing is started.
    Otherwise this process runs a worker for that projection (it must be installed here),
    which takes the free partitions, and stops it afterwards.
    """
    settings = settings or RuntimeSettings.from_env()
    partitions = await store.partition_count(projection)
    holders = await Leases(store, "", settings.lease_ttl).live_holders(projection, partitions)
    if len(holders) == partitions:
        yield ", ".join(sorted(set(holders.values())))
        return
    definition = discover(names=[projection]).get(projection)
    if definition is None:
        raise ConfigError(
            f"no worker runs projection {projection!r} and it is not installed here: "
            "start `ledgerhub worker`"
        )
    worker = Worker(dsn, [definition], settings)
    task = asyncio.create_task(worker.run(), name="ledgerhub-cli-worker")
    try:
        yield worker.holder
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
