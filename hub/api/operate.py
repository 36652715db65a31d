"""Operator routes (keys with ``operate``): projections' status, replay and rebuild jobs, parked
events. The work itself is done by the worker holding the projection's lease (see
``hub.runtime.operate``); these routes queue it and report on it.

Tenancy: replay and rebuild touch every tenant's events, so they need an ``operate`` key issued
for all tenants (``*``); a key of one tenant sees and acts on the parked events of its tenant's
events only.

Each action is recorded in the audit trail (``hub.api.audit.record``: the key's id and the
client address) once its input has been checked and before it is queued or done.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from hub.api.audit import record
from hub.api.auth import current_key
from hub.api.bodies import read_json, validate
from hub.api.context import context
from hub.api.events import json_response
from hub.api.routing import ApiRoute, requires
from hub.domain.audit import MOVABLE_PARKED, AuditAction
from hub.domain.keys import ALL_TENANTS, Access
from hub.domain.projections import ALL_PARKED, OPEN_PARKED, Job, ParkedEvent, ProjectionStatus
from hub.errors import Forbidden, NotFound
from hub.store.jobs import Jobs
from hub.store.parked import Parked
from hub.store.projections import ProjectionStore

OPERATE = requires(Access.OPERATE)
POSITION_MAX = 2**63 - 1
"""The largest position, job or parked id (PostgreSQL ``bigint``)."""


class ProjectionsOut(BaseModel):
    """``GET /v1/projections``: each projection, with each partition of it in ``partitions``
    (one, partition 0, for a projection that is not partitioned)."""

    projections: list[ProjectionStatus]


class ReplayIn(BaseModel):
    """``POST /v1/projections/{name}/replay``: re-apply positions ``from``..``to``, with
    ``from <= to <= the projection's position`` (else 422)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, strict=True)

    from_: Annotated[int, Field(alias="from", ge=1, le=POSITION_MAX)]
    to: Annotated[int, Field(ge=1, le=POSITION_MAX)]
    send: bool = False
    """Also call the projection's side effects (off unless asked for)."""
    partition: Annotated[int, Field(ge=0, le=255)] | None = None
    """Replay only this partition's tenants (default: every partition); 422 if the projection
    has no such partition."""


class RebuildIn(BaseModel):
    """``POST /v1/projections/{name}/rebuild`` (the body is optional)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    send: bool = False


class ParkedQuery(BaseModel):
    """``GET /v1/parked`` query."""

    model_config = ConfigDict(extra="forbid")

    projection: str | None = None
    status: Literal["open", "all"] = "open"
    after: Annotated[int, Field(ge=0, le=POSITION_MAX)] = 0
    limit: Annotated[int, Field(ge=1, le=1000)] = 100


class ParkedOut(BaseModel):
    """A page of parked events; pass ``next`` as ``after`` for the next page (null at the end)."""

    parked: list[ParkedEvent]
    next: int | None


def _store(request: web.Request) -> ProjectionStore:
    return ProjectionStore.over(context(request).store)


def _for_all_tenants(request: web.Request, what: str) -> None:
    key = current_key(request)
    if key.tenant != ALL_TENANTS:
        raise Forbidden(
            f"{what} touches every tenant's events: it needs an operate key for all tenants "
            f"('{ALL_TENANTS}'), not one of tenant {key.tenant!r}"
        )


def _job_response(job: Job) -> web.Response:
    response = json_response(job.model_dump(mode="json"), status=202)
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    return response


def _number(request: web.Request, name: str, what: str) -> int:
    """The path's id ``name``: 404 unless it is one (digits, within ``bigint``)."""
    text = request.match_info[name]
    if not (text.isascii() and text.isdigit() and int(text) <= POSITION_MAX):
        raise NotFound(f"no {what} {text!r}")
    return int(text)


async def _optional_json(request: web.Request) -> Any:
    return await read_json(request) if request.body_exists else {}


async def list_projections(request: web.Request) -> web.Response:
    """Every projection: state, position, head, lag, parked count, lease holder, and the same
    for each of its partitions."""
    statuses = await _store(request).status()
    return json_response(ProjectionsOut(projections=statuses).model_dump(mode="json"))


async def replay_projection(request: web.Request) -> web.Response:
    """Queue a replay of a position range; 202 with the job (follow ``Location``)."""
    _for_all_tenants(request, "a replay")
    body = validate(ReplayIn, await read_json(request))
    name = request.match_info["name"]
    await _store(request).require(name)
    subject = {"projection": name, "from": body.from_, "to": body.to, "send": body.send}
    await record(request, AuditAction.REPLAY, {**subject, "partition": body.partition})
    job = await Jobs(_store(request)).enqueue(
        name,
        "replay",
        from_position=body.from_,
        to_position=body.to,
        send=body.send,
        partition=body.partition,
    )
    return _job_response(job)


async def rebuild_projection(request: web.Request) -> web.Response:
    """Queue a rebuild into fresh tables, swapped in when caught up; 202 with the job."""
    _for_all_tenants(request, "a rebuild")
    body = validate(RebuildIn, await _optional_json(request))
    name = request.match_info["name"]
    await _store(request).require(name)
    await record(request, AuditAction.REBUILD, {"projection": name, "send": body.send})
    job = await Jobs(_store(request)).enqueue(name, "rebuild", send=body.send)
    return _job_response(job)


async def get_job(request: web.Request) -> web.Response:
    """A replay or rebuild job: state and progress (``done`` of ``total``)."""
    job = await Jobs(_store(request)).get(_number(request, "id", "job"))
    return json_response(job.model_dump(mode="json"))


async def list_parked(request: web.Request) -> web.Response:
    """Parked events, oldest first (open ones unless ``status=all``)."""
    query = validate(ParkedQuery, dict(request.query))
    key = current_key(request)
    found = await Parked(_store(request)).find(
        projection=query.projection,
        statuses=OPEN_PARKED if query.status == "open" else ALL_PARKED,
        tenant=None if key.tenant == ALL_TENANTS else key.tenant,
        after_id=query.after,
        limit=query.limit,
    )
    page = ParkedOut(parked=found, next=found[-1].id if len(found) == query.limit else None)
    return json_response(page.model_dump(mode="json"))


async def _parked_of_key(request: web.Request, action: AuditAction) -> tuple[Parked, int]:
    """The parked event of the path, if the key's tenant covers it (else 404); the action on
    it recorded in the audit trail."""
    store = _store(request)
    parked_id = _number(request, "id", "parked event")
    event = await Parked(store).get(parked_id)
    key = current_key(request)
    tenant = (await store.read_one(event.position)).tenant
    if not key.may_access_tenant(tenant):
        raise NotFound(f"no parked event {parked_id}")
    if event.status in MOVABLE_PARKED:  # else the action is refused (422), unaudited
        subject = {
            "parked_id": parked_id,
            "projection": event.projection,
            "position": event.position,
        }
        await record(request, action, subject, tenant=tenant)
    return Parked(store), parked_id


async def retry_parked(request: web.Request) -> web.Response:
    """Ask the projection's worker to apply a parked event again; 202 (status ``retry``)."""
    parked, parked_id = await _parked_of_key(request, AuditAction.PARKED_RETRY)
    event = await parked.request_retry(parked_id)
    return json_response(event.model_dump(mode="json"), status=202)


async def skip_parked(request: web.Request) -> web.Response:
    """Give up on a parked event (status ``skipped``)."""
    parked, parked_id = await _parked_of_key(request, AuditAction.PARKED_SKIP)
    event = await parked.skip(parked_id)
    return json_response(event.model_dump(mode="json"))


ROUTES: tuple[ApiRoute, ...] = (
    ApiRoute(
        "GET", "/v1/projections", list_projections, "List projections",
        auth=OPERATE, response=ProjectionsOut,
    ),
    ApiRoute(
        "POST", "/v1/projections/{name}/replay", replay_projection, "Replay a position range",
        auth=OPERATE, body=ReplayIn, response=Job, status=202, errors=(404,),
    ),
    ApiRoute(
        "POST", "/v1/projections/{name}/rebuild", rebuild_projection, "Rebuild a projection",
        auth=OPERATE, body=RebuildIn, body_required=False, response=Job, status=202,
        errors=(404,),
    ),
    ApiRoute(
        "GET", "/v1/jobs/{id}", get_job, "A replay or rebuild job",
        auth=OPERATE, response=Job, errors=(404,),
    ),
    ApiRoute(
        "GET", "/v1/parked", list_parked, "List parked events",
        auth=OPERATE, query=ParkedQuery, response=ParkedOut,
    ),
    ApiRoute(
        "POST", "/v1/parked/{id}/retry", retry_parked, "Retry a parked event",
        auth=OPERATE, response=ParkedEvent, status=202, errors=(404,),
    ),
    ApiRoute(
        "POST", "/v1/parked/{id}/skip", skip_parked, "Skip a parked event",
        auth=OPERATE, response=ParkedEvent, errors=(404,),
    ),
)  # fmt: skip
