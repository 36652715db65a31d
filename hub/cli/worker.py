"""``ledgerhub worker``: run projections (their share of them, by lease), the accounting
sender (one process per tenant and target at a time, by advisory lock), the scheduled pulls
(one process per connection at a time, by lease: ``hub.usecases.pull``) and the connection
health checks (one process per connection and period: ``hub.runtime.health``) until stopped."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from hub import telemetry
from hub.api.app import OBSERVE_ROUTES
from hub.api.server import open_hub
from hub.cli import usage
from hub.cli.context import database_dsn
from hub.cli.serve import listening, target_health
from hub.cli.usage import UsageError
from hub.config import Settings, load
from hub.runtime import gauges
from hub.runtime.health import HealthEnvironment, scheduled_health
from hub.runtime.heap import tune_heap
from hub.runtime.loop import use_uvloop
from hub.runtime.settings import RuntimeSettings
from hub.runtime.worker import Worker
from hub.spi.registry import discover, document_source, select
from hub.store import EventStore
from hub.sync.loop import backoff_from_env, interval_from_env, sync_forever
from hub.usecases.pull import scheduled_pulls


def _stopper(
    task: asyncio.Task[None], loop: asyncio.AbstractEventLoop, grace: float
) -> Callable[[], None]:
    """First signal: stop gracefully (runners cancelled, leases given back), but within
    ``grace`` seconds; a second signal, or the deadline, exits at once. Exiting without the
    goodbyes is safe: an uncommitted batch rolls back with its connection, every commit is fenced
    by the lease token, and the leases expire by themselves."""

    def hard_exit(why: str) -> None:
        print(f"worker: {why}; exiting now (leases expire by themselves)", file=sys.stderr)
        for pending in asyncio.all_tasks(loop):  # what shutdown was stuck on, for the log
            print(f"  task {pending.get_name()}:", file=sys.stderr)
            pending.print_stack(limit=8, file=sys.stderr)
        sys.stderr.flush()
        os._exit(1)

    def stop() -> None:
        if task.cancelling():
            hard_exit("stopped twice")
        task.cancel()
        loop.call_later(grace, hard_exit, f"shutdown took longer than {grace:g} s")

    return stop


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "worker", help="run projection workers (scale out: start as many as you like)"
    )
    parser.add_argument(
        "--projection",
        action="append",
        metavar="NAME",
        type=usage.text("--projection"),
        help="run only this projection (repeatable; default: every installed one)",
    )
    parser.add_argument(
        "--no-sync",
        action="store_true",
        help="do not send accounting documents (leave it to other processes)",
    )
    parser.add_argument(
        "--no-pull",
        action="store_true",
        help="do not run scheduled pulls (leave them to other processes)",
    )
    parser.add_argument(
        "--no-health",
        action="store_true",
        help="do not run scheduled connection health checks (leave them to other processes)",
    )
    parser.add_argument(
        "--metrics-port",
        type=usage.port,
        metavar="PORT",
        help="serve GET /metrics and the health routes on this port (0: any free port)",
    )
    parser.add_argument(
        "--metrics-host", default="127.0.0.1", help="address for --metrics-port (default 127.0.0.1)"
    )
    parser.set_defaults(run=run)


async def _work(worker: Worker, args: argparse.Namespace) -> None:
    """The projections, the sender (unless ``--no-sync``), the scheduled pulls (unless
    ``--no-pull``), the health checks (unless ``--no-health``) and the metrics endpoint (with
    ``--metrics-port``), until one fails or all end; the first failure is raised as itself (the
    CLI reports a known error in one line, not as a group)."""
    try:
        await _run_all(worker, args)
    except ExceptionGroup as failures:
        raise failures.exceptions[0] from None


async def _run_all(worker: Worker, args: argparse.Namespace) -> None:
    async with contextlib.AsyncExitStack() as stack:
        url = None
        if args.metrics_port is not None:  # first: a port it cannot listen on is the only line
            hub = await stack.enter_async_context(open_hub(worker.dsn, worker.config))
            url = await stack.enter_async_context(
                listening(hub, args.metrics_host, args.metrics_port, core=OBSERVE_ROUTES)
            )
        names = ", ".join(worker.projections) or "none"
        say = functools.partial(print, file=sys.stderr, flush=True)
        say(f"worker {worker.holder}: {len(worker.projections)} projection(s): {names}")
        if url is not None:
            say(f"worker {worker.holder}: metrics on {url}/metrics")
        async with asyncio.TaskGroup() as group:
            group.create_task(worker.run(), name="projections")
            if not args.no_sync:
                store = await stack.enter_async_context(await EventStore.open(worker.dsn))
                source = document_source()
                health = target_health(store, worker.config)
                home = Settings.from_env().home
                sync = sync_forever(store, worker.config, home, interval_from_env(), source, health)
                group.create_task(sync, name="sync")
            if not args.no_pull:
                group.create_task(scheduled_pulls(worker.dsn, worker.config), name="pulls")
            if not args.no_health:
                checks = scheduled_health(worker.dsn, worker.config, Settings.from_env().home)
                group.create_task(checks, name="health")
            if telemetry.TELEMETRY.otlp.metrics:  # nothing scrapes: read the gauges on a timer
                gauge_store = await stack.enter_async_context(await EventStore.open(worker.dsn))
                group.create_task(gauges.keep_fresh(gauge_store), name="gauges")


def run(args: argparse.Namespace) -> Coroutine[Any, Any, int]:
    """The ``worker`` command, run by ``hub.cli`` with ``asyncio.run``; called before that
    makes the event loop, it installs uvloop's loop policy when uvloop is installed
    (``hub.runtime.loop``)."""
    use_uvloop()
    return _worker(args)


async def _worker(args: argparse.Namespace) -> int:
    installed = discover(names=args.projection)
    unknown = sorted(set(args.projection or ()) - set(installed))
    if unknown:  # judged from the installed plugins alone
        known = ", ".join(sorted(discover())) or "none"
        raise UsageError(f"--projection {unknown[0]!r}: no such projection (installed: {known})")
    projections = select(installed, args.projection)
    config = load(Settings.from_env())  # a config mistake stops us at start
    interval_from_env()  # the sender's and the health checks' settings, checked at start
    backoff_from_env()
    HealthEnvironment.from_env()
    settings = RuntimeSettings.from_env()
    worker = Worker(await database_dsn(), projections, settings, config=config)
    tune_heap()
    task = asyncio.create_task(_work(worker, args))
    loop = asyncio.get_running_loop()
    grace = max(2.0, settings.lease_ttl)
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, _stopper(task, loop, grace))
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return 0
