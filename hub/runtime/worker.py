"""A worker: holds leases on some projection partitions and runs each of them (``Runner``).

Any number of workers (``ledgerhub worker`` processes, and the one inside ``ledgerhub serve``)
share the projections. A projection run as K partitions (``RuntimeSettings.partitions_of``) is
K units of work, each with its own lease; K = 1 is one unit, as before partitions existed.
Every ``lease_ttl / 3`` each worker records that it is alive (and which projections it runs),
renews its leases, and takes free or expired ones up to its fair share (units ÷ live workers,
rounded up), giving one back per round when it holds more than that, so load spreads as workers
come and go: a worker alone takes every partition, and hands them out one a round as others
appear. Rounding up alone could leave a worker idle (4 partitions, 3 workers: 2 + 2 + 0), so a
worker also gives back a partition of a projection when it holds more than its even part of it
(K ÷ the live workers that run it, rounded down) while another worker that runs it holds less.
A partition given back is not taken again by the same worker for two rounds, so the worker it
was meant for gets it. Workers seek free leases starting at an offset of their own (a hash of
their name), so workers that start together try different partitions first.

Workers must agree on each projection's K. A worker that finds another live worker running a
projection as another number of partitions stops running it and logs an error naming both
(each of them does), so the projection waits, and shows as ``stopped``, until only workers of
one K are left: they then run it (rebuilding it if its K changed, see ``runner``). Without
this, workers of two Ks would rebuild it back and forth.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import socket
import uuid
import zlib
from collections.abc import Sequence

from hub.config import Config, Settings, load
from hub.domain.projections import Lease
from hub.errors import FatalError, LedgerhubError
from hub.runtime.behind import Behind
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
        self.partitions = {p.name: self.settings.partitions_of(p) for p in projections}
        """Projection -> the K it runs as here."""
        units = [(name, part) for name, k in self.partitions.items() for part in range(k)]
        offset = zlib.crc32(self.holder.encode()) % max(len(units), 1)
        self.units: list[tuple[str, int]] = units[offset:] + units[:offset]
        """Every (projection, partition) this worker may run, in the order it seeks them."""
        self._runners: dict[tuple[str, int], tuple[Runner, asyncio.Task[None]]] = {}
        self._wakes = {unit: asyncio.Event() for unit in self.units}
        self._behind = Behind()
        """Where the runners behind the head are (``Runner._read``: whether to read ahead, how
        far to run ahead of the others)."""
        self._given_back: dict[tuple[str, int], float] = {}
        """Partitions given back -> until when this worker leaves them to others."""
        self._disputed: dict[str, tuple[str, int]] = {}
        """Projections another live worker runs with another K -> (that worker, its K)."""

    @property
    def config(self) -> Config:
        """The configuration this worker hands its projections (read from the environment's
        ``LEDGERHUB_CONFIG`` on first use when none was given)."""
        if self._config is None:
            self._config = load(Settings.from_env())
        return self._config

    @property
    def running(self) -> list[str]:
        """The projections this worker runs (some partition of) right now."""
        return sorted({name for name, _ in self._runners})

    @property
    def disputed(self) -> dict[str, tuple[str, int]]:
        """The projections this worker leaves alone because another live worker runs them
        with another K -> (that worker, its K)."""
        return dict(self._disputed)

    @property
    def running_partitions(self) -> list[tuple[str, int]]:
        """The (projection, partition) pairs this worker runs right now."""
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
                    max_connections=2 * len(self.units) + 3,  # a batch and a read-ahead each
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
        live = await leases.heartbeat(self.partitions)
        await self._agree(leases)
        for unit, (_, task) in list(self._runners.items()):
            if task.done():
                del self._runners[unit]
                if not task.cancelled() and task.exception() is not None:
                    log.warning("projection %s stopped: %s", self._unit(unit), task.exception())
        still = await leases.renew([runner.lease for runner, _ in self._runners.values()])
        lost = [unit for unit in self._runners if unit not in still]
        if lost:
            log.warning(
                "worker %s lost the lease of %s", self.holder, ", ".join(map(self._unit, lost))
            )
            await self._stop_runners(lost)
        share = fair_share(len(self.units), live)
        if len(self._runners) > share:
            await self._give_back(leases, sorted(self._runners)[-1])
            return
        split = {n: k for n, k in self.partitions.items() if k > 1 and n not in self._disputed}
        if split:
            holdings = await leases.holdings(split)
            for name in split:
                surplus = self._surplus(name, holdings[name])
                if surplus is not None:
                    await self._give_back(leases, surplus)
                    return
        now = asyncio.get_running_loop().time()
        for unit in self.units:
            if len(self._runners) >= share:
                break
            if unit in self._runners or self._given_back.get(unit, 0) > now:
                continue
            if unit[0] in self._disputed:
                continue
            name, partition = unit
            lease = await leases.acquire(name, partition)
            if lease is not None:
                self._start(self.projections[name], lease, store)

    async def _agree(self, leases: Leases) -> None:
        """Stop running the projections that another live worker runs with another K."""
        disputed = await leases.disagreements(self.partitions)
        for name, (other, theirs) in disputed.items():
            if self._disputed.get(name) != (other, theirs):
                log.error(
                    "worker %s runs projection %s as %d partition(s), worker %s as %d: give "
                    "every worker the same LEDGERHUB_PARTITIONS; %s waits until they agree",
                    self.holder,
                    name,
                    self.partitions[name],
                    other,
                    theirs,
                    name,
                )
        for name in set(self._disputed) - set(disputed):
            log.warning("worker %s: the workers agree on projection %s again", self.holder, name)
        self._disputed = disputed
        stop = [unit for unit in self._runners if unit[0] in disputed]
        if stop:
            await leases.release(await self._stop_runners(stop))

    def _surplus(self, name: str, held: dict[str, int]) -> tuple[str, int] | None:
        """A partition of ``name`` to give back: when this worker holds more than its even
        part (``held``: live worker running it -> partitions it holds) and another has less."""
        mine = sorted(unit for unit in self._runners if unit[0] == name)
        even = self.partitions[name] // max(len(held), 1)
        short = any(count < even for holder, count in held.items() if holder != self.holder)
        return mine[-1] if len(mine) > even and short else None

    async def _give_back(self, leases: Leases, unit: tuple[str, int]) -> None:
        log.info("worker %s gives back %s", self.holder, self._unit(unit))
        await leases.release(await self._stop_runners([unit]))
        self._given_back[unit] = (
            asyncio.get_running_loop().time() + 2 * self.settings.renew_interval
        )

    def _start(self, projection: type[Projection], lease: Lease, store: ProjectionStore) -> None:
        unit = (projection.name, lease.partition)
        log.info("worker %s runs %s (lease token %d)", self.holder, self._unit(unit), lease.token)
        runner = Runner(
            projection,
            lease,
            store,
            self.settings,
            self._wakes[unit],
            self.config,
            self.partitions[projection.name],
            self._behind,
        )
        task = asyncio.create_task(runner.run(), name=f"ledgerhub-projection-{self._unit(unit)}")
        self._runners[unit] = (runner, task)

    async def _stop_runners(self, units: list[tuple[str, int]]) -> list[Lease]:
        stopped = [self._runners.pop(unit) for unit in units if unit in self._runners]
        for _, task in stopped:
            task.cancel()
        for _, task in stopped:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        return [runner.lease for runner, _ in stopped]

    def _unit(self, unit: tuple[str, int]) -> str:
        """A projection, and its partition if it has several, for log lines."""
        name, partition = unit
        return name if self.partitions.get(name, 1) == 1 else f"{name}[{partition}]"

    def _notified(self, channel: str, payload: str) -> None:
        for (name, _), wake in self._wakes.items():
            if channel == NOTIFY_CHANNEL or payload == name:
                wake.set()

    async def _listen(self, store: ProjectionStore) -> None:
        """Keep a LISTEN connection open; polling covers the moments it is down."""
        while True:
            try:
                async with store.listen(self._notified) as conn:
                    await _until_closed(conn)
            except Exception as exc:  # whatever it was, listen again (nothing awaits this task)
                log.warning("worker %s: LISTEN failed (polling meanwhile): %s", self.holder, exc)
            await asyncio.sleep(self.settings.renew_interval)


def fair_share(units: int, workers: int) -> int:
    """How many of ``units`` leases one of ``workers`` live workers may hold: rounded up, so
    that together they hold them all."""
    return math.ceil(units / max(workers, 1))


async def _until_closed(conn: Connection) -> None:
    closed = asyncio.Event()
    conn.add_termination_listener(lambda _conn: closed.set())
    await closed.wait()
