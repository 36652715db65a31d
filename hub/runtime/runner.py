"""Runs one projection partition while this process holds its lease: live batches, jobs, parked
retries.

A projection run as K partitions has K runners (in one worker or spread over several), one per
lease; partition p applies only its tenants' events (``hub.store.projections``, "Partitions").
K = 1 is one runner of partition 0, as before partitions existed.

Each step reads the projection's generations anew (one small query), so a partition learns at
once that another partition swapped in a rebuilt generation.

Changing K: K is a property of a generation. A runner whose K (``RuntimeSettings.partitions_of``)
differs from the active generation's treats it like a new ``version``: it queues a rebuild, live
batches of the old generation stop (readers keep its tables as they were), and the K partitions
build a new generation with the new K, swapped in once every one of them has caught up. Every
worker must be given the same K: while live workers disagree, none of them runs the projection
(``worker``), so a rolling change of K pauses it until the last worker of the old K is gone.

Rebuilds with partitions: the first runner to take the queued job creates the new generation
(the checkpoints of all its partitions, under the job's row lock); each partition then builds its
part, and the transaction of a partition that reaches the head swaps the new generation in if
every partition of it has reached the head, or the furthest checkpoint of the old one if that is
lower (``Batch.caught_up``), so no tenant's view goes back in time at the swap.

Replays with partitions: each partition re-applies its tenants' events in the range and records
its cursor; the job is done when every partition has (or the one partition the job names).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import asyncpg
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from hub import logs, telemetry
from hub.config import Config, reload
from hub.domain.events import RecordedEvent
from hub.domain.projections import Generation, Job, Lease
from hub.errors import ConfigError, LeaseLost, LedgerhubError, RetriableError, StoreUnavailable
from hub.runtime.behind import Behind
from hub.runtime.settings import RuntimeSettings
from hub.spi.projection import Context, Mode, Projection, wants
from hub.store.jobs import Jobs
from hub.store.parked import Parked
from hub.store.projections import Batch, ProjectionStore

log = logging.getLogger(__name__)

# The database connection itself failed (a handler's own OSError may be an outside system's).
# InternalClientError: what asyncpg raises for the next statement on a session the server has
# just ended, before it notices the socket closed (MagicStack/asyncpg#784; see hub.store.pool).
_CONNECTION_LOST = (
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,
    asyncpg.IdleInTransactionSessionTimeoutError,
)


_PREPARE_SLICE = 50
"""Events prepared between two turns of the event loop while reading ahead."""


def _retrieved(task: asyncio.Task[tuple[list[RecordedEvent], int]]) -> None:
    if not task.cancelled():
        task.exception()


@dataclass
class _ReadAhead:
    """The batch after ``after`` in ``(after, upto]`` of a generation of ``partitions``."""

    after: int
    upto: int
    partitions: int
    task: asyncio.Task[tuple[list[RecordedEvent], int]]


class _HandlerFailed(RetriableError):
    """Carries a handler's ``RetriableError`` through tenacity (which retries only these)."""


class Runner:
    """Applies one projection's events while ``lease`` holds; see ``run``."""

    def __init__(
        self,
        projection: type[Projection],
        lease: Lease,
        store: ProjectionStore,
        settings: RuntimeSettings,
        wake: asyncio.Event,
        config: Config,
        partitions: int = 1,
        behind: Behind | None = None,
    ) -> None:
        """``lease`` is of partition ``lease.partition`` of the ``partitions`` (K) this
        projection runs as; ``behind``: where this process's runners behind the head are,
        shared by them (when to read ahead and how far to run ahead: ``_read``)."""
        self.definition = projection
        self.partition = lease.partition
        self.partitions = partitions
        self.handler = projection()
        self.handler.configure(config)
        self.config = config
        self._rebuilt_with: int | None = None
        self.lease = lease
        self.store = store
        self.jobs = Jobs(store)
        self.parked = Parked(store)
        self.settings = settings
        self.wake = wake
        self._types = wants(projection)
        self._active: Generation | None = None
        self._batches: dict[int, int] = {}
        """Batches this runner applied per generation (when to refresh statistics)."""
        self._building: Generation | None = None
        self._idle_at: tuple[int, int] | None = None
        """(generation, head) at which this partition last found nothing to rebuild."""
        self._behind = Behind() if behind is None else behind
        self._paced = type(self.handler).prepare is not Projection.prepare
        """Whether this projection maps events (``prepare``), sharing the process's memo."""
        self._ahead: _ReadAhead | None = None
        """The next batch, being read (and prepared) while the current one is applied."""
        self._failures = 0
        self._error_shown = True
        """Whether the projection's ``last_error`` may be set: by this runner's own failures, or
        left by the runner that held the lease before (stopped mid-backoff when its lease lapsed
        in a database outage, or in a killed worker). The first good step clears it."""

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def where(self) -> str:
        """The projection (and partition, if there are several) for log lines."""
        if self.partitions == 1:
            return self.name
        return f"{self.name} partition {self.partition}/{self.partitions}"

    async def run(self) -> None:
        """Run until cancelled, or until ``LeaseLost``. Other errors: back off and go on."""
        logs.bind(projection=self.name)  # this runner's own task: its lines name it
        while True:
            try:
                await self._loop()
            except LeaseLost:
                raise
            except Exception as exc:
                self._failures += 1
                delay = min(self.settings.backoff_max, 0.05 * 2**self._failures)
                delay *= random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not cryptography
                log.warning("projection %s: %s; retrying in %.1fs", self.where, exc, delay)
                self._error_shown = True
                with contextlib.suppress(Exception):  # the database may still be away
                    await self.store.record_error(
                        self.name, f"{type(exc).__name__}: {exc}", self.partition
                    )
                await asyncio.sleep(delay)

    async def _loop(self) -> None:
        try:
            await self._work()
        finally:
            self._drop_ahead()
            self._behind.move((self.name, self.partition), None)

    async def _work(self) -> None:
        self._active = await self._prepare()
        while True:
            self.wake.clear()
            worked = await self._step()
            self._failures = 0
            if self._error_shown:
                await self.store.record_error(self.name, None, self.partition)
                self._error_shown = False
            if not worked:
                # NOTIFY (or an operator's request) sets `wake`; the timeout is the polling.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), self.settings.poll_interval)

    async def _prepare(self) -> Generation:
        active, _ = await self.store.generations(self.name, self.partition)
        if active is None:
            async with self.store.batch(self.lease) as batch:
                await batch.lock_projection()  # K runners start at once: one creates it
                active, _ = await batch.generations()
                if active is None:
                    active = await batch.create_generation(
                        self.definition.version,
                        self.definition.tables,
                        1,
                        active=True,
                        views=self.definition.views,
                        partitions=self.partitions,
                    )
        elif not self._outdated(active):
            # The analyst views of this code over the tables it built (after an upgrade whose
            # migration dropped them, or a fixed view); nothing to do if applied already.
            async with self.store.batch(self.lease) as batch:
                await batch.lock_projection()
                await batch.apply_views(active.generation, active.tables, self.definition.views)
        else:
            # enqueue answers the rebuild already open, if there is one
            log.warning(
                "projection %s: stored version %d with %d partition(s), code version %d with "
                "%d: rebuilding",
                self.where,
                active.version,
                active.partitions,
                self.definition.version,
                self.partitions,
            )
            await self.jobs.enqueue(self.name, "rebuild")
        return active

    async def _refresh(self) -> None:
        """Read this partition's checkpoints anew (another partition may have swapped)."""
        active, building = await self.store.generations(self.name, self.partition)
        assert active is not None, f"projection {self.name!r} lost its active generation"
        self._active, self._building = active, building

    async def _step(self) -> bool:
        await self._refresh()
        worked = await self._retry_parked()
        job = await self.jobs.next_open(self.name, self.partition)
        if job is not None:
            worked = await self._job_step(job) or worked
            if job.kind == "rebuild":
                await self._refresh()  # another partition may have swapped meanwhile
        return await self._live_step() or worked

    # ------------------------------------------------------------------ live

    async def _live_step(self) -> bool:
        active = self._current()
        if self._outdated():
            return False  # the old version's tables stay as they are until the swap
        head = await self.store.head()
        if active.position >= head:
            return False
        events, covered = await self._read(active.position, head, active.partitions)

        async def advance(batch: Batch) -> None:
            await batch.advance(active.generation, covered)

        await self._apply(events, active, "live", self.definition.side_effects, advance)
        self._active = active.model_copy(update={"position": covered})
        return True

    def _current(self) -> Generation:
        assert self._active is not None
        return self._active

    async def _read(
        self, after: int, upto: int, partitions: int
    ) -> tuple[list[RecordedEvent], int]:
        """This partition's next batch (of a generation of ``partitions``) in ``(after, upto]``.

        A runner whose projection prepares events first keeps up with the others of its
        process that do (``Behind.keep_up``: they share what each maps).

        A batch short of ``upto`` means more is waiting: if no other runner of this process is
        behind too (``Behind.only``), the batch after it is read, and prepared
        (``Projection.prepare``), while this one is applied. Read ahead in ``(covered, upto]``,
        it is used only by the next call asking for the batch after ``covered`` with an
        ``upto`` at least as far (the log only grows, so it is what that call would read, but
        for events committed since, which the call after picks up)."""
        unit = (self.name, self.partition)
        if self._paced:
            self._behind.move(unit, after, paced=True)
            await self._behind.keep_up(unit, after)
        ahead, self._ahead = self._ahead, None
        if ahead is not None and ahead.after == after and ahead.partitions == partitions:
            if ahead.upto <= upto:
                events, covered = await ahead.task
            else:
                ahead.task.cancel()
                events, covered = await self._fetch(after, upto, partitions)
        else:
            if ahead is not None:
                ahead.task.cancel()
            events, covered = await self._fetch(after, upto, partitions)
        self._behind.move(unit, covered if covered < upto else None, paced=self._paced)
        if covered < upto and self._behind.only(unit):
            task = asyncio.create_task(self._fetch(covered, upto, partitions, prepare=True))
            task.add_done_callback(_retrieved)  # a read-ahead dropped after failing is no news
            self._ahead = _ReadAhead(covered, upto, partitions, task)
        return events, covered

    async def _fetch(
        self, after: int, upto: int, partitions: int, *, prepare: bool = False
    ) -> tuple[list[RecordedEvent], int]:
        events, covered = await self.store.read(
            after,
            upto,
            types=self._types,
            limit=self.settings.batch_size,
            partition=self.partition,
            partitions=partitions,
        )
        if prepare:
            for start in range(0, len(events), _PREPARE_SLICE):
                await asyncio.sleep(0)  # let the batch being applied go first
                try:
                    self.handler.prepare(events[start : start + _PREPARE_SLICE])
                except Exception as exc:
                    log.debug("projection %s: prepare: %r", self.where, exc)
        return events, covered

    def _drop_ahead(self) -> None:
        if self._ahead is not None:
            self._ahead.task.cancel()
            self._ahead = None

    # ------------------------------------------------------------------ applying

    async def _apply(
        self,
        events: Sequence[RecordedEvent],
        generation: Generation,
        mode: Mode,
        sending: bool,
        finish: Callable[[Batch], Awaitable[None]],
    ) -> None:
        """Apply ``events`` to ``generation`` and ``finish`` (checkpoint) in one transaction."""
        with telemetry.tracer.start_as_current_span(
            f"project {self.name}",
            links=telemetry.links_from_metas(e.meta for e in events),
            attributes={
                "ledgerhub.projection": self.name,
                "ledgerhub.mode": mode,
                "ledgerhub.events": len(events),
                "ledgerhub.last_position": events[-1].position if events else 0,
            },
        ):
            async with self.store.batch(self.lease) as batch:
                ctx = Context(batch.conn, generation.tables, mode, sending)
                if events and await self._attempt(events, ctx) is not None:
                    # Something in the batch failed: find the event(s) at fault one by one.
                    for event in events:
                        error, attempts = await self._apply_one(event, ctx)
                        if error is not None:
                            log.warning(
                                "projection %s: parking event %d: %s",
                                self.where,
                                event.position,
                                error,
                            )
                            await batch.park(generation.generation, event, error, attempts)
                if len(events) >= self.settings.batch_size:
                    applied = self._batches[generation.generation] = (
                        self._batches.get(generation.generation, 0) + 1
                    )
                    if applied & (applied - 1) == 0:
                        # After this runner's 1st, 2nd, 4th, 8th … full batch of a generation:
                        # during a rebuild or a long catch-up its tables grow faster than
                        # autovacuum analyzes them, and a plan made for a nearly empty table (a
                        # scan of all of it) makes every batch slower than the one before.
                        # O(log n) analyzes in all. A runner keeping up reads short batches and
                        # leaves statistics to autovacuum: an ANALYZE holds its batch (and
                        # every event behind it) for tens of milliseconds.
                        await batch.analyze(generation.tables.values())
                await finish(batch)

    async def _attempt(self, events: Sequence[RecordedEvent], ctx: Context) -> Exception | None:
        """Run the handler (and ``send``) in a savepoint; the handler's exception, if any."""
        try:
            async with ctx.conn.transaction():
                await self.handler.handle(events, ctx)
                if ctx.sending:
                    await self.handler.send(events, ctx)
        except _CONNECTION_LOST as exc:
            raise StoreUnavailable(f"connection lost in projection {self.name}: {exc}") from exc
        except Exception as exc:
            if ctx.conn.is_closed():
                raise StoreUnavailable(f"connection lost in projection {self.name}") from exc
            return exc
        return None

    async def _apply_one(self, event: RecordedEvent, ctx: Context) -> tuple[Exception | None, int]:
        """Apply one event, retrying a ``RetriableError`` with backoff; (error, attempts)."""
        attempts = 0
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(_HandlerFailed),
            stop=stop_after_attempt(self.settings.retry_attempts),
            wait=wait_exponential(
                multiplier=self.settings.retry_wait, max=self.settings.lease_ttl / 2
            ),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    attempts += 1
                    error = await self._attempt([event], ctx)
                    if isinstance(error, RetriableError):
                        raise _HandlerFailed(str(error)) from error
                    if error is not None:
                        return error, attempts
        except _HandlerFailed as exc:
            cause = exc.__cause__
            assert isinstance(cause, Exception)
            return cause, attempts
        return None, attempts

    # ------------------------------------------------------------------ parked retries

    async def _retry_parked(self) -> bool:
        active = self._current()
        due = await self.parked.due(self.name, active.generation, self.partition)
        for parked in due:
            event = await self.store.read_one(parked.position)
            async with self.store.batch(self.lease) as batch:
                ctx = Context(batch.conn, active.tables, "retry", self.definition.side_effects)
                error, attempts = await self._apply_one(event, ctx)
                if error is None:
                    await batch.resolve_parked(parked.id)
                else:
                    await batch.park(active.generation, event, error, attempts)
        return bool(due)

    # ------------------------------------------------------------------ jobs

    async def _job_step(self, job: Job) -> bool:
        """Do a batch of ``job``; whether there was anything to do."""
        try:
            if job.kind == "replay":
                await self._replay_step(job)
            else:
                return await self._rebuild_step(job)
        except (LeaseLost, StoreUnavailable):
            raise
        except LedgerhubError as exc:
            log.warning("projection %s: job %d failed: %s", self.where, job.id, exc)
            async with self.store.batch(self.lease) as batch:
                job = await batch.lock_job(job)
                if not job.finished:
                    await batch.finish_job(job, f"{type(exc).__name__}: {exc}")
            if self._outdated():
                # Live waits for the new version's tables, which cannot be built: that is a
                # failing projection (backed off, retried, reported) until its code is fixed.
                raise ConfigError(
                    f"projection {self.name!r} version {self.definition.version} cannot be "
                    f"rebuilt: {exc}"
                ) from exc
        return True

    def _outdated(self, active: Generation | None = None) -> bool:
        """Whether the active tables were built by another version of the code, or run as
        another number of partitions."""
        active = active or self._current()
        return active.version != self.definition.version or active.partitions != self.partitions

    async def _replay_step(self, job: Job) -> None:
        assert job.from_position is not None
        assert job.to_position is not None
        start, end = job.from_position, job.to_position
        mine = await self.jobs.cursor(job, self.partition)
        cursor = start - 1 if mine is None else mine
        events, covered = await self._read(cursor, end, job.partitions)

        async def progress(batch: Batch) -> None:
            locked = await batch.lock_job(job)  # first: see Batch.lock_job
            if locked.state == "queued":
                await batch.start_job(locked, total=end - start + 1, generation=None)
            await batch.replay_progress(locked, cursor=covered)

        sending = job.send and self.definition.side_effects
        await self._apply(events, self._current(), "replay", sending, progress)

    def _reconfigure(self) -> None:
        """A rebuild reads the config file as it is now (after a mapping or setting changed),
        even in a worker started before the change; live events then use it too."""
        try:
            config = reload(self.config)
        except ConfigError as exc:  # `ledgerhub rebuild` refuses a broken file before this
            log.warning("projection %s: rebuilding with the config loaded at start: %s",
                        self.where, exc)  # fmt: skip
            return
        self.handler.configure(config)
        self.config = config

    async def _rebuild_step(self, job: Job) -> bool:
        """A batch of this partition's part of the rebuild; False when it has nothing to do
        (it has reached the head and waits for the other partitions, or new events)."""
        active = self._current()
        building = self._building
        if job.state == "queued" or building is None or building.generation != job.generation:
            await self._start_rebuild(job, active)
            return True
        if self.partition >= building.partitions:
            return False  # a generation of fewer partitions (workers configured with another K)
        head = await self.store.head()
        events, covered = await self._read(building.position, head, building.partitions)
        if not events and covered <= building.position:
            # Nothing new for this partition: try the swap once per head (the partition that
            # reaches the head last swaps; it sees the others' checkpoints after their commits).
            if self._idle_at == (building.generation, head):
                return False
            self._idle_at = (building.generation, head)
        reached_head = covered >= head
        built = building.model_copy(update={"position": covered})
        if building.generation != self._rebuilt_with:
            self._rebuilt_with = building.generation
            self._reconfigure()
        swapped = False

        async def progress(batch: Batch) -> None:
            nonlocal swapped
            locked = await batch.lock_job(job)  # first: see Batch.lock_job
            await batch.advance(built.generation, covered)
            if locked.state != "running" or locked.generation != built.generation:
                return  # swapped (or failed) by another partition meanwhile
            await batch.rebuild_progress(locked, built.generation, total=head)
            if reached_head and await batch.caught_up(active, built, head):
                await batch.swap(active, built, views=self.definition.views)
                await batch.finish_job(locked)
                swapped = True

        sending = job.send and self.definition.side_effects
        await self._apply(events, building, "rebuild", sending, progress)
        if swapped:
            log.info(
                "projection %s: rebuilt as generation %d (%d partition(s)) at position %d",
                self.where,
                built.generation,
                built.partitions,
                covered,
            )
            self._active = built.model_copy(update={"state": "active"})
        return True

    async def _start_rebuild(self, job: Job, active: Generation) -> None:
        """Create the generation ``job`` builds, with this runner's K, unless another partition's
        runner did so first (they queue on the job's row)."""
        head = await self.store.head()
        async with self.store.batch(self.lease) as batch:
            locked = await batch.lock_job(job)
            _, building = await batch.generations()
            if (
                locked.state == "running"
                and building is not None
                and building.generation == locked.generation
            ) or locked.finished:
                return
            building = await batch.create_generation(
                self.definition.version,
                self.definition.tables,
                active.generation + 1,
                active=False,
                partitions=self.partitions,
            )
            await batch.start_job(
                locked, total=head, generation=building.generation, partitions=self.partitions
            )
