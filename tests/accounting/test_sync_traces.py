"""A document's send continues the trace of the request that brought its latest event (the
``traceparent`` in the event's ``meta``), and each target call is a client span inside it."""

from __future__ import annotations

from pathlib import Path

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from opentelemetry.util.types import AttributeValue

from connectors.beancount import BeancountTarget
from hub import telemetry
from hub.store import EventStore
from hub.sync.sender import Sender
from projections.accounting import Accounting
from tests.accounting.harness import documents, running, settle, write_config
from tests.accounting.targets import CHART
from tests.ledger.harness import Books
from tests.ledger.scenarios import stripe_scenario

TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736
TRACEPARENT = f"00-{TRACE_ID:032x}-00f067aa0ba902b7-01"


def _attribute(span: ReadableSpan, key: str) -> AttributeValue:
    """``span``'s attribute ``key``, which every span these tests read carries."""
    assert span.attributes is not None, f"span {span.name} has no attributes"
    return span.attributes[key]


def _doc_key(span: ReadableSpan) -> str:
    key = _attribute(span, "ledgerhub.doc_key")
    assert isinstance(key, str)
    return key


async def test_a_send_continues_the_trace_of_its_events_request(
    dsn: str, store: EventStore, config: Path, books: Books, tmp_path: Path
) -> None:
    write_config(config, "per_transaction")
    scenario = stripe_scenario()
    traced = [
        e.model_copy(update={"meta": {**e.meta, "traceparent": TRACEPARENT}})
        for e in scenario.before_payout
    ]
    async with running(dsn):
        await store.append(traced)  # as if one HTTP request had brought them
        await store.append(scenario.payout_paid)  # no trace: its documents start their own
        await settle(books.conn, ("ledger", "accounting"))
    docs = await documents(books.conn)
    exporter = InMemorySpanExporter()
    processor = SimpleSpanProcessor(exporter)
    telemetry.TELEMETRY.tracer_provider.add_span_processor(processor)
    try:
        target = BeancountTarget(tmp_path / "b.beancount", CHART)
        await Sender(store, Accounting).run("default", target)
        spans = exporter.get_finished_spans()
    finally:
        processor.shutdown()

    sends = {_doc_key(s): s for s in spans if s.name.startswith("sync ")}
    calls = [s for s in spans if s.kind == SpanKind.CLIENT]
    assert set(sends) == set(docs)
    continued = {k for k, s in sends.items() if s.context.trace_id == TRACE_ID}
    assert continued  # the request's documents carry its trace id
    assert any("payout" in key for key in set(docs) - continued)  # the untraced one does not
    for key in continued:
        parent = sends[key].parent
        assert parent is not None
        assert parent.span_id == 0x00F067AA0BA902B7
    assert len(calls) == len(docs)
    for call in calls:  # each target call inside its document's span, same trace
        owner = sends[_doc_key(call)]
        assert call.parent is not None
        assert call.parent.span_id == owner.context.span_id
        assert call.context.trace_id == owner.context.trace_id
        assert _attribute(call, "ledgerhub.outcome") == "ok"


async def test_a_projection_batch_links_to_the_traces_of_its_events(
    dsn: str, store: EventStore, config: Path, books: Books
) -> None:
    write_config(config, "per_transaction")
    scenario = stripe_scenario()
    exporter = InMemorySpanExporter()
    processor = SimpleSpanProcessor(exporter)
    telemetry.TELEMETRY.tracer_provider.add_span_processor(processor)
    try:
        async with running(dsn):
            await store.append(
                [
                    e.model_copy(update={"meta": {**e.meta, "traceparent": TRACEPARENT}})
                    for e in scenario.before_payout
                ]
            )
            await settle(books.conn, ("ledger", "accounting"))
        spans = exporter.get_finished_spans()
    finally:
        processor.shutdown()
    batches = [
        s for s in spans if s.name == "project accounting" and _attribute(s, "ledgerhub.events")
    ]
    assert batches
    linked = {link.context.trace_id for s in batches for link in s.links}
    assert linked == {TRACE_ID}  # one request, one trace, linked once per batch
    assert all(len(s.links) <= 1 for s in batches)
