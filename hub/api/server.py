"""Run the API on a socket: open the stores, build the app, serve until told to stop."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence

from aiohttp import web

from hub.api.app import BackgroundTask, build_app
from hub.api.context import ApiLimits, HubContext
from hub.api.key_cache import KeyCache
from hub.api.routing import ApiRoute
from hub.config import Config
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
) -> AsyncIterator[str]:
    """Serve the API (``core``: all of it by default, the projections' routes included) on
    ``host:port`` (0: any free port); yields its base URL."""
    app = build_app(hub, extra_routes=extra_routes, background=background, core=core)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_host, bound_port = runner.addresses[0][:2]
        yield f"http://{bound_host}:{bound_port}"
    finally:
        await runner.cleanup()
