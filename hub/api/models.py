"""The API's request and response bodies (the OpenAPI schemas are generated from these)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictInt

from hub.domain.events import EventType, ExternalId, JsonObject, Name, OccurredAt

MAX_BATCH_EVENTS = 1000


def _written_time(value: Any) -> Any:
    """``occurred_at`` as the document says it is: an RFC 3339 string (a number of seconds
    would be read as a time the client did not write)."""
    if not isinstance(value, str | datetime):
        raise ValueError("must be a date-time string (RFC 3339), not a number")
    return value


class EventIn(BaseModel):
    """One event to append. ``tenant`` defaults to the key's tenant.

    What the log cannot hold as sent is refused (422 naming the field), never rewritten:
    ``occurred_at`` needs a UTC offset and a UTC instant within years 1-9999; text holds no NUL;
    a number in ``data`` or ``meta`` is an integer from -2**63 to 2**64-1 or a decimal a 64-bit
    float keeps as written (send others as strings).
    """

    model_config = ConfigDict(extra="forbid")

    source: Name
    external_id: ExternalId
    type: EventType
    occurred_at: Annotated[OccurredAt, BeforeValidator(_written_time)]
    data: JsonObject
    stream: Name | None = None
    expected_version: Annotated[StrictInt, Field(ge=0, le=2_147_483_647)] | None = None
    meta: JsonObject = Field(default_factory=dict)
    tenant: Name | None = None


class EventBatchIn(BaseModel):
    """``POST /v1/events``: a batch, appended whole or not at all."""

    model_config = ConfigDict(extra="forbid")

    events: Annotated[list[EventIn], Field(min_length=1, max_length=MAX_BATCH_EVENTS)]


class AppendResultOut(BaseModel):
    """What became of one event, in request order."""

    external_id: str
    status: Literal["appended", "duplicate"]
    position: int


class AppendResultsOut(BaseModel):
    """The answer to an append (a batch, or the events of one webhook delivery)."""

    results: list[AppendResultOut]


class EventQuery(BaseModel):
    """``GET /v1/events`` query: the key's tenant's events after a position, filtered."""

    model_config = ConfigDict(extra="forbid")

    after: Annotated[int, Field(ge=0, le=2**62)] = 0
    limit: Annotated[int, Field(ge=1, le=1000)] = 100
    source: Name | None = None
    type: Name | None = None
    stream: Name | None = None


class EventOut(BaseModel):
    """An event as the log holds it; ``raw`` base64, ``hash`` hex."""

    position: int
    id: uuid.UUID
    tenant: str
    source: str
    external_id: str
    type: str
    stream: str
    stream_version: int
    occurred_at: datetime
    recorded_at: datetime
    data: dict[str, Any]
    meta: dict[str, Any]
    raw: str | None = Field(description="the delivery's body bytes, base64")
    hash: str = Field(description="SHA-256 chain hash, hex")


class EventPageOut(BaseModel):
    """A page of events; ask again with ``after=next_after`` for more."""

    events: list[EventOut]
    next_after: int


class HealthOut(BaseModel):
    """Liveness or readiness."""

    status: Literal["ok", "ready"]


class ProblemItem(BaseModel):
    """One problem within a request: the item's index (for batches), its field, the message."""

    index: int | None = None
    field: str | None = None
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details (``application/problem+json``)."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[ProblemItem] = Field(default_factory=list)
