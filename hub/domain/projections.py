"""What the projection runtime records and reports: leases, generations, jobs, parked events.

Partitions: a projection may run as K partitions (``hub.store.projections``, "Partitions"); a
lease, a checkpoint and a parked event belong to one partition, numbered 0 .. K-1. K = 1 is
partition 0, which is what every field defaults to."""

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
    partition: int = 0


class Generation(BaseModel):
    """One set of a projection's read-model tables with its checkpoint."""

    model_config = ConfigDict(frozen=True)

    projection: str
    generation: int
    version: int
    position: int
    tables: dict[str, str]
    state: Literal["building", "active", "retired"]
    partition: int = 0
    """The partition whose checkpoint ``position`` is."""
    partitions: int = 1
    """How many partitions this generation runs as (its K)."""


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
    partitions: int = 1
    """The K the job runs over (set when it starts)."""
    partition: int | None = None
    """A replay of this partition only; None: of every partition."""

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
    partition: int = 0
    """The partition that parked it (its tenant's, in its generation)."""


class PartitionStatus(BaseModel):
    """One partition of a projection's active generation: its checkpoint, lag, lease and state.

    ``lag_events`` is ``head - position``: log positions not yet covered, counted over every
    tenant (an upper bound of the partition's own events still to apply)."""

    model_config = ConfigDict(frozen=True)

    partition: int
    state: ProjectionState
    position: int
    lag_events: int
    lag_seconds: float
    parked: int
    holder: str | None
    lease_expires_at: datetime | None
    last_error: str | None


class ProjectionStatus(BaseModel):
    """One projection as ``ledgerhub status`` and ``GET /v1/projections`` report it.

    With K partitions, the projection's own fields sum its partitions up: ``position`` is the
    lowest checkpoint (so ``lag_events`` and ``lag_seconds`` are the largest), ``parked`` the
    total, ``holder`` the holder of partition 0 (every partition's is in ``partitions``),
    ``last_error`` the first partition's error, and ``state`` is ``stopped`` if any partition
    is not leased, else ``rebuilding``, ``failing`` or ``running``. With K = 1 they are those
    of its one partition, as before partitions existed."""

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
    partitions: list[PartitionStatus] = []
    """Each partition of the active generation (one for K = 1)."""
