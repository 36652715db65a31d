"""What a projection's HTTP routes use: the supported surface of the hub's API for plugins.

A projection returns its routes from ``Projection.routes()``; the API mounts them beside its own
(and documents them in ``/openapi.json``). A route module builds ``ApiRoute`` values::

    READ = requires(Access.READ)

    async def trial_balance(request: web.Request) -> web.StreamResponse:
        \"\"\"The trial balance of the key's tenant as of a date.\"\"\"
        query = validate(TrialBalanceQuery, dict(request.query))
        tenant = read_tenant(request, query.tenant)
        async with reading(request, "the ledger has not been built yet") as conn:
            ...
        return json_response(body.model_dump(mode="json"))

    ROUTES = (ApiRoute("GET", "/v1/ledger/trial-balance", trial_balance, "The trial balance",
                       auth=READ, query=TrialBalanceQuery, response=TrialBalanceOut),)

- Routes: ``ApiRoute``, ``Auth``, ``requires``, ``Access`` (a projection's route needs a key:
  the API refuses to mount one that is public or signature-checked), ``Header`` (an optional
  request header a route reads, checked and documented).
- Reading the request: ``validate`` (a pydantic model, or 422 naming each bad field),
  ``read_json`` (the JSON body; 415, 413, 400), ``read_tenant`` (the tenant a key may read),
  ``current_key`` (the ``ApiKey`` that authenticated the request), ``request_id``.
- Answering: ``json_response``, ``csv_response`` and ``wants_csv`` (``Accept: text/csv``).
  Raise the errors of ``hub.errors`` (``NotFound``, ``Forbidden``, ``InvalidInput`` …): the API
  answers them as problem+json.
- The database: ``reading`` (a connection to read the projection's views with; 404 while no
  worker has built them, 503 while the database is away), ``append`` (append events to the log
  as this request, e.g. an analyst's decision that the projection then applies).
- Paging: ``PageCursor``, the type of an ``after`` query parameter that takes the previous
  page's ``next`` (empty or absent: the first page).

What a route declares is enforced before its handler runs, for every route alike (see
``hub.api.routing``): text PostgreSQL cannot store (NUL) in a path or query parameter or a JSON
body, a query parameter given twice or not written as documented (integers in digits, booleans
``true``/``false``, dates ``YYYY-MM-DD``), and a JSON object with the same key twice are 422
naming the parameter or field. The OpenAPI document lists every status a route can answer from
its declaration (``errors`` adds the route's own, such as 404).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Annotated, Any

import asyncpg
from aiohttp import web
from pydantic import WithJsonSchema

from hub.api.auth import client_of, current_key
from hub.api.bodies import read_json, validate
from hub.api.context import REQUEST_ID, context
from hub.api.events import json_response
from hub.api.reads import csv_response, read_tenant, wants_csv
from hub.api.routing import NO_NUL, ApiRoute, Auth, Handler, Header, requires
from hub.domain.events import AppendResult, NewEvent
from hub.domain.keys import Access, ApiKey
from hub.errors import InvalidInput, NotFound, StoreUnavailable
from hub.store.pool import Connection
from hub.store.projections import ProjectionStore

__all__ = [
    "REQUEST_ID",
    "Access",
    "ApiKey",
    "ApiRoute",
    "Auth",
    "Connection",
    "Handler",
    "Header",
    "PageCursor",
    "append",
    "csv_response",
    "current_key",
    "json_response",
    "read_json",
    "read_tenant",
    "reading",
    "request_id",
    "request_meta",
    "requires",
    "validate",
    "wants_csv",
]


def request_id(request: web.Request) -> str:
    """The id of this request (also in its log lines and its ``X-Request-Id`` answer)."""
    return request[REQUEST_ID]


def request_meta(request: web.Request) -> dict[str, Any]:
    """The ``meta`` of an event this request appends: its request id, the key's prefix and id,
    and the client address the key check resolved (``--trust-proxy`` honoured) — who and from
    where, for the audit trail."""
    key = current_key(request)
    return {
        "request_id": request_id(request),
        "api_key": key.prefix,
        "key_id": str(key.id),
        "client": client_of(request),
    }


PAGE_CURSOR = "page-cursor"
"""The OpenAPI ``format`` of a ``PageCursor``."""

PageCursor = Annotated[
    str,
    WithJsonSchema(
        {
            "type": "string",
            "format": PAGE_CURSOR,
            "pattern": NO_NUL,
            "description": "the `next` of the previous page (empty or absent: the first page); "
            "anything else is refused (422)",
        }
    ),
]
"""An ``after`` query parameter: the previous page's ``next``, opaque to the client. The route
treats an empty one as absent (a script's first ``after=$NEXT``)."""

_CONNECTION_LOST = (
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,
    asyncpg.InsufficientResourcesError,
    OSError,
)


@contextlib.asynccontextmanager
async def reading(request: web.Request, not_built: str) -> AsyncIterator[Connection]:
    """A connection (the hub's role) to read a projection's views with. Database errors are
    translated at this boundary: ``NotFound`` with ``not_built`` as its detail while a table or
    view it reads does not exist yet (no worker has run the projection); ``StoreUnavailable``
    (503) while the database is away; ``InvalidInput`` (422) for text the database cannot
    store."""
    try:
        async with ProjectionStore.over(context(request).store).pool.acquire() as conn:
            yield conn
    except (asyncpg.UndefinedTableError, asyncpg.UndefinedFunctionError) as exc:
        raise NotFound(not_built) from exc
    except (asyncpg.CharacterNotInRepertoireError, asyncpg.UntranslatableCharacterError) as exc:
        raise InvalidInput(f"the database cannot store text of this request: {exc}") from exc
    except _CONNECTION_LOST as exc:
        raise StoreUnavailable(f"reading the projection failed: {exc}") from exc


async def append(request: web.Request, events: Sequence[NewEvent]) -> list[AppendResult]:
    """Append ``events`` to the log, atomically, as the hub's ingestion does (duplicates by
    ``(tenant, source, external_id)`` answered as such). The route checks the key may."""
    return await context(request).store.append(list(events))
