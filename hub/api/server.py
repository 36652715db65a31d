"""Run the API on a socket: open the stores, build the app, serve until told to stop."""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Literal

from aiohttp import web

from hub.api.app import BackgroundTask, build_app
from hub.api.context import ApiLimits, HubContext
from hub.api.key_cache import KeyCache
from hub.api.routing import ApiRoute
from hub.config import Config
from hub.domain.keys import Network, Rate
from hub.errors import FatalError
from hub.store.events import EventStore
from hub.store.keys import KeyStore


@contextlib.asynccontextmanager
async def open_hub(
    dsn: str, config: Config, limits: ApiLimits | None = None
) -> AsyncIterator[HubContext]:
    """The stores on ``dsn`` as a ``HubContext``, closed on exit (``limits``: from the
    environment when not given)."""
    limits = limits or ApiLimits.from_env()
    store = await EventStore.open(dsn)
    try:
        keys = await KeyStore.open(dsn)
        try:
            cache = KeyCache(keys, ttl=limits.key_cache_seconds)
            async with keys.revocations(cache.clear):
                yield HubContext(dsn, store, keys, config, limits, cache)
        finally:
            await keys.close()
    finally:
        await store.close()


@contextlib.asynccontextmanager
async def serving(
    hub: HubContext,
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    extra_routes: Sequence[ApiRoute] = (),
    background: Sequence[BackgroundTask] = (),
    core: Sequence[ApiRoute] | None = None,
    tls: ssl.SSLContext | None = None,
    trusted_proxies: Sequence[Network] = (),
    rate_limit: Rate | Literal["env"] | None = "env",
    reuse_port: bool = False,
) -> AsyncIterator[str]:
    """Serve the API (``core``: all of it by default, the projections' routes included) on
    ``host:port`` (0: any free port), over HTTPS only when ``tls`` is given; yields its base
    URL. ``trusted_proxies`` and ``rate_limit``: see ``build_app``; ``reuse_port``: bind with
    ``SO_REUSEPORT``, so that several processes serve one port (``serve --processes``)."""
    app = build_app(
        hub,
        extra_routes=extra_routes,
        background=background,
        core=core,
        trusted_proxies=trusted_proxies,
        rate_limit=rate_limit,
    )
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, ssl_context=tls, reuse_port=reuse_port or None)
        await site.start()
        bound_host, bound_port = runner.addresses[0][:2]
        scheme = "https" if tls is not None else "http"
        yield f"{scheme}://{bound_host}:{bound_port}"
    finally:
        await runner.cleanup()


def tls_context(cert: str | Path, key: str | Path) -> ssl.SSLContext:
    """A server TLS context (TLS 1.2 at least) from a PEM certificate chain and its private
    key; ``FatalError`` naming the file when one cannot be read or they do not match."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    for what, path in (("certificate", cert), ("key", key)):
        try:
            Path(path).read_bytes()
        except OSError as exc:
            raise FatalError(f"cannot read the TLS {what} {path}: {exc.strerror or exc}") from exc
    try:
        context.load_cert_chain(cert, key, password=lambda: b"")  # never prompt
    except (ssl.SSLError, ValueError) as exc:
        raise FatalError(
            f"cannot use the TLS certificate {cert} with the key {key}: {exc}"
        ) from exc
    return context
