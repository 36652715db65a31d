"""A server span around every request, continuing the caller's W3C ``traceparent`` if sent.

Events appended while it is current carry its ``traceparent`` in ``meta`` (``hub.telemetry``).
"""

from __future__ import annotations

from aiohttp import web
from opentelemetry.trace import SpanKind

from hub import telemetry
from hub.api.problems import Handler


@web.middleware
async def trace_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Run the request in a span named after its route (``POST /v1/events``)."""
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    with telemetry.tracer.start_as_current_span(
        f"{request.method} {route}",
        context=telemetry.context_from_headers(request.headers),
        kind=SpanKind.SERVER,
        attributes={"http.request.method": request.method, "http.route": route},
    ) as span:
        response = await handler(request)
        span.set_attribute("http.response.status_code", response.status)
        return response
