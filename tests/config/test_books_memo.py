"""``BooksConfig.remember`` keeps what it remembers free of reference cycles.

A remembered ``Unmappable`` that kept its traceback kept the frames of the mapper and every
local in them in cycles only the cyclic collector frees: in a worker booking a stream of
unmappable events that was tens of thousands of objects a second, and full collections that
stopped the worker for 100-300 ms every few seconds (the append-to-ledger p99 of
``python -m ops.bench``)."""

from __future__ import annotations

import gc
import uuid
from datetime import UTC, datetime

import pytest

from hub.config import books as books_module
from hub.config.books import BooksConfig, mappers
from hub.domain.events import RecordedEvent
from hub.errors import Unmappable


def _unmappable(n: int) -> RecordedEvent:
    sample = mappers()["shopify"].samples()[0]
    data = {**sample.data, "total_price": "409.945"}  # more than 2 decimal places
    now = datetime(2026, 10, 1, tzinfo=UTC)
    return RecordedEvent(
        position=n,
        id=uuid.uuid4(),
        tenant="default",
        source="shopify",
        external_id=f"order-{n}",
        type=sample.type,
        stream=f"shopify:order-{n}",
        stream_version=1,
        occurred_at=now,
        recorded_at=now,
        data=data,
        meta={},
        raw=None,
        hash=b"\0" * 32,
    )


def _map_all(books: BooksConfig, events: list[RecordedEvent]) -> list[str]:
    messages = []
    for event in events:
        try:
            books.map(event)
        except Unmappable as exc:
            messages.append(str(exc))
    return messages


def test_remembered_unmappable_events_leave_no_cyclic_garbage(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(books_module, "MEMO_SIZE", 50)  # so most are forgotten again
    books = BooksConfig(mappers=mappers())
    events = [_unmappable(n) for n in range(1, 201)]
    gc.collect()
    gc.disable()
    try:
        first = _map_all(books, events)  # computed, the first 150 forgotten
        again = _map_all(books, events[-50:])  # remembered
        garbage = gc.collect()
    finally:
        gc.enable()
    assert len(first) == len(events)
    assert again == first[-50:]
    assert "409.945" in first[0]
    # Before: about 50 objects in cycles per event (frames, cells, tracebacks, the batch's
    # context). A handful is the interpreter's own.
    assert garbage < len(events) // 4, f"{garbage} objects in cycles after 250 mappings"
