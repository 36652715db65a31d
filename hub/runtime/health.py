"""Connection health, run: the checks of every connection and sync target, the schedule
workers share, and the alerts (DESIGN "Health and alerts").

What is checked (``hub.spi.health``): a connection whose connector pulls and that has the
credentials its puller needs, by the puller's ``health_check`` (one cheap authenticated call);
else, when its connector declares ``freshness``, by the age of its newest event; each tenant's
sync target (``sync:TARGET``), by the target's ``health_check`` when it has one (a target that
cannot even be opened is failing with the reason). A connection with ``health = { check =
false }`` is not checked.

``health_forever`` (every worker, and ``ledgerhub serve``'s in-process workers) claims each
connection's check when it is due (``HealthStore.claim``: one worker per period), runs it
within ``LEDGERHUB_HEALTH_TIMEOUT`` seconds, and records the result through the state machine
(``hub.domain.health``); the alert a change raises goes out through the ``AlertChannel``.
``HealthMonitor`` is the sender's ``TargetHealth``: the sender's loop runs each target's check
(claimed the same way) on its own target instance between runs, and a refused token or 5xx once
retries are spent marks the target failing until a send works again. ``check_now`` (``ledgerhub
health``) runs every check at once, targets included, recording the same way.

Knobs: ``[health] every`` (``LEDGERHUB_HEALTH_EVERY``, seconds, overrides it) and
``remind_after``; ``LEDGERHUB_HEALTH_TIMEOUT`` (seconds per check, default 30);
``LEDGERHUB_HEALTH_TICK`` (the schedule's longest sleep, default 60).

The gauge ``ledgerhub_connection_failing{connection, tenant}`` (1 failing, 0 ok) reports the
states this process last read from the database (each round of the schedule reads them all).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import aiohttp
import asyncpg
from opentelemetry.metrics import CallbackOptions, Observation
from pydantic import Field

from hub.alerts import Alert, AlertChannel
from hub.config import Config
from hub.config.environment import EnvironmentSettings
from hub.config.file import ConnectionConfig
from hub.domain.health import CheckResult, ConnectionHealth, Transition, alert_text
from hub.errors import LedgerhubError
from hub.spi.health import Freshness, HealthCheckedTarget
from hub.spi.puller import AiohttpTransport, PullContext, Puller, RetryPolicy, Transport
from hub.spi.registry import connector
from hub.spi.sealed import key_from_env
from hub.spi.target import Target, TargetEnvironment
from hub.store.events import EventStore
from hub.store.health import HealthStore, Origin
from hub.sync.tenants import open_target
from hub.telemetry import TELEMETRY

log = logging.getLogger(__name__)

CHECK_RETRY = RetryPolicy(attempts=2, initial=0.5, maximum=2.0)
"""A check's call is tried twice: one lost packet is not an outage; a real one shows at once."""


class HealthEnvironment(EnvironmentSettings):
    """``LEDGERHUB_HEALTH_*``: the schedule's period override, a check's timeout, the tick."""

    health_every: Annotated[float, Field(gt=0)] | None = None
    health_timeout: Annotated[float, Field(gt=0)] = 30.0
    health_tick: Annotated[float, Field(gt=0)] = 60.0


def every_of(config: Config, environment: HealthEnvironment | None = None) -> float:
    """Seconds between checks of a connection: ``LEDGERHUB_HEALTH_EVERY``, else ``[health]
    every``."""
    found = (environment or HealthEnvironment.from_env()).health_every
    return found if found is not None else config.health.every


class HealthGauge:
    """``ledgerhub.connection.failing`` (Prometheus ``ledgerhub_connection_failing``)."""

    def __init__(self) -> None:
        self._snapshot: tuple[ConnectionHealth, ...] = ()
        TELEMETRY.provider.get_meter("ledgerhub").create_observable_gauge(
            "ledgerhub.connection.failing",
            callbacks=[self._observe],
            description="1 while the connection's health check (or its sender) fails, else 0",
        )

    def update(self, states: Iterable[ConnectionHealth]) -> None:
        """Replace what the gauge reports."""
        self._snapshot = tuple(states)

    def _observe(self, _options: CallbackOptions) -> Iterable[Observation]:
        return [
            Observation(
                1 if h.state == "failing" else 0, {"connection": h.connection, "tenant": h.tenant}
            )
            for h in self._snapshot
        ]


GAUGE = HealthGauge()
"""This process's connection health gauge."""


@dataclass(frozen=True)
class Check:
    """One connection's check: ``run`` returns a few words when it passes, raises when not."""

    tenant: str
    connection: str
    run: Callable[[], Awaitable[str]]


class HealthMonitor:
    """Records results through the state machine and sends the alerts they raise; also the
    sender's ``TargetHealth`` (``hub.sync.sender``)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        config: Config,
        channel: AlertChannel,
        environment: HealthEnvironment | None = None,
    ) -> None:
        self.store = HealthStore(pool)
        self.channel = channel
        self.remind_after = timedelta(seconds=config.health.remind_after)
        self.environment = environment or HealthEnvironment.from_env()
        self.every = every_of(config, self.environment)
        self._next_try: dict[tuple[str, str], float] = {}
        """(tenant, sync:TARGET) → when ``check_target`` asks the schedule again (monotonic)."""

    @classmethod
    def over(cls, events: EventStore, config: Config, channel: AlertChannel) -> HealthMonitor:
        """A monitor on ``events``' pool (which stays ``events``' to close)."""
        return cls(events._pool, config, channel)

    async def record(self, result: CheckResult, origin: Origin = "check") -> Transition | None:
        """Apply ``result``; send the alert it raises (if any). None: nothing changed."""
        change = await self.store.record(result, self.remind_after, origin)
        if change is not None and change.alert is not None:
            health = change.health
            await self.channel.send(
                Alert(
                    kind="health",
                    text=alert_text(change.alert, health),
                    details={
                        "connection": health.connection,
                        "tenant": health.tenant,
                        "state": "recovered" if change.alert == "recovered" else "failing",
                        "reminder": change.alert == "reminder",
                        "detail": health.detail,
                        "since": health.since.isoformat(),
                    },
                )
            )
        return change

    async def target_fault(self, tenant: str, target: str, detail: str) -> None:
        """The sender met a fault at ``target`` (a refused token; 5xx once retries were spent):
        the target is failing until a send works. Never raises."""
        await self._quietly(CheckResult(f"sync:{target}", tenant, False, detail), "fault")

    async def target_sent(self, tenant: str, target: str) -> None:
        """A send to ``target`` worked: a fault the sender recorded is over. Never raises."""
        await self._quietly(CheckResult(f"sync:{target}", tenant, True, "documents sent"), "sent")

    async def check_target(self, tenant: str, target: Target) -> None:
        """Run ``target``'s health check when it is due (``HealthStore.claim``), on this very
        instance (the sender's: one token refresher per target), and record it. Never raises."""
        if not isinstance(target, HealthCheckedTarget):
            return
        connection = f"sync:{target.name}"
        now = time.monotonic()
        if now < self._next_try.get((tenant, connection), 0.0):
            return  # asked lately: the sender's loop comes round far more often than checks
        self._next_try[(tenant, connection)] = now + min(self.every, self.environment.health_tick)
        try:
            if await self.store.claim(tenant, connection, self.every):
                check = Check(tenant, connection, target.health_check)
                result = await run_check(check, self.environment.health_timeout)
                if not result.ok:
                    log.warning("health check of %s failed: %s", connection, result.detail)
                await self.record(result)
        except LedgerhubError as exc:
            log.warning("health of %s not recorded: %s", connection, exc)

    async def refresh(self) -> list[ConnectionHealth]:
        """Every recorded state, read again (and handed to the gauge)."""
        states = await self.store.all()
        GAUGE.update(states)
        return states

    async def _quietly(self, result: CheckResult, origin: Origin) -> None:
        try:
            await self.record(result, origin)
        except LedgerhubError as exc:
            log.warning("health of %s not recorded: %s", result.connection, exc)


async def run_check(check: Check, seconds: float) -> CheckResult:
    """Run ``check`` within ``seconds``: its result (a failure's words, not a raise)."""
    try:
        async with asyncio.timeout(seconds):
            detail = await check.run()
    except TimeoutError:
        return CheckResult(check.connection, check.tenant, False, f"no answer in {seconds:g} s")
    except LedgerhubError as exc:
        return CheckResult(check.connection, check.tenant, False, str(exc) or type(exc).__name__)
    except (aiohttp.ClientError, OSError) as exc:
        return CheckResult(check.connection, check.tenant, False, f"unreachable: {exc!r}")
    except Exception as exc:  # a plugin's bug is a failing check, not a dead schedule
        log.exception("health check of %s failed", check.connection)
        return CheckResult(check.connection, check.tenant, False, f"the check failed: {exc!r}")
    return CheckResult(check.connection, check.tenant, True, detail)


def _puller(connection: ConnectionConfig) -> Puller | None:
    plugin = connector(connection.connector)
    puller = None if plugin is None else plugin.puller
    if puller is None:
        return None
    refs = connection.credential_refs()
    return puller if all(name in refs for name in puller.credentials) else None


def _patterns(types: Sequence[str]) -> list[str]:
    """Event type patterns (``stripe.*``) as SQL ``LIKE`` patterns."""
    return [t.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_").replace("*", "%")
            for t in types]  # fmt: skip


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}".replace(".0", "")
    return f"{seconds:.0f}s"


def _fresh(
    store: HealthStore, connection: ConnectionConfig, freshness: Freshness
) -> Callable[[], Awaitable[str]]:
    limit = connection.health.stale_after or freshness.max_age

    async def run() -> str:
        newest = await store.newest_event(
            connection.tenant,
            connection.id,
            _patterns(freshness.event_types),
            occurred=freshness.occurred,
        )
        if newest is None:
            return f"no {freshness.what} yet (expected within {_age(limit)})"
        age = (await store.now() - newest).total_seconds()
        if age > limit:
            raise StaleSource(
                f"the newest {freshness.what} is {_age(age)} old (expected within {_age(limit)})"
            )
        return f"the newest {freshness.what} is {_age(max(0.0, age))} old"

    return run


class StaleSource(LedgerhubError):
    """A receiving connection's newest event is older than it may be."""


def _pulled(
    config: Config, connection: ConnectionConfig, puller: Puller, transport: Transport
) -> Callable[[], Awaitable[str]]:
    async def run() -> str:
        ctx = PullContext(
            tenant=connection.tenant,
            source=connection.id,
            credentials=connection.credentials(),
            api_url=connection.api_url,
            state={},
            transport=transport,
            options={
                "accounts": dict(connection.accounts),
                "currency": config.tenant(connection.tenant).currency,
            },
            retry=CHECK_RETRY,
            zone=config.tenant(connection.tenant).zone,
        )
        return await puller.health_check(ctx) or "the API answered"

    return run


async def connection_checks(
    config: Config, store: HealthStore, transport: Transport
) -> list[Check]:
    """The check of each configured connection that has one (see the module docstring)."""
    found: list[Check] = []
    for connection in config.connections:
        if not connection.health.check:
            continue
        plugin = connector(connection.connector)
        freshness = None if plugin is None else plugin.freshness
        puller = _puller(connection)
        run: Callable[[], Awaitable[str]] | None = None
        if puller is not None and type(puller).health_check is not Puller.health_check:
            run = _pulled(config, connection, puller, transport)
        elif freshness is not None:
            run = _fresh(store, connection, freshness)
        if run is not None:
            found.append(Check(connection.tenant, connection.id, run))
    return found


def target_checks(config: Config, home: Path, session: aiohttp.ClientSession) -> list[Check]:
    """The check of each tenant's sync target: its ``health_check``; a target that cannot be
    opened is a check that fails with the reason; one without a check is left out."""
    books = config.books
    config_dir = config.path.parent if config.path is not None else None
    key = key_from_env()
    found: list[Check] = []
    for tenant in sorted(config.tenants):
        chosen = config.sync_for(tenant)
        if chosen is None:
            continue
        connection = f"sync:{chosen.target}"
        try:
            target = open_target(
                chosen, TargetEnvironment(books.tenant(tenant), home, config_dir, session, key)
            )
        except LedgerhubError as exc:
            found.append(Check(tenant, connection, _raising(exc)))
            continue
        if isinstance(target, HealthCheckedTarget):
            found.append(Check(tenant, connection, target.health_check))
    return found


def _raising(exc: LedgerhubError) -> Callable[[], Awaitable[str]]:
    async def run() -> str:
        raise exc

    return run


@contextlib.asynccontextmanager
async def all_checks(
    config: Config,
    home: Path,
    store: HealthStore,
    transport: Transport | None = None,
    *,
    targets: bool = True,
) -> AsyncIterator[list[Check]]:
    """Every connection's check (and, with ``targets``, every sync target's, on targets opened
    for the block), with the HTTP session they share open for the block."""
    timeout = HealthEnvironment.from_env().health_timeout
    async with aiohttp.ClientSession() as session:
        chosen = transport or AiohttpTransport(session, timeout=timeout)
        checks = await connection_checks(config, store, chosen)
        if targets:
            checks += target_checks(config, home, session)
        yield checks


async def check_now(
    pool: asyncpg.Pool,
    config: Config,
    home: Path,
    *,
    channel: AlertChannel | None = None,
    transport: Transport | None = None,
) -> list[CheckResult]:
    """Run every check now (``ledgerhub health``), record each result (alerting on a change)
    and return them, by connection."""
    monitor = HealthMonitor(pool, config, channel or AlertChannel.from_config(config))
    timeout = HealthEnvironment.from_env().health_timeout
    async with all_checks(config, home, monitor.store, transport) as checks:
        results = await asyncio.gather(*(run_check(check, timeout) for check in checks))
    for result in results:
        await monitor.record(result)
    return sorted(results, key=lambda r: (r.connection, r.tenant))


async def health_forever(
    pool: asyncpg.Pool,
    config: Config,
    home: Path,
    *,
    channel: AlertChannel | None = None,
    transport: Transport | None = None,
    monitor: HealthMonitor | None = None,
) -> None:
    """Check every connection once per ``every`` (shared by the workers), until cancelled.
    Sync targets are checked by the sender's loop (``HealthMonitor.check_target``) on its own
    target instances, so a token refresh never races the sender's."""
    environment = HealthEnvironment.from_env()
    every = every_of(config, environment)
    monitor = monitor or HealthMonitor(pool, config, channel or AlertChannel.from_config(config))
    async with all_checks(config, home, monitor.store, transport, targets=False) as checks:
        if not checks:
            return
        keys = [(c.tenant, c.connection) for c in checks]
        while True:
            try:
                for check in checks:
                    if await monitor.store.claim(check.tenant, check.connection, every):
                        result = await run_check(check, environment.health_timeout)
                        if not result.ok:
                            log.warning("health check of %s failed: %s", check.connection,
                                        result.detail)  # fmt: skip
                        await monitor.record(result)
                await monitor.refresh()
                wait = await monitor.store.next_due(keys)
            except LedgerhubError as exc:
                log.warning("health checks: %s (tried again later)", exc)
                wait = None
            except Exception:  # a bug must not end the worker: log it, try again later
                log.exception("health checks failed (tried again later)")
                wait = None
            await asyncio.sleep(
                max(0.05, min(environment.health_tick, every if wait is None else wait))
            )


async def scheduled_health(
    dsn: str, config: Config, home: Path, *, monitor: HealthMonitor | None = None
) -> None:
    """``health_forever`` on a small pool of its own (``ledgerhub serve`` and ``worker``);
    returns at once when nothing has a check."""
    from hub.store.pool import create_pool

    pool = await create_pool(dsn, max_size=2)
    try:
        await health_forever(pool, config, home, monitor=monitor)
    finally:
        await pool.close()
