"""A local OTLP/HTTP receiver (aiohttp on 127.0.0.1), as a collector's ``otlphttp`` receiver
behaves: ``POST /v1/traces`` and ``POST /v1/metrics`` take protobuf export requests (gzip or
not), decoded with ``opentelemetry-proto``, and answer an empty export response."""

from __future__ import annotations

import contextlib
import gzip
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field

from aiohttp import web
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import KeyValue

PROTOBUF = "application/x-protobuf"


@dataclass(frozen=True)
class Span:
    """A span received: its name, trace id (hex) and its resource's ``service.name``."""

    name: str
    trace_id: str
    service: str


@dataclass
class Receiver:
    """What the receiver got; ``url`` once started."""

    url: str = ""
    spans: list[Span] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    """Metric name → its latest sum over data points (a counter's total, a histogram's count)."""
    services: set[str] = field(default_factory=set)
    refused: list[str] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/traces", self._traces)
        app.router.add_post("/v1/metrics", self._metrics)
        return app

    async def _body(self, request: web.Request) -> bytes | None:
        if request.content_type != PROTOBUF:
            self.refused.append(f"{request.path}: content type {request.content_type}")
            return None
        body = await request.read()
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        return body

    async def _traces(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if body is None:
            return web.Response(status=415)
        export = ExportTraceServiceRequest.FromString(body)
        for resource_spans in export.resource_spans:
            service = _service(resource_spans.resource.attributes)
            self.services.add(service)
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.spans.append(Span(span.name, span.trace_id.hex(), service))
        answer = ExportTraceServiceResponse().SerializeToString()
        return web.Response(body=answer, content_type=PROTOBUF)

    async def _metrics(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if body is None:
            return web.Response(status=415)
        export = ExportMetricsServiceRequest.FromString(body)
        for resource_metrics in export.resource_metrics:
            self.services.add(_service(resource_metrics.resource.attributes))
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    kind = metric.WhichOneof("data")
                    points = getattr(metric, kind).data_points if kind else []
                    total = 0.0
                    for point in points:
                        if kind == "histogram":
                            total += point.count
                        else:
                            total += point.as_int or point.as_double
                    self.metrics[metric.name] = total
        answer = ExportMetricsServiceResponse().SerializeToString()
        return web.Response(body=answer, content_type=PROTOBUF)


def _service(attributes: Iterable[KeyValue]) -> str:
    for attribute in attributes:
        if attribute.key == "service.name":
            return str(attribute.value.string_value)
    return ""


@contextlib.asynccontextmanager
async def receiving() -> AsyncIterator[Receiver]:
    """A receiver listening on a free port of 127.0.0.1 for the block."""
    receiver = Receiver()
    runner = web.AppRunner(receiver.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    receiver.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield receiver
    finally:
        await runner.cleanup()
