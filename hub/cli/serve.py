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
from collections.abc import AsyncIterator, Sequence
from typing import Any

from hub import logs
from hub.api.app import BackgroundTask
from hub.api.context import ApiLimits, HubContext
from hub.api.routing import ApiRoute
from hub.api.server import open_hub, serving, tls_context
from hub.cli import usage
from hub.config import Settings, load
from hub.domain.keys import Network
from hub.errors import FatalError
from hub.store.provision import resolve_dsn


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
) -> AsyncIterator[str]:
    """``hub.api.server.serving`` (over TLS when ``tls`` is given), but an address it cannot
    listen on (in use, not this machine's, a port it may not bind, a host name that does not
    resolve) is one line naming the address, not an internal error; yields the base URL."""
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
                )
            )
        except OSError as exc:
            raise FatalError(f"cannot listen on {_address(host, port)}: {_reason(exc)}") from exc
        yield url


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
    await sync_forever(hub.store, hub.config, Settings.from_env().home, interval_from_env(), source)


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


async def run(args: argparse.Namespace) -> int:
    tls = _tls(args)  # an unreadable certificate stops us before anything else
    settings = Settings.from_env()
    config = load(settings)  # a config mistake stops us before we bind
    if not args.no_workers:  # so does a sync target we could not reach (a missing secret…)
        from hub.spi.registry import document_source
        from hub.sync.loop import backoff_from_env, interval_from_env
        from hub.sync.tenants import open_targets

        interval_from_env()
        backoff_from_env()
        async with open_targets(config, settings.home) as pairs:
            if pairs:
                document_source()  # and so does having nothing that computes the documents
    limits = ApiLimits.from_env()
    background: list[BackgroundTask] = (
        [] if args.no_workers else [projection_workers, accounting_sync, scheduled_pulls]
    )
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
        ) as url,
    ):
        workers = "without workers" if args.no_workers else "with projection workers"
        logging.getLogger(logs.SERVICE_LOGGER).info("ledgerhub serving on %s %s", url, workers)
        await stop.wait()
    return 0
