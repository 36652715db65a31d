"""Assemble the aiohttp application: routes, middlewares, background tasks.

Background tasks are the hook other stages plug into ``ledgerhub serve``: each is an
``async def task(hub: HubContext) -> None`` started with the app and cancelled when it stops
(the projection workers are one: see ``hub.cli.serve``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from typing import Any

from aiohttp import web

from hub.api import events, health, ledger, metrics, operate, reconciliation, sync, webhooks
from hub.api.auth import auth_middleware
from hub.api.context import CONTEXT, ROUTE_AUTH, HubContext
from hub.api.events import json_response
from hub.api.openapi import openapi_document
from hub.api.problems import problem_middleware
from hub.api.routing import ANY_KEY, ApiRoute
from hub.api.tracing import trace_middleware

log = logging.getLogger(__name__)

BackgroundTask = Callable[[HubContext], Coroutine[Any, Any, None]]
"""Something ``serve`` runs beside the API for as long as it runs (e.g. projection workers)."""

CORE_ROUTES: tuple[ApiRoute, ...] = (
    *health.ROUTES,
    *metrics.ROUTES,
    *events.ROUTES,
    *webhooks.ROUTES,
    *operate.ROUTES,
    *ledger.ROUTES,
    *reconciliation.ROUTES,
    *sync.ROUTES,
)
OBSERVE_ROUTES: tuple[ApiRoute, ...] = (*health.ROUTES, *metrics.ROUTES)
"""What a process without the API serves for its operators (``worker --metrics-port``)."""


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
    core: Sequence[ApiRoute] = CORE_ROUTES,
) -> web.Application:
    """The API for ``hub``: the ``core`` routes (default: all of them) plus ``extra_routes``,
    running ``background`` tasks."""
    app = web.Application(
        middlewares=[trace_middleware, problem_middleware, auth_middleware],
        client_max_size=hub.limits.max_body_bytes,
    )
    app[CONTEXT] = hub
    routes = [*core, *extra_routes]
    routes.append(_openapi_route(routes))
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
