"""``GET /v1/health/connections``: each connection's health as the workers last checked it
(keys with ``operate``; DESIGN "Health and alerts").

A row per checked connection (a source's id, or ``sync:TARGET`` for a tenant's sync target):
``state`` ``ok`` or ``failing``, when it was last checked, what the check found, and since when it
has been in that state. A key of one tenant sees that tenant's connections; a key for every
tenant sees all of them. Connections no worker has checked yet are not listed.
"""

from __future__ import annotations

from datetime import datetime

from aiohttp import web
from pydantic import BaseModel

from hub.api.auth import current_key
from hub.api.context import context
from hub.api.events import json_response
from hub.api.routing import ApiRoute, requires
from hub.domain.health import HealthStateName
from hub.domain.keys import ALL_TENANTS, Access
from hub.store.health import HealthStore


class ConnectionHealthOut(BaseModel):
    """One connection's recorded health."""

    id: str
    tenant: str
    state: HealthStateName
    checked_at: datetime
    detail: str
    since: datetime


class ConnectionsHealthOut(BaseModel):
    """Every checked connection's health, by id."""

    connections: list[ConnectionHealthOut]


async def connections_health(request: web.Request) -> web.Response:
    """The health of the key's tenant's connections (every tenant's for an all-tenants key)."""
    key = current_key(request)
    states = await HealthStore.over(context(request).store).all(
        None if key.tenant == ALL_TENANTS else key.tenant
    )
    body = ConnectionsHealthOut(
        connections=[
            ConnectionHealthOut(
                id=h.connection,
                tenant=h.tenant,
                state=h.state,
                checked_at=h.checked_at,
                detail=h.detail,
                since=h.since,
            )
            for h in states
        ]
    )
    return json_response(body.model_dump(mode="json"))


ROUTES = (
    ApiRoute(
        "GET",
        "/v1/health/connections",
        connections_health,
        "Connection health",
        auth=requires(Access.OPERATE),
        response=ConnectionsHealthOut,
    ),
)
