"""``POST /v1/events`` (append a batch) and ``GET /v1/events`` (read after a position)."""

from __future__ import annotations

import base64
from typing import Any

import orjson
from aiohttp import web

from hub import telemetry
from hub.api.auth import current_key
from hub.api.bodies import read_json, validate
from hub.api.context import REQUEST_ID, context
from hub.api.models import (
    MAX_BATCH_EVENTS,
    AppendResultsOut,
    EventBatchIn,
    EventPageOut,
    EventQuery,
)
from hub.api.routing import ApiRoute, requires
from hub.domain.events import AppendResult, NewEvent, RecordedEvent, new_ids
from hub.domain.keys import Access
from hub.errors import BatchTooLarge, Forbidden


def json_response(value: Any, *, status: int = 200) -> web.Response:
    """An ``application/json`` response serialised by orjson."""
    return web.Response(status=status, body=orjson.dumps(value), content_type="application/json")


def results_body(results: list[AppendResult]) -> dict[str, Any]:
    """The ``{"results": [...]}`` answer to an append."""
    return {
        "results": [
            {"external_id": r.external_id, "status": r.status, "position": r.position}
            for r in results
        ]
    }


async def append_events(request: web.Request) -> web.Response:
    """Append a batch atomically; results in request order, duplicates answered as such."""
    body = await read_json(request, list_field="events")
    items = body.get("events") if isinstance(body, dict) else None
    if isinstance(items, list) and len(items) > MAX_BATCH_EVENTS:
        raise BatchTooLarge(
            f"a batch holds at most {MAX_BATCH_EVENTS} events, this one {len(items)}"
        )
    batch = validate(EventBatchIn, body, list_field="events")
    key = current_key(request)
    # The request's own meta, written once per batch; the span's traceparent goes in here so
    # that ``telemetry.traced`` (in the store) finds it and copies no event.
    added = {"request_id": request[REQUEST_ID], "api_key": key.prefix}
    parent = telemetry.traceparent()
    if parent is not None:
        added[telemetry.TRACEPARENT] = parent
    events = []
    ids = new_ids(len(batch.events))
    for index, item in enumerate(batch.events):
        tenant = item.tenant or key.tenant
        if not key.may_ingest(tenant, item.source):
            raise Forbidden(
                f"event {index}: the key ({key.scope}, tenant {key.tenant}) may not append for "
                f"source {item.source!r} of tenant {tenant!r}",
                errors=[{"index": index, "field": "source", "message": "outside the key's scope"}],
            )
        events.append(
            # EventIn has validated every field with NewEvent's own types: no second pass
            # (id and raw given, so no default factory is consulted)
            NewEvent.model_construct(
                id=ids[index],
                raw=None,
                tenant=tenant,
                source=item.source,
                external_id=item.external_id,
                type=item.type,
                occurred_at=item.occurred_at,
                data=item.data,
                stream=item.stream,
                expected_version=item.expected_version,
                meta=_with(item.meta, added),
            )
        )
    results = await context(request).store.append(events)
    return json_response(results_body(results))


def _with(meta: dict[str, Any], added: dict[str, str]) -> dict[str, Any]:
    """``meta`` with the request's fields; a ``traceparent`` the client sent is kept."""
    if telemetry.TRACEPARENT in meta:
        return {**meta, **{k: v for k, v in added.items() if k != telemetry.TRACEPARENT}}
    return {**meta, **added}


def _event_out(event: RecordedEvent) -> dict[str, Any]:
    out = event.model_dump(mode="json", exclude={"raw", "hash"})
    out["raw"] = None if event.raw is None else base64.b64encode(event.raw).decode("ascii")
    out["hash"] = event.hash.hex()
    return out


async def read_events(request: web.Request) -> web.Response:
    """Events of the key's tenant after ``after``, in position order, optionally filtered."""
    query = validate(EventQuery, dict(request.query))
    key = current_key(request)
    events = await context(request).store.read_after(
        query.after,
        limit=query.limit,
        tenant=key.tenant,
        source=query.source,
        type=query.type,
        stream=query.stream,
    )
    next_after = events[-1].position if events else query.after
    return json_response({"events": [_event_out(e) for e in events], "next_after": next_after})


ROUTES = [
    ApiRoute(
        "POST",
        "/v1/events",
        append_events,
        "Append a batch of events (all or nothing)",
        auth=requires(Access.INGEST),
        body=EventBatchIn,
        response=AppendResultsOut,
        errors=(400, 409, 413, 415, 422),
    ),
    ApiRoute(
        "GET",
        "/v1/events",
        read_events,
        "Read the key's tenant's events after a position",
        auth=requires(Access.READ),
        query=EventQuery,
        response=EventPageOut,
        errors=(422,),
    ),
]
