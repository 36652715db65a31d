"""``GET /metrics``: Prometheus text from the OpenTelemetry SDK (see ``hub.telemetry``).

It needs an ``operate`` key for all tenants (``*``): the series name every tenant and source,
and the projections' lag is the operators' view (``GET /v1/projections``). Prometheus sends it
with ``authorization: {credentials_file: ...}`` in the scrape config.
"""

from __future__ import annotations

from aiohttp import web

from hub import telemetry
from hub.api.auth import current_key
from hub.api.context import context
from hub.api.routing import ApiRoute, requires
from hub.domain.keys import ALL_TENANTS, Access
from hub.errors import Forbidden
from hub.runtime import gauges


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text exposition (version 0.0.4) of this process's metrics, the projections'
    lag and parked counts and the connections' health (read now: ``hub.runtime.gauges``);
    needs an ``operate`` key for all tenants."""
    key = current_key(request)
    if key.tenant != ALL_TENANTS:
        raise Forbidden(
            f"metrics cover every tenant: they need an operate key for all tenants "
            f"('{ALL_TENANTS}'), not one of tenant {key.tenant!r}"
        )
    await gauges.refresh(context(request).store)
    return web.Response(body=telemetry.render(), headers={"Content-Type": telemetry.CONTENT_TYPE})


ROUTES = [
    ApiRoute(
        "GET",
        "/metrics",
        metrics,
        "Prometheus metrics",
        auth=requires(Access.OPERATE),
        media_type="text/plain; version=0.0.4",
    ),
]
