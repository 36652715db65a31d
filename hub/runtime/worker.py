"""A worker: holds leases on some projections and runs each of them (``Runner``).

Any number of workers (``ledgerhub worker`` processes, and the one inside ``ledgerhub serve``)
share the projections. Every ``lease_ttl / 3`` each worker records that it is alive, renews its
leases, and takes free or expired ones up to its fair share (projections ÷ live workers, rounded
up), giving one back when it holds more than that, so load spreads as workers come and go.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import socket
import uuid
from collections.abc import Sequence

from hub.config import Config, Settings, load
from hub.domain.projections import Lease
from hub.errors import FatalError, LedgerhubError
from hub.runtime.runner import Runner
from hub.runtime.settings import RuntimeSettings
from hub.spi.projection import Projection
from hub.store.events import NOTIFY_CHANNEL
from hub.store.leases import Leases
from hub.store.pool import Connection
from hub.store.projections import ProjectionStore

log = logging.getLogger(__name__)


def new_holder_id() -> str:
    """A name for this worker that says where it runs: ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Worker:
    """Runs its share of ``projections`` against the database at ``dsn`` until cancelled."""

    def __init__(
        self,
        dsn: str,
        projections: Sequence[type[Projection]],
        settings: RuntimeSettings | None = None,
        *,
        holder: str | None = None,
        config: Config | None = None,
    ) -> None:
        """``config`` is handed to every projection (``Projection.configure``); None: read from
        the environment's ``LEDGERHUB_CONFIG`` when the first projection starts."""
        self.dsn = dsn
        self._config = config
        self.projections = {p.name: p for p in projections}
        self.settings = settings or RuntimeSettings.from_env()
        self.holder = holder or new_holder_id()
        self._runners: dict[str, tuple[Runner, asyncio.Task[None]]] = {}
        self._wakes = {name: asyncio.Event() for name in self.projections}

    @property
    def config(self) -> Config:
        """The configuration this worker hands its projections (read from the environment's
        ``LEDGERHUB_CONFIG`` on first use when none was given)."""
        if self._config is None:
            self._config = load(Settings.from_env())
        return self._config

    @property
    def running(self) -> list[str]:
        """The projections this worker runs right now."""
        return sorted(self._runners)

    async def run(self) -> None:
        """Work until cancelled; then stop the runners and give the leases back."""
        store = await self._open()
        leases = Leases(store, self.holder, self.settings.lease_ttl)
        listener = (
            asyncio.create_task(self._listen(store), name="ledgerhub-listen")
            if self.settings.notify
            else None
        )
        try:
            while True:
                try:
                    await self._tick(store, leases)
                except LedgerhubError as exc:
                    log.warning("worker %s: %s", self.holder, exc)
                except Exception as exc:
                    # Not one of ours (a driver's error the store did not translate, or a
                    # bug): the worker outlives it, as each runner outlives its handler's
                    # errors. Were it to end here, `serve` would go on answering while no
                    # projection ever moved again; if it persists, the leases lapse instead.
                    log.warning("worker %s: %r (next round)", self.holder, exc, exc_info=exc)
                await asyncio.sleep(self.settings.renew_interval)
        finally:
            if listener is not None:
                listener.cancel()
            held = await self._stop_runners(list(self._runners))
            with contextlib.suppress(LedgerhubError):
                await leases.release(held)
                await leases.leave()
            await store.close()

    async def _open(self) -> ProjectionStore:
        delay = 0.1
        while True:
            store: ProjectionStore | None = None
            try:
                store = await ProjectionStore.open(
                    self.dsn,
                    max_connections=len(self.projections) + 3,
                    lease_ttl=self.settings.lease_ttl,
                )
                for projection in self.projections.values():
                    await store.register(projection.name, side_effects=projection.side_effects)
                return store
            except Exception as exc:  # the database away, or an error the store let through
                if store is not None:
                    store.pool.terminate()  # the next attempt opens its own
                if isinstance(exc, FatalError):
                    raise  # e.g. the schema needs `ledgerhub migrate`: an operator must act
                log.warning("worker %s: cannot start yet: %s", self.holder, exc)
            await asyncio.sleep(delay)
            delay = min(self.settings.backoff_max, delay * 2)

    async def _tick(self, store: ProjectionStore, leases: Leases) -> None:
        live = await leases.heartbeat()
        for name, (_, task) in list(self._runners.items()):
            if task.done():
                del self._runners[name]
                if not task.cancelled() and task.exception() is not None:
                    log.warning("projection %s stopped: %s", name, task.exception())
        still = await leases.renew([runner.lease for runner, _ in self._runners.values()])
        lost = [name for name in self._runners if name not in still]
        if lost:
            log.warning("worker %s lost the lease of %s", self.holder, ", ".join(lost))
            await self._stop_runners(lost)
        share = math.ceil(len(self.projections) / max(live, 1))
        if len(self._runners) > share:
            extra = sorted(self._runners)[-1]
            await leases.release(await self._stop_runners([extra]))
            return
        for name, projection in self.projections.items():
            if len(self._runners) >= share:
                break
            if name in self._runners:
                continue
            lease = await leases.acquire(name)
            if lease is not None:
                self._start(projection, lease, store)

    def _start(self, projection: type[Projection], lease: Lease, store: ProjectionStore) -> None:
        log.info("worker %s runs %s (lease token %d)", self.holder, projection.name, lease.token)
        runner = Runner(
            projection, lease, store, self.settings, self._wakes[projection.name], self.config
        )
        task = asyncio.create_task(runner.run(), name=f"ledgerhub-projection-{projection.name}")
        self._runners[projection.name] = (runner, task)

    async def _stop_runners(self, names: list[str]) -> list[Lease]:
        stopped = [self._runners.pop(name) for name in names if name in self._runners]
        for _, task in stopped:
            task.cancel()
        for _, task in stopped:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        return [runner.lease for runner, _ in stopped]

    def _notified(self, channel: str, payload: str) -> None:
        if channel == NOTIFY_CHANNEL:
            for wake in self._wakes.values():
                wake.set()
        elif payload in self._wakes:
            self._wakes[payload].set()

    async def _listen(self, store: ProjectionStore) -> None:
        """Keep a LISTEN connection open; polling covers the moments it is down."""
        while True:
            try:
                async with store.listen(self._notified) as conn:
                    await _until_closed(conn)
            except Exception as exc:  # whatever it was, listen again (nothing awaits this task)
                log.warning("worker %s: LISTEN failed (polling meanwhile): %s", self.holder, exc)
            await asyncio.sleep(self.settings.renew_interval)


async def _until_closed(conn: Connection) -> None:
    closed = asyncio.Event()
    conn.add_termination_listener(lambda _conn: closed.set())
    await closed.wait()
