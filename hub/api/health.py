"""``GET /healthz`` (the process answers), ``GET /readyz`` (database reachable, schema current)."""

from __future__ import annotations

from aiohttp import web

from hub.api.context import context
from hub.api.events import json_response
from hub.api.models import HealthOut
from hub.api.problems import RETRY_AFTER, problem
from hub.api.routing import PUBLIC, ApiRoute
from hub.store.health import readiness_problem


async def healthz(request: web.Request) -> web.Response:
    """Alive."""
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready to serve: 503 problem+json naming what is wrong otherwise (with Retry-After)."""
    wrong = await readiness_problem(context(request).keys.pool)
    if wrong is not None:
        return problem(503, wrong, slug="not-ready", headers={"Retry-After": RETRY_AFTER})
    return json_response({"status": "ready"})


ROUTES = [
    ApiRoute("GET", "/healthz", healthz, "Liveness", auth=PUBLIC, response=HealthOut),
    ApiRoute("GET", "/readyz", readyz, "Readiness", auth=PUBLIC, response=HealthOut, errors=(503,)),
]
