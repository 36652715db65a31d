"""``GET /v1/runs``: the runs log of pulls, imports and sync runs (keys with ``operate``).

DESIGN "Runs": one row per pull, import or sync run (``hub.store.runs``), newest first, paged by
``before`` (pass the page's ``next``). Operate, like ``/v1/sync/runs``: a run row is operational
state. A key of one tenant sees that tenant's runs; a key for every tenant sees all of them.
"""

from __future__ import annotations

from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from hub.api.auth import current_key
from hub.api.bodies import validate
from hub.api.context import context
from hub.api.events import json_response
from hub.api.routing import ApiRoute, requires
from hub.domain.keys import ALL_TENANTS, Access
from hub.store.runs import Run, RunKind, RunLog


class RunsQuery(BaseModel):
    """``GET /v1/runs`` query: newest first, of one ``kind`` when given; pass ``next`` as
    ``before`` for more."""

    model_config = ConfigDict(extra="forbid")

    kind: RunKind | None = None
    before: Annotated[int, Field(ge=1, le=2**63 - 1)] | None = None
    limit: Annotated[int, Field(ge=1, le=500)] = 50


class RunsOut(BaseModel):
    """A page of runs; ``next`` is the ``before`` of the next page (null at the end)."""

    runs: list[Run]
    next: int | None


async def list_all_runs(request: web.Request) -> web.Response:
    """The latest pull, import and sync runs (of ``kind`` when given) of the key's tenant (every
    tenant's for an all-tenants key)."""
    query = validate(RunsQuery, dict(request.query))
    key = current_key(request)
    runs = await RunLog.over(context(request).store).recent(
        kind=query.kind,
        limit=query.limit,
        before=query.before,
        tenant=None if key.tenant == ALL_TENANTS else key.tenant,
    )
    page = RunsOut(runs=runs, next=runs[-1].id if len(runs) == query.limit else None)
    return json_response(page.model_dump(mode="json"))


ROUTES = (
    ApiRoute(
        "GET",
        "/v1/runs",
        list_all_runs,
        "List pull, import and sync runs",
        auth=requires(Access.OPERATE),
        query=RunsQuery,
        response=RunsOut,
    ),
)
