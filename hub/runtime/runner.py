"""Runs one projection while this process holds its lease: live batches, jobs, parked retries."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Sequence

import asyncpg
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from hub import telemetry
from hub.config import Config, reload
from hub.domain.events import RecordedEvent
from hub.domain.projections import Generation, Job, Lease
from hub.errors import ConfigError, LeaseLost, LedgerhubError, RetriableError, StoreUnavailable
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
    ) -> None:
        self.definition = projection
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
        self._failures = 0
        self._error_shown = True
        """Whether the projection's ``last_error`` may be set: by this runner's own failures, or
        left by the runner that held the lease before (stopped mid-backoff when its lease lapsed
        in a database outage, or in a killed worker). The first good step clears it."""

    @property
    def name(self) -> str:
        return self.definition.name

    async def run(self) -> None:
        """Run until cancelled, or until ``LeaseLost``. Other errors: back off and go on."""
        while True:
            try:
                await self._loop()
            except LeaseLost:
                raise
            except Exception as exc:
                self._failures += 1
                delay = min(self.settings.backoff_max, 0.05 * 2**self._failures)
                delay *= random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not cryptography
                log.warning("projection %s: %s; retrying in %.1fs", self.name, exc, delay)
                self._error_shown = True
                with contextlib.suppress(Exception):  # the database may still be away
                    await self.store.record_error(self.name, f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(delay)

    async def _loop(self) -> None:
        self._active = await self._prepare()
        while True:
            self.wake.clear()
            worked = await self._step()
            self._failures = 0
            if self._error_shown:
                await self.store.record_error(self.name, None)
                self._error_shown = False
            if not worked:
                # NOTIFY (or an operator's request) sets `wake`; the timeout is the polling.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), self.settings.poll_interval)

    async def _prepare(self) -> Generation:
        active, _ = await self.store.generations(self.name)
        if active is None:
            async with self.store.batch(self.lease) as batch:
                active = await batch.create_generation(
                    self.definition.version,
                    self.definition.tables,
                    1,
                    active=True,
                    views=self.definition.views,
                )
        elif active.version == self.definition.version:
            # The analyst views of this code over the tables it built (after an upgrade whose
            # migration dropped them, or a fixed view); nothing to do if applied already.
            async with self.store.batch(self.lease) as batch:
                await batch.apply_views(active.generation, active.tables, self.definition.views)
        else:
            # enqueue answers the rebuild already open, if there is one
            log.warning(
                "projection %s: stored version %d, code version %d: rebuilding",
                self.name,
                active.version,
                self.definition.version,
            )
            await self.jobs.enqueue(self.name, "rebuild")
        return active

    async def _step(self) -> bool:
        worked = await self._retry_parked()
        job = await self.jobs.next_open(self.name)
        if job is not None:
            worked = await self._job_step(job) or worked
        return await self._live_step() or worked

    # ------------------------------------------------------------------ live

    async def _live_step(self) -> bool:
        active = self._current()
        if self._outdated():
            return False  # the old version's tables stay as they are until the swap
        head = await self.store.head()
        if active.position >= head:
            return False
        events, covered = await self.store.read(
            active.position, head, types=self._types, limit=self.settings.batch_size
        )

        async def advance(batch: Batch) -> None:
            await batch.advance(active.generation, covered)

        await self._apply(events, active, "live", self.definition.side_effects, advance)
        self._active = active.model_copy(update={"position": covered})
        return True

    def _current(self) -> Generation:
        assert self._active is not None
        return self._active

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
                                self.name,
                                event.position,
                                error,
                            )
                            await batch.park(generation.generation, event, error, attempts)
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
        due = await self.parked.due(self.name, active.generation)
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
        try:
            if job.kind == "replay":
                await self._replay_step(job)
            else:
                await self._rebuild_step(job)
        except (LeaseLost, StoreUnavailable):
            raise
        except LedgerhubError as exc:
            log.warning("projection %s: job %d failed: %s", self.name, job.id, exc)
            async with self.store.batch(self.lease) as batch:
                await batch.finish_job(job, f"{type(exc).__name__}: {exc}")
            if self._outdated():
                # Live waits for the new version's tables, which cannot be built: that is a
                # failing projection (backed off, retried, reported) until its code is fixed.
                raise ConfigError(
                    f"projection {self.name!r} version {self.definition.version} cannot be "
                    f"rebuilt: {exc}"
                ) from exc
        return True

    def _outdated(self) -> bool:
        """Whether the active tables were built by another version of the code."""
        return self._current().version != self.definition.version

    async def _replay_step(self, job: Job) -> None:
        assert job.from_position is not None
        assert job.to_position is not None
        start, end = job.from_position, job.to_position
        cursor = job.cursor if job.state == "running" else start - 1
        events, covered = await self.store.read(
            cursor, end, types=self._types, limit=self.settings.batch_size
        )

        async def progress(batch: Batch) -> None:
            if job.state == "queued":
                await batch.start_job(job, total=end - start + 1, generation=None)
            await batch.job_progress(
                job, cursor=covered, done=covered - start + 1, total=end - start + 1
            )
            if covered >= end:
                await batch.finish_job(job)

        sending = job.send and self.definition.side_effects
        await self._apply(events, self._current(), "replay", sending, progress)

    def _reconfigure(self) -> None:
        """A rebuild reads the config file as it is now (after a mapping or setting changed),
        even in a worker started before the change; live events then use it too."""
        try:
            config = reload(self.config)
        except ConfigError as exc:  # `ledgerhub rebuild` refuses a broken file before this
            log.warning("projection %s: rebuilding with the config loaded at start: %s",
                        self.name, exc)  # fmt: skip
            return
        self.handler.configure(config)
        self.config = config

    async def _rebuild_step(self, job: Job) -> None:
        active = self._current()
        _, building = await self.store.generations(self.name)
        if job.state == "queued" or building is None or building.generation != job.generation:
            head = await self.store.head()
            async with self.store.batch(self.lease) as batch:
                building = await batch.create_generation(
                    self.definition.version,
                    self.definition.tables,
                    active.generation + 1,
                    active=False,
                )
                await batch.start_job(job, total=head, generation=building.generation)
            return
        head = await self.store.head()
        events, covered = await self.store.read(
            building.position, head, types=self._types, limit=self.settings.batch_size
        )
        caught_up = covered >= head and covered >= active.position
        built = building.model_copy(update={"position": covered})
        if building.generation != self._rebuilt_with:
            self._rebuilt_with = building.generation
            self._reconfigure()

        async def progress(batch: Batch) -> None:
            await batch.advance(built.generation, covered)
            await batch.job_progress(job, cursor=covered, done=covered, total=head)
            if caught_up:
                await batch.swap(active, built, views=self.definition.views)
                await batch.finish_job(job)

        sending = job.send and self.definition.side_effects
        await self._apply(events, building, "rebuild", sending, progress)
        if caught_up:
            log.info(
                "projection %s: rebuilt as generation %d at position %d",
                self.name,
                built.generation,
                covered,
            )
            self._active = built.model_copy(update={"state": "active"})
