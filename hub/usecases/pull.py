"""Pulls: one pull of one connection (``pull_connection``, behind ``ledgerhub pull run``), and
the schedule workers run (``pull_forever``, beside the accounting sender).

A pull holds the connection's lease (``hub.store.pulls``) for its whole length, hands the
connector's puller (``hub.spi.puller``) the stored cursors, and commits each page the puller
yields — its events and the stream's new cursor — in one transaction. A pull that fails half-way
keeps every page committed before the failure; the next one resumes there.

Every pull is a row in the runs log (``hub.store.runs``): one a person started is written when it
starts and always finished; a scheduled one is written when it ends, and only if it appended
something or failed. ``records`` counts appended events (duplicates are not records),
``api_calls`` the calls made to the spoke, ``errors`` those that failed (retried or not).
Credentials go into the puller's requests only: they are never logged, never stored, and the
errors reported are the spoke's messages, not the requests.

Knobs (``PullSettings``): ``LEDGERHUB_PULL_TIMEOUT`` (seconds per API call, default 60),
``LEDGERHUB_PULL_RETRY_ATTEMPTS`` (a failed call's attempts in all, default 8),
``LEDGERHUB_PULL_RETRY_WAIT`` and ``LEDGERHUB_PULL_BACKOFF_MAX`` (first and longest wait in
seconds, default 0.5 and 30), ``LEDGERHUB_PULL_TICK`` (the schedule's longest sleep, default 60).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Annotated

import aiohttp
import asyncpg
from pydantic import Field

from hub import logs
from hub.config import Config
from hub.config.environment import EnvironmentSettings
from hub.config.file import ConnectionConfig
from hub.errors import ConfigError, InvalidInput, LedgerhubError
from hub.spi.puller import AiohttpTransport, PullContext, Puller, RetryPolicy, Transport
from hub.spi.registry import connector
from hub.store.pulls import PullSession, PullStore
from hub.store.runs import RunLog, RunTally

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
"""``update(done, total)``: objects read so far, and all expected (``total`` ≥ ``done``)."""


class PullSettings(EnvironmentSettings):
    """``LEDGERHUB_PULL_*``: the API calls' timeout and retries, and the schedule's tick."""

    pull_timeout: Annotated[float, Field(gt=0)] = 60.0
    pull_retry_attempts: Annotated[int, Field(gt=0)] = RetryPolicy().attempts
    pull_retry_wait: Annotated[float, Field(gt=0)] = RetryPolicy().initial
    pull_backoff_max: Annotated[float, Field(gt=0)] = RetryPolicy().maximum
    pull_tick: Annotated[float, Field(gt=0)] = 60.0

    @property
    def retry(self) -> RetryPolicy:
        """How a failed API call is retried."""
        return RetryPolicy(self.pull_retry_attempts, self.pull_retry_wait, self.pull_backoff_max)


class PullBusy(LedgerhubError):
    """Another process is pulling this connection now."""


@dataclass
class PullReport:
    """What one pull did."""

    connection: str
    tenant: str
    run_id: int | None = None
    """Its row in the runs log (None: a scheduled pull that wrote none)."""
    appended: int = 0
    duplicates: int = 0
    api_calls: int = 0
    errors: int = 0
    error: str | None = None
    """Why it stopped early (None: it finished)."""
    skipped: bool = False
    """A scheduled pull that did not run: not due, or another process holds the lease."""
    streams: dict[str, int] = field(default_factory=dict)
    """Events appended per stream."""

    @property
    def ok(self) -> bool:
        return self.error is None


def puller_of(connection: ConnectionConfig) -> Puller:
    """The puller of ``connection``'s connector; ``ConfigError`` when it has none, or when the
    connection lacks a credential the puller needs."""
    plugin = connector(connection.connector)
    puller = None if plugin is None else plugin.puller
    if puller is None:
        raise ConfigError(
            f"connection {connection.id}: connector {connection.connector!r} cannot pull"
        )
    refs = connection.credential_refs()
    missing = [name for name in puller.credentials if name not in refs]
    if missing:
        raise ConfigError(
            f"connection {connection.id} needs {', '.join(missing)} to pull (env:NAME or file:PATH)"
        )
    return puller


def pullable(config: Config, connection_id: str) -> ConnectionConfig:
    """The configured connection ``connection_id`` with a connector that pulls, or
    ``ConfigError`` saying why not."""
    connection = config.connection(connection_id)
    if connection is None:
        known = ", ".join(c.id for c in config.connections) or "none configured"
        raise ConfigError(f"no connection {connection_id!r} (connections: {known})")
    puller_of(connection)
    return connection


@contextlib.asynccontextmanager
async def _transport(given: Transport | None, seconds: float) -> AsyncIterator[Transport]:
    """``given``, else aiohttp with ``seconds`` per call for the block."""
    if given is not None:
        yield given
        return
    async with aiohttp.ClientSession() as session:
        yield AiohttpTransport(session, timeout=seconds)


async def pull_connection(
    pool: asyncpg.Pool,
    config: Config,
    connection_id: str,
    *,
    since: date | None = None,
    manual: bool = True,
    if_due: float | None = None,
    transport: Transport | None = None,
    retry: RetryPolicy | None = None,
    on_progress: Progress | None = None,
    now: datetime | None = None,
) -> PullReport:
    """Pull ``connection_id`` now; its report (every line logged meanwhile names the
    connection). See ``_pull_connection``."""
    with logs.bound(connection=connection_id):
        return await _pull_connection(
            pool, config, connection_id, since=since, manual=manual, if_due=if_due,
            transport=transport, retry=retry, on_progress=on_progress, now=now,
        )  # fmt: skip


async def _pull_connection(
    pool: asyncpg.Pool,
    config: Config,
    connection_id: str,
    *,
    since: date | None = None,
    manual: bool = True,
    if_due: float | None = None,
    transport: Transport | None = None,
    retry: RetryPolicy | None = None,
    on_progress: Progress | None = None,
    now: datetime | None = None,
) -> PullReport:
    """Pull ``connection_id`` now; its report.

    ``since`` (``--since``) restarts every stream there, whatever its cursor; without it a
    stream resumes from its cursor, or starts at the schedule's ``since``. ``manual``: a person
    asked (the run is always written; a busy lease is ``PullBusy``); else a scheduled pull (a
    busy lease or, with ``if_due`` seconds, a pull more recent than that is a skip). A failure
    of the spoke or of its answers ends the pull with ``error`` set, keeping what was committed.
    """
    connection = pullable(config, connection_id)
    puller = puller_of(connection)
    settings = PullSettings.from_env()
    tenant = connection.tenant
    report = PullReport(connection=connection.id, tenant=tenant)
    pulls, runs = PullStore(pool), RunLog(pool)
    started = datetime.now(UTC)
    if manual:
        report.run_id = await runs.start("pull", tenant, connection.id)
    try:
        async with pulls.lease(connection.id, tenant) as session:
            if session is None:
                if manual:
                    raise PullBusy(f"{connection.id} is being pulled by another process now")
                report.skipped = True
                return report
            if if_due is not None:
                last = await pulls.last_pulled(connection.id)
                if last is not None and (await pulls.now() - last.pulled_at).total_seconds() < (
                    if_due
                ):
                    report.skipped = True
                    return report
            # any other pull run of this connection still "running" died with its process
            await runs.abandon("pull", connection.id, report.run_id)
            state = {c.stream: c.state for c in await pulls.cursors(connection.id)}
            async with _transport(transport, settings.pull_timeout) as chosen:
                ctx = PullContext(
                    tenant=tenant,
                    source=connection.id,
                    credentials=connection.credentials(),
                    api_url=connection.api_url,
                    state=state,
                    transport=chosen,
                    since=since or (connection.pull.since if connection.pull else None),
                    restart=since is not None,
                    options={
                        "accounts": dict(connection.accounts),
                        "currency": config.tenant(tenant).currency,
                    },
                    retry=retry or settings.retry,
                    zone=config.tenant(tenant).zone,
                    now=now,
                )
                try:
                    await _pages(puller, ctx, session, report, on_progress)
                except LedgerhubError as exc:
                    report.error = str(exc)
                    log.warning("pull %s stopped: %s", connection.id, exc)
                finally:
                    report.api_calls, report.errors = ctx.stats.calls, ctx.stats.errors
            await session.mark_pulled("succeeded" if report.ok else "failed")
    except BaseException as exc:  # busy, cancelled, or a bug: the run says so, then it goes on
        report.error = report.error or str(exc) or type(exc).__name__
        raise
    finally:
        await _write_run(runs, report, started, manual)
    log.info(
        "pull %s: %d new event(s), %d already in the log, %d API call(s)",
        connection.id,
        report.appended,
        report.duplicates,
        report.api_calls,
    )
    return report


async def _pages(
    puller: Puller,
    ctx: PullContext,
    session: PullSession,
    report: PullReport,
    on_progress: Progress | None,
) -> None:
    seen: dict[str, int] = {}
    totals: dict[str, int] = {}
    async for page in puller.pull(ctx):
        for event in page.events:
            if event.source != ctx.source or event.tenant != ctx.tenant:
                raise InvalidInput(
                    f"the {ctx.source} puller gave an event of {event.tenant}/{event.source}"
                )
        results = await session.commit_page(page.stream, page.events, page.cursor)
        appended = sum(1 for r in results if r.status == "appended")
        report.appended += appended
        report.duplicates += len(results) - appended
        report.streams[page.stream] = report.streams.get(page.stream, 0) + appended
        if on_progress is not None:
            seen[page.stream] = page.seen
            if page.total is not None:
                totals[page.stream] = page.total
            done = sum(seen.values())
            total = sum(max(totals.get(s, 0), n) for s, n in seen.items())
            on_progress(done, max(total, done))


async def _write_run(runs: RunLog, report: PullReport, started: datetime, manual: bool) -> None:
    tally = RunTally(
        status="succeeded" if report.ok else "failed",
        records=report.appended,
        errors=report.errors,
        api_calls=report.api_calls,
        error=report.error,
    )
    with contextlib.suppress(LedgerhubError):  # the pull's own outcome matters more
        if report.run_id is not None:
            await runs.finish(report.run_id, tally)
        elif not manual and not report.skipped and (report.appended or not report.ok):
            report.run_id = await runs.record(
                "pull", report.tenant, report.connection, started, tally
            )


async def pull_forever(
    pool: asyncpg.Pool,
    config: Config,
    *,
    transport: Transport | None = None,
    retry: RetryPolicy | None = None,
    tick: float | None = None,
) -> None:
    """Pull each connection with a ``pull`` schedule once per ``every``, until cancelled.

    Every worker runs this; the lease and the shared ``pull_schedule`` (re-read under the
    lease) let one of them pull a connection per period. A failed pull is logged and written
    to the runs log, and tried again after ``every``; a connection whose config is wrong (no
    puller, a missing credential) is logged once and left alone. Wakes at most ``tick``
    seconds apart (default ``LEDGERHUB_PULL_TICK``).
    """
    scheduled = [c for c in config.connections if c.pull is not None]
    broken: set[str] = set()
    for connection in scheduled:
        try:
            puller_of(connection)
        except ConfigError as exc:
            log.error("scheduled pulls of %s are off: %s", connection.id, exc)
            broken.add(connection.id)
    scheduled = [c for c in scheduled if c.id not in broken]
    if not scheduled:
        return
    pulls = PullStore(pool)
    longest = tick or PullSettings.from_env().pull_tick
    while True:
        wait = longest
        for connection in scheduled:
            assert connection.pull is not None
            every = connection.pull.every
            try:
                last = await pulls.last_pulled(connection.id)
                if last is not None:
                    age = (await pulls.now() - last.pulled_at).total_seconds()
                    if age < every:
                        wait = min(wait, every - age)
                        continue
                report = await pull_connection(
                    pool,
                    config,
                    connection.id,
                    manual=False,
                    if_due=every,
                    transport=transport,
                    retry=retry,
                )
                wait = min(wait, every)
                if report.error is not None:
                    log.warning("scheduled pull of %s failed: %s", connection.id, report.error)
            except asyncio.CancelledError:
                raise
            except LedgerhubError as exc:
                log.warning("scheduled pull of %s: %s (tried again later)", connection.id, exc)
            except Exception:  # a bug must not end the schedule of every connection
                log.exception("scheduled pull of %s failed", connection.id)
        await asyncio.sleep(max(0.05, wait))


async def scheduled_pulls(dsn: str, config: Config) -> None:
    """``pull_forever`` on a small pool of its own (``ledgerhub serve`` and ``worker``); returns
    at once when no connection has a ``pull`` schedule."""
    if not any(c.pull is not None for c in config.connections):
        return
    from hub.store.pool import create_pool

    pool = await create_pool(dsn, max_size=3)
    try:
        await pull_forever(pool, config)
    finally:
        await pool.close()
