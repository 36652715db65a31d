"""What the projection runtime records and reports: leases, generations, jobs, parked events."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

JobKind = Literal["replay", "rebuild"]
JobState = Literal["queued", "running", "done", "failed"]
ParkedStatus = Literal["parked", "retry", "resolved", "skipped", "superseded"]
ProjectionState = Literal["running", "rebuilding", "stopped", "failing"]

OPEN_PARKED: tuple[ParkedStatus, ...] = ("parked", "retry")
"""Parked events still waiting for an operator or a retry."""
ALL_PARKED: tuple[ParkedStatus, ...] = ("parked", "retry", "resolved", "skipped", "superseded")


class Lease(BaseModel):
    """This process's right to run a projection; ``token`` fences its commits."""

    model_config = ConfigDict(frozen=True)

    projection: str
    holder: str
    token: int


class Generation(BaseModel):
    """One set of a projection's read-model tables with its checkpoint."""

    model_config = ConfigDict(frozen=True)

    projection: str
    generation: int
    version: int
    position: int
    tables: dict[str, str]
    state: Literal["building", "active", "retired"]


class Job(BaseModel):
    """An operator's replay or rebuild, run by the worker holding the projection's lease."""

    model_config = ConfigDict(frozen=True)

    id: int
    projection: str
    kind: JobKind
    from_position: int | None
    to_position: int | None
    send: bool
    state: JobState
    cursor: int
    done: int
    total: int
    generation: int | None
    error: str | None
    holder: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed")


class ParkedEvent(BaseModel):
    """An event a projection could not apply, set aside so the projection could go on."""

    model_config = ConfigDict(frozen=True)

    id: int
    projection: str
    generation: int
    position: int
    event_type: str
    error_type: str
    message: str
    traceback: str
    attempts: int
    first_seen: datetime
    last_seen: datetime
    status: ParkedStatus
    resolved_at: datetime | None


class ProjectionStatus(BaseModel):
    """One projection as ``ledgerhub status`` and ``GET /v1/projections`` report it."""

    model_config = ConfigDict(frozen=True)

    name: str
    state: ProjectionState
    version: int | None
    generation: int
    position: int
    head: int
    lag_events: int
    lag_seconds: float
    parked: int
    holder: str | None
    lease_expires_at: datetime | None
    side_effects: bool
    last_error: str | None
    rebuild_job: int | None
