"""The event log's models: what a caller appends, what the log holds, what an append answers."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

DEFAULT_TENANT = "default"

# PostgreSQL text and jsonb cannot hold NUL; refusing it here gives a clear 422 instead of a
# database error half-way through a group commit.
_NUL = "\x00"


def _no_nul_text(value: str) -> str:
    if _NUL in value:
        raise ValueError("must not contain the NUL character (\\u0000)")
    return value


def _no_nul_json(value: Any) -> Any:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            _no_nul_text(item)
        elif isinstance(item, dict):
            for key, child in item.items():
                _no_nul_text(key)
                stack.append(child)
        elif isinstance(item, list):
            stack.extend(item)
    return value


Name = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_no_nul_text)]
ExternalId = Annotated[str, Field(min_length=1, max_length=500), AfterValidator(_no_nul_text)]
EventType = Annotated[
    str,
    Field(min_length=3, max_length=200, pattern=r"^[a-z0-9_]+(\.[a-z0-9_]+)+$"),
]
JsonObject = Annotated[dict[str, Any], AfterValidator(_no_nul_json)]


class NewEvent(BaseModel):
    """An event to append. ``stream`` defaults to ``{source}/{external_id}``.

    ``expected_version``, when given, is the version the stream must be at just before this event
    (0 = the stream must not exist yet); a mismatch rejects the whole batch.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    tenant: Name = DEFAULT_TENANT
    source: Name
    external_id: ExternalId
    type: EventType
    occurred_at: AwareDatetime
    data: JsonObject
    stream: Name | None = None
    expected_version: Annotated[int, Field(ge=0)] | None = None
    meta: JsonObject = Field(default_factory=dict)
    raw: bytes | None = None
    id: uuid.UUID = Field(default_factory=uuid.uuid4)

    @property
    def stream_name(self) -> str:
        """The stream this event belongs to."""
        return self.stream if self.stream is not None else f"{self.source}/{self.external_id}"

    @property
    def idempotency_key(self) -> tuple[str, str, str]:
        """The (tenant, source, external_id) triple that is unique in the log."""
        return (self.tenant, self.source, self.external_id)


class RecordedEvent(BaseModel):
    """An event as the log holds it."""

    model_config = ConfigDict(frozen=True)

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
    raw: bytes | None
    hash: bytes


class AppendResult(BaseModel):
    """The outcome of one appended event, in request order."""

    model_config = ConfigDict(frozen=True)

    external_id: str
    status: Literal["appended", "duplicate"]
    position: int
    stream_version: int
