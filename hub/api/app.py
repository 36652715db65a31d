"""Assemble the aiohttp application: routes, middlewares, background tasks.

The routes are the hub's own (``CORE_ROUTES``) and those of every installed projection
(``Projection.routes()``, found by ``hub.spi.registry.discover``): ``api_routes``. The OpenAPI
document covers all of them.

Every request is logged (``hub.api.access``: one access-log line, and its request id and
tenant bound to whatever its handling logs).

Background tasks are the hook other stages plug into ``ledgerhub serve``: each is an
``async def task(hub: HubContext) -> None`` started with the app and cancelled when it stops
(the projection workers are one: see ``hub.cli.serve``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from typing import Any, Literal

from aiohttp import web

from hub.alerts import AlertChannel
from hub.api import audit, events, health, health_routes, metrics, operate, runs, sync, webhooks
from hub.api.access import access_middleware, context_middleware, tenant_middleware
from hub.api.auth import ANOMALIES, RATE_LIMITER, TRUSTED_PROXIES, AnomalyWatch, auth_middleware
from hub.api.context import CONTEXT, ROUTE_AUTH, HubContext
from hub.api.events import json_response
from hub.api.key_cache import RateLimiter, rate_from_env
from hub.api.openapi import openapi_document
from hub.api.problems import problem_middleware
from hub.api.routing import ANY_KEY, ApiRoute
from hub.api.tracing import trace_middleware
from hub.console import routes as console
from hub.domain.keys import Network, Rate
from hub.errors import ConfigError, LedgerhubError
from hub.spi.projection import Projection
from hub.spi.registry import discover
from hub.store.keys import USAGE_FLUSH_SECONDS

log = logging.getLogger(__name__)

BackgroundTask = Callable[[HubContext], Coroutine[Any, Any, None]]
"""Something ``serve`` runs beside the API for as long as it runs (e.g. projection workers)."""

CORE_ROUTES: tuple[ApiRoute, ...] = (
    *health.ROUTES,
    *metrics.ROUTES,
    *events.ROUTES,
    *webhooks.ROUTES,
    *operate.ROUTES,
    *sync.ROUTES,
    *runs.ROUTES,
    *health_routes.ROUTES,
    *audit.ROUTES,
)
"""The hub's own routes; the projections bring theirs (``api_routes``)."""
OBSERVE_ROUTES: tuple[ApiRoute, ...] = (*health.ROUTES, *metrics.ROUTES)
"""What a process without the API serves for its operators (``worker --metrics-port``)."""


def projection_routes(projections: Mapping[str, type[Projection]]) -> tuple[ApiRoute, ...]:
    """The routes of ``projections`` (each one's ``routes()``); ``ConfigError`` for a route that
    does not need a key (only the hub's health routes and webhook receivers may do without)."""
    found: list[ApiRoute] = []
    for name, projection in projections.items():
        for route in projection.routes():
            if route.auth.kind != "key":
                raise ConfigError(
                    f"projection {name!r}: {route.method} {route.path} must need a key "
                    f"(auth=requires(...)), not {route.auth.kind}"
                )
            found.append(route)
    return tuple(found)


def api_routes(projections: Mapping[str, type[Projection]] | None = None) -> tuple[ApiRoute, ...]:
    """The whole API: the core routes and those of ``projections`` (default: every installed
    one, ``hub.spi.registry.discover()``); ``ConfigError`` for a broken plugin."""
    return (*CORE_ROUTES, *projection_routes(discover() if projections is None else projections))


def _check_unique(routes: Sequence[ApiRoute]) -> None:
    seen: dict[tuple[str, str], ApiRoute] = {}
    for route in routes:
        other = seen.setdefault((route.method, route.path), route)
        if other is not route:
            raise ConfigError(
                f"{route.method} {route.path} is declared twice: by {other.handler.__module__} "
                f"and by {route.handler.__module__}"
            )


def _openapi_route(routes: Sequence[ApiRoute]) -> ApiRoute:
    document: dict[str, object] = {}

    async def openapi(request: web.Request) -> web.Response:
        """The OpenAPI 3.1 document of this API."""
        if not document:
            document.update(openapi_document(all_routes))
        return json_response(document)

    route = ApiRoute("GET", "/openapi.json", openapi, "This API's OpenAPI document", auth=ANY_KEY)
    all_routes = [*routes, route]
    return route


def build_app(
    hub: HubContext,
    *,
    extra_routes: Sequence[ApiRoute] = (),
    background: Sequence[BackgroundTask] = (),
    core: Sequence[ApiRoute] | None = None,
    trusted_proxies: Sequence[Network] = (),
    rate_limit: Rate | Literal["env"] | None = "env",
) -> web.Application:
    """The API for ``hub``: the ``core`` routes (default: ``api_routes()``, the hub's and every
    installed projection's) plus ``extra_routes``, running ``background`` tasks; ``ConfigError``
    if a projection cannot be loaded, two routes share a method and path, or
    ``LEDGERHUB_RATE_LIMIT`` is not a rate.

    ``trusted_proxies``: the proxies whose ``X-Forwarded-For`` names the client
    (``hub.api.auth``); ``rate_limit``: the default per-key limit (``"env"``:
    ``LEDGERHUB_RATE_LIMIT``; None: none). While it serves, the app writes the keys' use counts
    every ``USAGE_FLUSH_SECONDS`` and when it stops.
    """
    default_rate = rate_from_env() if rate_limit == "env" else rate_limit
    app = web.Application(
        middlewares=[
            trace_middleware,
            access_middleware,
            problem_middleware,
            context_middleware,
            auth_middleware,
            tenant_middleware,
        ],
        client_max_size=hub.limits.max_body_bytes,
    )
    app[CONTEXT] = hub
    app[TRUSTED_PROXIES] = tuple(trusted_proxies)
    app[RATE_LIMITER] = RateLimiter(default_rate)
    app[ANOMALIES] = AnomalyWatch(alerts=AlertChannel.from_config(hub.config))
    routes = [*(api_routes() if core is None else core), *extra_routes]
    routes.append(_openapi_route(routes))
    _check_unique(routes)
    auth = {}
    for spec in routes:
        auth[app.router.add_route(spec.method, spec.path, spec.handler)] = spec.auth
    app[ROUTE_AUTH] = auth
    if core is None:  # the whole API (``serve``) also serves the web console
        console.mount(app)

    async def run_background(app: web.Application) -> AsyncIterator[None]:
        tasks = [
            asyncio.create_task(task(hub), name=f"ledgerhub-{i}")
            for i, task in enumerate(background)
        ]
        for task in tasks:
            task.add_done_callback(_log_end)
        yield
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app.cleanup_ctx.append(run_background)
    app.cleanup_ctx.append(_usage_flusher(hub))

    async def drain_alerts(app: web.Application) -> None:
        await app[ANOMALIES].drain()  # the alerts still on their way

    app.on_cleanup.append(drain_alerts)
    return app


def _usage_flusher(
    hub: HubContext,
) -> Callable[[web.Application], contextlib.AbstractAsyncContextManager[None]]:
    """A cleanup context writing the keys' use counts periodically and on shutdown."""

    async def flush() -> None:
        try:
            await hub.keys.flush_usage()
        except LedgerhubError as exc:  # kept in memory for the next flush
            log.warning("could not write the keys' use counts: %s", exc)

    async def every_while() -> None:
        while True:
            await asyncio.sleep(USAGE_FLUSH_SECONDS)
            await flush()

    @contextlib.asynccontextmanager
    async def flusher(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(every_while(), name="ledgerhub-key-usage")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await flush()

    return flusher


def _log_end(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("background task %s stopped: %r", task.get_name(), task.exception())
