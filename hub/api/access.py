"""The API's logging middlewares (``hub.logs``): the request's context, and the access log.

``access_middleware`` runs outside ``problem_middleware``, so it sees every answer as sent
(problems included), and logs one ``info`` line per request on ``ledgerhub.access``: ``method``,
``path`` (never the query string, which may carry what should not be logged), ``status``,
``duration_ms``, ``request_id`` (as in the ``X-Request-Id`` answer header), and ``tenant`` when
a key was accepted; and it records the request in ``hub.telemetry.http`` (by method, route
pattern and status: the 5xx rate the alert rules watch). ``context_middleware`` runs inside it,
right after ``problem_middleware`` chose the request id, and binds ``request_id`` to every line
logged while the request is handled; ``tenant_middleware``, inside the key check, binds the
key's ``tenant``. The request's ``trace_id`` is added by ``hub.logs`` from its server span. Each
request runs in a task of its own (aiohttp), so what is bound ends with it; the access middleware
unbinds it all the same.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from aiohttp import web

from hub import logs, telemetry
from hub.api.context import API_KEY, REQUEST_ID
from hub.api.problems import Handler

_access = logging.getLogger(logs.ACCESS_LOGGER)


@web.middleware
async def access_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Log one line when the request has been answered (or failed to be)."""
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:  # a redirect or the like, raised past the problem layer
        status = exc.status
        raise
    finally:
        key = request.get(API_KEY)
        seconds = time.perf_counter() - started
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "unmatched"
        telemetry.http.request(request.method, route, status, seconds)
        fields: dict[str, Any] = {
            "method": request.method,
            "path": request.path,
            "status": status,
            "duration_ms": round(seconds * 1000, 1),
            "request_id": request.get(REQUEST_ID),
        }
        if key is not None:
            fields["tenant"] = key.tenant
        _access.info("request", extra=fields)
        logs.unbind("request_id", "tenant")


@web.middleware
async def context_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Bind the request id (chosen by ``problem_middleware``, outside) for the request."""
    logs.bind(request_id=request.get(REQUEST_ID))
    return await handler(request)


@web.middleware
async def tenant_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Bind the accepted key's tenant (set by the key check, outside) for the request."""
    key = request.get(API_KEY)
    if key is not None:
        logs.bind(tenant=key.tenant)
    return await handler(request)
