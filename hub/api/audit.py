"""The audit trail over HTTP (``GET /v1/audit``, operate keys), and ``record``, with which the
operator routes append the audit event of what a request asks (``hub.domain.audit``): who is
the request's key, from where its client address as the key check resolved it.

A key for every tenant sees every entry; a key of one tenant sees that tenant's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from hub.api.auth import client_of, current_key
from hub.api.bodies import validate
from hub.api.context import REQUEST_ID, context
from hub.api.events import json_response
from hub.api.routing import ApiRoute, requires
from hub.domain.audit import Actor, AuditAction
from hub.domain.keys import ALL_TENANTS, Access, ApiKey
from hub.store.projections import ProjectionStore
from hub.usecases import audit


async def record(
    request: web.Request,
    action: AuditAction,
    subject: Mapping[str, Any],
    *,
    tenant: str | None = None,
    key: ApiKey | None = None,
) -> None:
    """Append the audit event of ``action`` on ``subject`` by this request's key (or ``key``:
    the web console's session key), from its client address (before the action is done)."""
    key = key or current_key(request)
    actor = Actor.of_key(key.id, key.prefix, key.tenant, client_of(request))
    meta = {"request_id": request.get(REQUEST_ID)}
    await audit.record(context(request).store, action, actor, subject, tenant=tenant, meta=meta)


class AuditQuery(BaseModel):
    """``GET /v1/audit`` query: newest first; pass ``next`` as ``before`` for more."""

    model_config = ConfigDict(extra="forbid")

    before: Annotated[int, Field(ge=1, le=2**63 - 1)] | None = None
    limit: Annotated[int, Field(ge=1, le=500)] = 50


class AuditEntryOut(BaseModel):
    """One audited action: where it is in the log, when, what, by whom (a key id, or
    ``cli:<user>``), with which key prefix, from where (a client address, or
    ``local:<host>``), and what it acted on."""

    model_config = ConfigDict(populate_by_name=True)

    position: int
    at: str
    tenant: str
    action: str
    by: str | None
    key_prefix: str | None
    from_: str | None = Field(alias="from")
    subject: dict[str, Any]


class AuditOut(BaseModel):
    """A page of the audit trail; ``next`` is the ``before`` of the next page (null: the end)."""

    entries: list[AuditEntryOut]
    next: int | None


async def list_audit(request: web.Request) -> web.Response:
    """The latest audited operator actions (and exception resolutions), newest first."""
    query = validate(AuditQuery, dict(request.query))
    key = current_key(request)
    entries = await audit.trail(
        ProjectionStore.over(context(request).store),
        limit=query.limit,
        before=query.before,
        tenant=None if key.tenant == ALL_TENANTS else key.tenant,
    )
    page = AuditOut(
        entries=[AuditEntryOut.model_validate(entry.as_json()) for entry in entries],
        next=entries[-1].position if len(entries) == query.limit else None,
    )
    return json_response(page.model_dump(mode="json", by_alias=True))


ROUTES = (
    ApiRoute(
        "GET",
        "/v1/audit",
        list_audit,
        "The audit trail of operator actions",
        auth=requires(Access.OPERATE),
        query=AuditQuery,
        response=AuditOut,
    ),
)
