"""Metrics and traces: one OpenTelemetry ``MeterProvider`` (and ``TracerProvider``) per process.

The provider is built when this module is first imported. Its reader is the OpenTelemetry
Prometheus exporter, registered on a registry of its own (not ``prometheus_client``'s global
one, and no HTTP server of the exporter's): ``GET /metrics`` calls ``render()``.

What is measured, and who calls what:

- ``events.appended`` / ``events.duplicate``: ``EventStore`` after each committed group.
- ``projections.update`` / ``projections.unknown``: a snapshot of ``ProjectionStore.status()``,
  taken by whoever renders (``GET /metrics`` awaits it first); the observable gauges only read
  that snapshot, so collecting never touches the database.
- ``sync.call`` / ``sync.retry`` / ``sync.document``: the accounting sender.

- ``http.server.request.duration``: the access log (``hub.api.access``), one per answered request,
  by method, route and status (the 5xx rate the alert rules watch).

Export over OTLP (DESIGN "Logs"): the standard ``OTEL_*`` variables, read once when the
provider is built (``OtlpSettings``). With ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or the
``…_TRACES_ENDPOINT`` / ``…_METRICS_ENDPOINT`` of one signal) set, spans go to an
OTLP/HTTP (protobuf) exporter through a batch processor, and metrics through a periodic reader
(``OTEL_METRIC_EXPORT_INTERVAL``, default 60 s), beside the Prometheus reader, which keeps
serving ``GET /metrics``. ``OTEL_SDK_DISABLED=true`` or ``OTEL_TRACES_EXPORTER`` /
``OTEL_METRICS_EXPORTER=none`` turn a signal's export off; headers, timeout, compression and
certificates are the exporters' own ``OTEL_EXPORTER_OTLP_*`` variables; ``OTEL_SERVICE_NAME``
and ``OTEL_RESOURCE_ATTRIBUTES`` name the resource (default service name ``ledgerhub``). Both
providers shut down when the interpreter exits (the SDK's ``atexit`` hook), which flushes the
spans still queued and exports the metrics one last time, so a stopped process loses nothing.

Traces: ``tracer`` (an SDK ``TracerProvider`` of this process). Each HTTP request runs in a
server span (``hub.api.tracing``) and the events
it appends carry that span's W3C ``traceparent`` in ``meta`` (``traced``); ``context_from_meta``
continues the trace from an event (projection batch, target call).

Labels name tenants, sources, projections and targets only: never secrets or payload data.
"""

from __future__ import annotations

import os
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from opentelemetry.context import Context
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import CallbackOptions, Meter, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Link, get_current_span
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.exposition import generate_latest

from hub.domain.events import NewEvent

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The Prometheus text exposition format that ``render`` writes (legacy, underscored names)."""

DocumentOutcome = Literal["sent", "failed", "parked"]

_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class EventMetrics:
    """Counters of the event log's appends (by tenant and source)."""

    def __init__(self, meter: Meter) -> None:
        self._appended = meter.create_counter(
            "ledgerhub.events.appended",
            unit="{event}",
            description="Events appended to the log",
        )
        self._duplicate = meter.create_counter(
            "ledgerhub.events.duplicate",
            unit="{event}",
            description="Events refused as duplicates of a logged (tenant, source, external_id)",
        )

    def appended(self, tenant: str, source: str, count: int = 1) -> None:
        """``count`` events of ``tenant`` from ``source`` were appended."""
        self._appended.add(count, {"tenant": tenant, "source": source})

    def duplicate(self, tenant: str, source: str, count: int = 1) -> None:
        """``count`` events of ``tenant`` from ``source`` were answered ``duplicate``."""
        self._duplicate.add(count, {"tenant": tenant, "source": source})

    def results(self, outcomes: Iterable[tuple[str, str, str]]) -> None:
        """Count ``(tenant, source, status)`` append results in one call per series."""
        tally = Tally(outcomes)
        for (tenant, source, status), count in tally.items():
            if status == "appended":
                self.appended(tenant, source, count)
            else:
                self.duplicate(tenant, source, count)


@dataclass(frozen=True)
class ProjectionSnapshot:
    """What the gauges report for one projection."""

    name: str
    lag_events: int
    lag_seconds: float
    parked: int


class ProjectionMetrics:
    """Gauges of projection lag and parked events, read from the last ``update``."""

    def __init__(self, meter: Meter) -> None:
        self._snapshot: tuple[ProjectionSnapshot, ...] = ()
        self._known = False
        meter.create_observable_gauge(
            "ledgerhub.projection.lag_events",
            callbacks=[self._observe(lambda p: p.lag_events)],
            unit="{event}",
            description="Events in the log the projection has not applied yet",
        )
        meter.create_observable_gauge(
            "ledgerhub.projection.lag",
            callbacks=[self._observe(lambda p: p.lag_seconds)],
            unit="s",
            description="Age of the oldest event the projection has not applied yet",
        )
        meter.create_observable_gauge(
            "ledgerhub.parked_events",
            callbacks=[self._observe(lambda p: p.parked)],
            unit="{event}",
            description="Events parked by the projection (parked or waiting for a retry)",
        )
        meter.create_observable_gauge(
            "ledgerhub.projection.status_up",
            callbacks=[lambda _options: [Observation(1 if self._known else 0)]],
            description="1 if the last projection status read succeeded (the gauges are current)",
        )

    def update(self, projections: Sequence[ProjectionSnapshot]) -> None:
        """Replace the snapshot the gauges report."""
        self._snapshot = tuple(projections)
        self._known = True

    def unknown(self) -> None:
        """The status could not be read: report no lag series (rather than stale ones)."""
        self._snapshot = ()
        self._known = False

    def _observe(
        self, pick: Callable[[ProjectionSnapshot], float]
    ) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(_options: CallbackOptions) -> Iterable[Observation]:
            return [Observation(pick(p), {"projection": p.name}) for p in self._snapshot]

        return observe


class SyncMetrics:
    """Instruments of the accounting sync, called by the sender."""

    def __init__(self, meter: Meter) -> None:
        self._calls = meter.create_counter(
            "ledgerhub.target.calls",
            unit="{call}",
            description="Calls to accounting targets, by operation and outcome",
        )
        self._duration = meter.create_histogram(
            "ledgerhub.target.call.duration",
            unit="s",
            description="Duration of calls to accounting targets",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )
        self._retries = meter.create_counter(
            "ledgerhub.sync.retries",
            unit="{retry}",
            description="Target calls retried by the sync",
        )
        self._documents = meter.create_counter(
            "ledgerhub.sync.documents",
            unit="{document}",
            description="Accounting documents by outcome (sent, failed, parked)",
        )

    def call(self, target: str, operation: str, outcome: str, seconds: float) -> None:
        """One call to ``target`` (e.g. ``xero``) doing ``operation``, its outcome and duration.

        ``outcome`` is a short fixed word (``ok``, ``timeout``, ``rate_limited``, ``error`` …),
        never a message.
        """
        labels = {"target": target, "operation": operation, "outcome": outcome}
        self._calls.add(1, labels)
        self._duration.record(seconds, labels)

    def retry(self, target: str) -> None:
        """The sync is retrying a call to ``target``."""
        self._retries.add(1, {"target": target})

    def document(self, target: str, outcome: DocumentOutcome) -> None:
        """A document's sync to ``target`` ended ``sent``, ``failed`` or ``parked``."""
        self._documents.add(1, {"target": target, "outcome": outcome})


_HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class HttpMetrics:
    """The API's requests, by method, route and status (recorded by the access log)."""

    def __init__(self, meter: Meter) -> None:
        self._duration = meter.create_histogram(
            "ledgerhub.http.server.request.duration",
            unit="s",
            description="Duration of HTTP requests answered, by method, route and status",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        """One answered request: ``route`` is the route's pattern (``/v1/events``, or
        ``unmatched``), never the path a client sent, so the series stay few."""
        labels = {
            "method": method if method in _HTTP_METHODS else "_OTHER",
            "route": route,
            "status": str(status),
        }
        self._duration.record(seconds, labels)


_TRUE = ("true", "1", "yes")


@dataclass(frozen=True)
class OtlpSettings:
    """What the standard ``OTEL_*`` variables ask of the OTLP export (see the module docstring).

    The exporters read their own details (endpoint, headers, timeout …) from the same
    variables; this decides only whether each signal is exported, and the resource's name.
    """

    traces: bool = False
    metrics: bool = False
    default_service_name: bool = True
    """Whether to name the service ``ledgerhub`` (neither ``OTEL_SERVICE_NAME`` nor a
    ``service.name`` in ``OTEL_RESOURCE_ATTRIBUTES`` names it)."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> OtlpSettings:
        """Read the variables (default: this process's environment)."""
        env = os.environ if environ is None else environ

        def given(name: str) -> bool:
            return bool(env.get(name, "").strip())

        def wanted(signal: str) -> bool:
            if env.get("OTEL_SDK_DISABLED", "").strip().lower() in _TRUE:
                return False
            if env.get(f"OTEL_{signal}_EXPORTER", "otlp").strip().lower() == "none":
                return False
            return given("OTEL_EXPORTER_OTLP_ENDPOINT") or given(
                f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT"
            )

        named = given("OTEL_SERVICE_NAME") or "service.name=" in env.get(
            "OTEL_RESOURCE_ATTRIBUTES", ""
        )
        return cls(
            traces=wanted("TRACES"), metrics=wanted("METRICS"), default_service_name=not named
        )


class Telemetry:
    """The process's meter provider, its Prometheus registry, the OTLP exporters the
    ``OTEL_*`` variables ask for, and the instruments."""

    def __init__(self, otlp: OtlpSettings | None = None) -> None:
        otlp = OtlpSettings.from_env() if otlp is None else otlp
        self.otlp = otlp
        self.registry = CollectorRegistry(auto_describe=True)
        for collector in (ProcessCollector, PlatformCollector, GCCollector):
            collector(registry=self.registry)
        self.reader = PrometheusMetricReader(scope_info_enabled=False, registry=self.registry)
        readers: list[MetricReader] = [self.reader]
        if otlp.metrics:
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

            readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
        # Resource.create adds OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES.
        resource = Resource.create(
            {"service.name": "ledgerhub"} if otlp.default_service_name else {}
        )
        self.provider = MeterProvider(metric_readers=readers, resource=resource)
        self.tracer_provider = TracerProvider(resource=resource)
        if otlp.traces:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            self.tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        self.tracer = self.tracer_provider.get_tracer("ledgerhub")
        meter = self.provider.get_meter("ledgerhub")
        self.events = EventMetrics(meter)
        self.projections = ProjectionMetrics(meter)
        self.sync = SyncMetrics(meter)
        self.http = HttpMetrics(meter)

    def render(self) -> bytes:
        """Every metric, in the Prometheus text exposition format (``CONTENT_TYPE``)."""
        return generate_latest(self.registry)


TELEMETRY = Telemetry()
"""This process's telemetry (built once, on first import)."""

events = TELEMETRY.events
projections = TELEMETRY.projections
sync = TELEMETRY.sync
http = TELEMETRY.http
render = TELEMETRY.render
tracer = TELEMETRY.tracer

TRACEPARENT = "traceparent"
"""The ``meta`` key (and HTTP header) carrying the W3C trace context."""

_PROPAGATOR = TraceContextTextMapPropagator()


def traceparent() -> str | None:
    """The current span's W3C ``traceparent``, or None outside a (valid) span."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get(TRACEPARENT)


def traced(events: Sequence[NewEvent]) -> Sequence[NewEvent]:
    """``events`` with the current span's ``traceparent`` in their ``meta`` (unless they carry
    one already); unchanged outside a span."""
    parent = traceparent()
    if parent is None:
        return events
    return [
        e
        if TRACEPARENT in e.meta
        else e.model_copy(update={"meta": {**e.meta, TRACEPARENT: parent}})
        for e in events
    ]


def context_from_meta(meta: Mapping[str, object]) -> Context:
    """The trace context an event's ``meta`` carries (empty if none): pass it as ``context=``
    to ``tracer.start_as_current_span`` to continue the request's trace."""
    parent = meta.get(TRACEPARENT)
    return _PROPAGATOR.extract({TRACEPARENT: parent} if isinstance(parent, str) else {})


def links_from_metas(metas: Iterable[Mapping[str, object]], limit: int = 32) -> list[Link]:
    """A link to each distinct trace the events' ``meta`` carry (``limit`` at most): a
    projection batch holds events of many requests, so it links to their traces rather than
    continuing one."""
    seen: set[str] = set()
    links: list[Link] = []
    for meta in metas:
        parent = meta.get(TRACEPARENT)
        if not isinstance(parent, str) or parent[3:35] in seen:  # [3:35]: the trace id
            continue
        seen.add(parent[3:35])
        span = get_current_span(context_from_meta(meta)).get_span_context()
        if span.is_valid:
            links.append(Link(span))
            if len(links) >= limit:
                break
    return links


def context_from_headers(headers: Mapping[str, str]) -> Context:
    """The trace context of an incoming request's ``traceparent`` header (empty if none)."""
    parent = headers.get(TRACEPARENT)
    return _PROPAGATOR.extract({TRACEPARENT: parent} if parent else {})
