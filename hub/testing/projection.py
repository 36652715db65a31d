"""``ProjectionContract``: what every projection keeps, run on "this projection class" by the
real runtime (a ``Worker`` in the test's event loop) on the test's own database.

Subclass it in a test module (the class name must start with ``Test``)::

    from hub.testing import ProjectionContract

    class TestSalesByDay(ProjectionContract):
        projection = SalesByDay

        def events(self):          # optional: the log to project (default: every installed
            return [NewEvent(...)]  # connector's sample events)

To run it on several projections, override the ``projection_class`` fixture (parametrized).

What it checks, and no more: the definition passes ``Projection.check()``; a worker creates its
tables and applies the events without parking any, up to the head of the log, leaving at least
one row (otherwise the events say nothing about it: give others); applying the same events again
(an operator's replay of the whole range) leaves the same read model, and so does a rebuild from
position 0 into fresh tables. "The same" compares every row of every table through its view,
except the columns named in ``volatile_columns`` (a time a row was written, say). Whether the
read model is *right* is for the projection's own tests.

The worker runs live, so a projection with side effects has ``send`` called: give it a
configuration (``config()``) that sends nowhere that matters. The tests use the plugin's ``dsn``
and ``store`` fixtures (a fresh migrated database each).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import asyncpg
import pytest

from hub.config import Config
from hub.domain.events import NewEvent
from hub.domain.projections import ProjectionStatus
from hub.runtime.operate import follow_job
from hub.runtime.settings import RuntimeSettings
from hub.runtime.worker import Worker
from hub.spi.projection import Projection
from hub.spi.registry import connectors
from hub.store import EventStore
from hub.store.jobs import Jobs
from hub.store.projections import ProjectionStore

SETTINGS = RuntimeSettings(
    lease_ttl=1, poll_interval=0.2, retry_attempts=2, retry_wait=0.01, backoff_max=0.5
)
"""Short leases and polls, so a test's worker starts and catches up quickly."""

Snapshot = dict[str, list[tuple[tuple[str, Any], ...]]]
"""Every table's rows (column, value pairs), in a stable order."""


def sample_events() -> list[NewEvent]:
    """The sample events every installed connector ships, as a log to project."""
    found: list[NewEvent] = []
    for _, connector in sorted(connectors().items()):
        mapper = connector.mapper
        for sample in mapper.samples() if mapper is not None else []:
            found.append(
                NewEvent(
                    source=sample.source,
                    external_id=sample.external_id,
                    type=sample.type,
                    occurred_at=sample.occurred_at,
                    data=dict(sample.data),
                )
            )
    return found


class ProjectionContract:
    """The projection contract suite: subclass with ``projection = YourProjection``."""

    projection: ClassVar[type[Projection]]
    """The projection class under test."""
    volatile_columns: ClassVar[frozenset[str]] = frozenset()
    """Columns whose values may differ between two applications of the same events."""
    within: ClassVar[float] = 60.0
    """Seconds to wait for the worker to catch up or finish a job before failing."""

    def events(self) -> Sequence[NewEvent]:
        """The log the projection is run over (default: every installed connector's samples)."""
        return sample_events()

    def config(self, tmp_path: Path) -> Config:
        """The configuration the worker hands the projection (default: every default)."""
        return Config()

    @pytest.fixture
    def projection_class(self) -> type[Projection]:
        """The projection under test: ``projection``. Override this fixture (parametrized) to
        run the suite on several projections."""
        found = getattr(type(self), "projection", None)
        if not (isinstance(found, type) and issubclass(found, Projection)):
            pytest.fail(f"{type(self).__qualname__}: set projection = <your Projection subclass>")
        return found

    # ------------------------------------------------------------------ helpers

    @contextlib.asynccontextmanager
    async def running(
        self, dsn: str, projection: type[Projection], tmp_path: Path
    ) -> AsyncIterator[ProjectionStore]:
        """A worker for ``projection`` in this event loop while the block runs; yields the
        runtime's store on the same database (for status and jobs)."""
        async with await ProjectionStore.open(dsn, lease_ttl=SETTINGS.lease_ttl) as store:
            worker = Worker(dsn, [projection], SETTINGS, config=self.config(tmp_path))
            task = asyncio.create_task(worker.run(), name=f"contract-{projection.name}")
            try:
                yield store
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def caught_up(self, store: ProjectionStore, projection: type[Projection]) -> None:
        """Wait until ``projection``'s checkpoint is the head of the log."""
        deadline = asyncio.get_running_loop().time() + self.within
        status: ProjectionStatus | None = None
        while True:
            status = next((s for s in await store.status() if s.name == projection.name), None)
            if status is not None and status.head > 0 and status.position == status.head:
                return
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(
                    f"{projection.name} did not catch up within {self.within}s: {status}"
                )
            await asyncio.sleep(0.05)

    async def parked(self, store: ProjectionStore, projection: type[Projection]) -> int:
        """How many events ``projection`` has parked."""
        status = next((s for s in await store.status() if s.name == projection.name), None)
        return 0 if status is None else status.parked

    async def snapshot(self, dsn: str, projection: type[Projection]) -> Snapshot:
        """Every row of every table of ``projection`` (read through its views)."""
        conn = await asyncpg.connect(dsn)
        try:
            found: Snapshot = {}
            for table in sorted(projection.tables):
                rows = await conn.fetch(f"SELECT * FROM {projection.view(table)}")
                found[table] = sorted(
                    (
                        tuple((k, v) for k, v in row.items() if k not in self.volatile_columns)
                        for row in rows
                    ),
                    key=repr,
                )
            return found
        finally:
            await conn.close()

    async def project(self, store: EventStore, projection: type[Projection]) -> int:
        """Append ``events()`` to the log; the head of the log."""
        events = list(self.events())
        assert events, "events() gave no events to project"
        wanted = projection.event_types
        assert wanted is None or any(e.type in wanted for e in events), (
            f"none of the events is of a type {projection.name} wants: override events()"
        )
        await store.append(events)
        return await store.head()

    async def settled(
        self, dsn: str, store: ProjectionStore, projection: type[Projection]
    ) -> Snapshot:
        """Wait for the worker to catch up; the read model then, checked to be non-empty and
        free of parked events."""
        await self.caught_up(store, projection)
        assert await self.parked(store, projection) == 0, f"{projection.name} parked events"
        model = await self.snapshot(dsn, projection)
        assert any(model.values()), (
            f"{projection.name} recorded nothing for these events: override events()"
        )
        return model

    async def job(self, store: ProjectionStore, projection: type[Projection], **job: Any) -> None:
        """Queue an operator's job for ``projection`` and wait until it is done."""
        queued = await Jobs(store).enqueue(projection.name, **job)
        finished = await asyncio.wait_for(follow_job(store, queued.id, poll=0.05), self.within)
        assert finished.state == "done", f"{job}: {finished}"

    # ------------------------------------------------------------------ the suite

    def test_the_definition_passes_check(self, projection_class: type[Projection]) -> None:
        projection_class.check()

    @pytest.mark.asyncio
    async def test_a_worker_creates_its_tables_and_applies_the_events(
        self, projection_class: type[Projection], dsn: str, store: EventStore, tmp_path: Path
    ) -> None:
        if not projection_class.tables:
            pytest.skip(f"{projection_class.name} has no tables")
        head = await self.project(store, projection_class)
        async with self.running(dsn, projection_class, tmp_path) as runtime:
            model = await self.settled(dsn, runtime, projection_class)
            assert set(model) == set(projection_class.tables)
            status = next(s for s in await runtime.status() if s.name == projection_class.name)
            assert status.position == head
            assert status.version == projection_class.version

    @pytest.mark.asyncio
    async def test_applying_the_same_events_again_leaves_the_same_read_model(
        self, projection_class: type[Projection], dsn: str, store: EventStore, tmp_path: Path
    ) -> None:
        if not projection_class.tables:
            pytest.skip(f"{projection_class.name} has no tables")
        head = await self.project(store, projection_class)
        async with self.running(dsn, projection_class, tmp_path) as runtime:
            before = await self.settled(dsn, runtime, projection_class)
            await self.job(
                runtime, projection_class, kind="replay", from_position=1, to_position=head
            )
            assert await self.snapshot(dsn, projection_class) == before

    @pytest.mark.asyncio
    async def test_a_rebuild_from_scratch_gives_the_same_read_model(
        self, projection_class: type[Projection], dsn: str, store: EventStore, tmp_path: Path
    ) -> None:
        if not projection_class.tables:
            pytest.skip(f"{projection_class.name} has no tables")
        await self.project(store, projection_class)
        async with self.running(dsn, projection_class, tmp_path) as runtime:
            before = await self.settled(dsn, runtime, projection_class)
            await self.job(runtime, projection_class, kind="rebuild")
            assert await self.snapshot(dsn, projection_class) == before
