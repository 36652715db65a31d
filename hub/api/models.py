"""The API's request and response bodies (the OpenAPI schemas are generated from these)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from hub.domain.events import EventType, ExternalId, JsonObject, Name

MAX_BATCH_EVENTS = 1000


class EventIn(BaseModel):
    """One event to append. ``tenant`` defaults to the key's tenant."""

    model_config = ConfigDict(extra="forbid")

    source: Name
    external_id: ExternalId
    type: EventType
    occurred_at: AwareDatetime
    data: JsonObject
    stream: Name | None = None
    expected_version: Annotated[int, Field(ge=0, le=2_147_483_647)] | None = None
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
