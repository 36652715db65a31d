"""``GET /v1/sync/runs``: the accounting sync's run log (keys with ``operate``).

Operate, not read: a run row is operational state (errors, retries, parked counts) like
``/v1/projections`` and ``/v1/parked``, not the tenant's books. A key of one tenant sees that
tenant's runs; a key for every tenant sees all of them.
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
from hub.store.projections import ProjectionStore
from hub.store.sync import SyncLog, SyncRun


class SyncRunsQuery(BaseModel):
    """``GET /v1/sync/runs`` query: newest first; pass ``next`` as ``before`` for more."""

    model_config = ConfigDict(extra="forbid")

    before: Annotated[int, Field(ge=1, le=2**63 - 1)] | None = None
    limit: Annotated[int, Field(ge=1, le=500)] = 50


class SyncRunsOut(BaseModel):
    """A page of runs; ``next`` is the ``before`` of the next page (null at the end)."""

    runs: list[SyncRun]
    next: int | None


async def list_runs(request: web.Request) -> web.Response:
    """The latest sync runs of the key's tenant (every tenant's for an all-tenants key)."""
    query = validate(SyncRunsQuery, dict(request.query))
    key = current_key(request)
    store = ProjectionStore.over(context(request).store)
    runs = await SyncLog(store).runs(
        limit=query.limit,
        before=query.before,
        tenant=None if key.tenant == ALL_TENANTS else key.tenant,
    )
    page = SyncRunsOut(
        runs=runs,
        next=runs[-1].id if len(runs) == query.limit else None,
    )
    return json_response(page.model_dump(mode="json"))


ROUTES = (
    ApiRoute(
        "GET",
        "/v1/sync/runs",
        list_runs,
        "List accounting sync runs",
        auth=requires(Access.OPERATE),
        query=SyncRunsQuery,
        response=SyncRunsOut,
    ),
)
