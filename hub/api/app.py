"""Assemble the aiohttp application: routes, middlewares, background tasks.

The routes are the hub's own (``CORE_ROUTES``) and those of every installed projection
(``Projection.routes()``, found by ``hub.spi.registry.discover``): ``api_routes``. The OpenAPI
document covers all of them.

Background tasks are the hook other stages plug into ``ledgerhub serve``: each is an
``async def task(hub: HubContext) -> None`` started with the app and cancelled when it stops
(the projection workers are one: see ``hub.cli.serve``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from typing import Any

from aiohttp import web

from hub.api import events, health, metrics, operate, sync, webhooks
from hub.api.auth import auth_middleware
from hub.api.context import CONTEXT, ROUTE_AUTH, HubContext
from hub.api.events import json_response
from hub.api.openapi import openapi_document
from hub.api.problems import problem_middleware
from hub.api.routing import ANY_KEY, ApiRoute
from hub.api.tracing import trace_middleware
from hub.errors import ConfigError
from hub.spi.projection import Projection
from hub.spi.registry import discover

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
) -> web.Application:
    """The API for ``hub``: the ``core`` routes (default: ``api_routes()``, the hub's and every
    installed projection's) plus ``extra_routes``, running ``background`` tasks; ``ConfigError``
    if a projection cannot be loaded or two routes share a method and path."""
    app = web.Application(
        middlewares=[trace_middleware, problem_middleware, auth_middleware],
        client_max_size=hub.limits.max_body_bytes,
    )
    app[CONTEXT] = hub
    routes = [*(api_routes() if core is None else core), *extra_routes]
    routes.append(_openapi_route(routes))
    _check_unique(routes)
    auth = {}
    for spec in routes:
        auth[app.router.add_route(spec.method, spec.path, spec.handler)] = spec.auth
    app[ROUTE_AUTH] = auth

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
    return app


def _log_end(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("background task %s stopped: %r", task.get_name(), task.exception())
