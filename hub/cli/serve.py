"""``ledgerhub serve``: the HTTP API (and, unless ``--no-workers``, the projection workers)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import logging
import os
import signal
import socket
import ssl
from collections.abc import AsyncIterator, Coroutine, Sequence
from typing import TYPE_CHECKING, Any

from hub import logs
from hub.api.app import BackgroundTask
from hub.api.context import ApiLimits, HubContext
from hub.api.routing import ApiRoute
from hub.api.server import open_hub, serving, tls_context
from hub.cli import processes, usage
from hub.config import Settings, load
from hub.domain.keys import Network
from hub.errors import FatalError
from hub.runtime.heap import tune_heap
from hub.runtime.loop import use_uvloop
from hub.store.provision import resolve_dsn

if TYPE_CHECKING:
    from hub.config import Config
    from hub.store import EventStore
    from hub.sync.sender import TargetHealth


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser("serve", help="run the HTTP API (and workers)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=usage.port, default=8080, help="port (default 8080; 0 = any free)"
    )
    parser.add_argument(
        "--no-workers",
        action="store_true",
        help="API only; run projections with `ledgerhub worker`",
    )
    parser.add_argument(
        "--tls-cert",
        metavar="FILE",
        default=os.environ.get("LEDGERHUB_TLS_CERT") or None,
        help="serve HTTPS (TLS 1.2+) with this PEM certificate chain (or LEDGERHUB_TLS_CERT)",
    )
    parser.add_argument(
        "--tls-key",
        metavar="FILE",
        default=os.environ.get("LEDGERHUB_TLS_KEY") or None,
        help="the certificate's PEM private key (or LEDGERHUB_TLS_KEY)",
    )
    parser.add_argument(
        "--trust-proxy",
        metavar="CIDR",
        action="append",
        type=usage.cidr,
        default=[],
        help="a reverse proxy whose X-Forwarded-For names the client (repeatable)",
    )
    parser.add_argument(
        "--processes",
        type=usage.at_least(1, "processes"),
        default=1,
        metavar="N",
        help="run N API processes on one port (SO_REUSEPORT); workers run in the first",
    )
    parser.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    parser.set_defaults(run=run)


@contextlib.asynccontextmanager
async def listening(
    hub: HubContext,
    host: str,
    port: int,
    *,
    background: Sequence[BackgroundTask] = (),
    core: Sequence[ApiRoute] | None = None,
    tls: ssl.SSLContext | None = None,
    trusted_proxies: Sequence[Network] = (),
    reuse_port: bool = False,
) -> AsyncIterator[str]:
    """``hub.api.server.serving`` (over TLS when ``tls`` is given; with ``SO_REUSEPORT`` when
    ``reuse_port``), but an address it cannot listen on (in use, not this machine's, a port it
    may not bind, a host name that does not resolve) is one line naming the address, not an
    internal error; yields the base URL."""
    async with contextlib.AsyncExitStack() as stack:
        try:
            url = await stack.enter_async_context(
                serving(
                    hub,
                    host,
                    port,
                    background=background,
                    core=core,
                    tls=tls,
                    trusted_proxies=trusted_proxies,
                    reuse_port=reuse_port,
                )
            )
        except OSError as exc:
            raise listen_error(host, port, exc) from exc
        yield url


def listen_error(host: str, port: int, exc: OSError) -> FatalError:
    """The one line for an address that cannot be listened on."""
    return FatalError(f"cannot listen on {_address(host, port)}: {_reason(exc)}")


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _reason(exc: OSError) -> str:
    """What the operating system said, without asyncio's restatement of the address."""
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the host ({exc.strerror or exc})"
    if exc.errno == errno.EADDRINUSE:
        return "the address is already in use (is another server running on that port?)"
    if exc.errno is not None:
        return os.strerror(exc.errno).lower()
    return str(exc)


async def projection_workers(hub: HubContext) -> None:
    """Run this process's share of the installed projections (the ``worker`` command's job)."""
    from hub.runtime.settings import RuntimeSettings
    from hub.runtime.worker import Worker
    from hub.spi.registry import discover, select

    projections = select(discover(), None)
    await Worker(hub.dsn, projections, RuntimeSettings.from_env(), config=hub.config).run()


async def accounting_sync(hub: HubContext) -> None:
    """Send the accounting documents of every tenant with a sync target (``hub.sync.loop``)."""
    from hub.spi.registry import document_source
    from hub.sync.loop import interval_from_env, sync_forever

    source = document_source()
    health = target_health(hub.store, hub.config)
    home = Settings.from_env().home
    await sync_forever(hub.store, hub.config, home, interval_from_env(), source, health)


def target_health(store: EventStore, config: Config) -> TargetHealth:
    """Where the sender reports target faults: the connection health monitor
    (``hub.runtime.health``), alerting through the configured channel."""
    from hub.alerts import AlertChannel
    from hub.runtime.health import HealthMonitor

    return HealthMonitor.over(store, config, AlertChannel.from_config(config))


async def fresh_gauges(hub: HubContext) -> None:
    """With OTLP metrics on, read the lag and health gauges on a timer, since nothing scrapes
    (``hub.runtime.gauges``); returns at once otherwise."""
    from hub.runtime.gauges import keep_fresh

    await keep_fresh(hub.store)


async def connection_health(hub: HubContext) -> None:
    """Check every connection's health on the shared schedule (``hub.runtime.health``)."""
    from hub.runtime.health import scheduled_health

    await scheduled_health(hub.dsn, hub.config, Settings.from_env().home)


async def scheduled_pulls(hub: HubContext) -> None:
    """Pull the connections that have a ``pull`` schedule (``hub.usecases.pull``)."""
    from hub.usecases.pull import scheduled_pulls as pull_schedule

    await pull_schedule(hub.dsn, hub.config)


def _tls(args: argparse.Namespace) -> ssl.SSLContext | None:
    """The TLS context ``--tls-cert``/``--tls-key`` ask for (None: plain HTTP)."""
    if args.tls_cert is None and args.tls_key is None:
        return None
    if args.tls_cert is None or args.tls_key is None:
        raise usage.UsageError("--tls-cert and --tls-key go together (or LEDGERHUB_TLS_CERT/KEY)")
    return tls_context(args.tls_cert, args.tls_key)


def run(args: argparse.Namespace) -> Coroutine[Any, Any, int]:
    """The ``serve`` command, run by ``hub.cli`` with ``asyncio.run``; called before that makes
    the event loop, it installs uvloop's loop policy when uvloop is installed (the ``uvloop``
    extra), so the loop the API runs on is uvloop's."""
    use_uvloop()
    return _serve(args)


async def _serve(args: argparse.Namespace) -> int:
    processes.tag_child()
    tls = _tls(args)  # an unreadable certificate stops us before anything else
    settings = Settings.from_env()
    config = load(settings)  # a config mistake stops us before we bind
    if not args.no_workers:  # so does a sync target we could not reach (a missing secret…)
        from hub.runtime.health import HealthEnvironment
        from hub.spi.registry import document_source
        from hub.sync.loop import backoff_from_env, interval_from_env
        from hub.sync.tenants import open_targets

        interval_from_env()
        backoff_from_env()
        HealthEnvironment.from_env()
        async with open_targets(config, settings.home) as pairs:
            if pairs:
                document_source()  # and so does having nothing that computes the documents
    if args.processes > 1:
        return await processes.run_processes(args, await resolve_dsn(settings))
    limits = ApiLimits.from_env()
    worker_tasks: list[BackgroundTask] = [
        projection_workers, accounting_sync, scheduled_pulls, connection_health,
    ]  # fmt: skip
    background: list[BackgroundTask] = [fresh_gauges, *([] if args.no_workers else worker_tasks)]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with (
        open_hub(await resolve_dsn(settings), config, limits) as hub,
        listening(
            hub,
            args.host,
            args.port,
            background=background,
            tls=tls,
            trusted_proxies=args.trust_proxy,
            reuse_port=args.reuse_port,
        ) as url,
    ):
        workers = "without workers" if args.no_workers else "with projection workers"
        logging.getLogger(logs.SERVICE_LOGGER).info("ledgerhub serving on %s %s", url, workers)
        tune_heap()
        processes.tell_ready()
        await stop.wait()
    return 0
