"""Routes with what they declare: method, path, auth, and the models the OpenAPI spec shows.

A route module exposes a list of ``ApiRoute``; ``build_app`` mounts them. Every route declares
its auth, so nothing can be mounted open by accident (the auth middleware refuses a route with
no declaration). Other stages declare theirs the same way::

    ApiRoute("GET", "/v1/projections", list_projections, "List projections",
             auth=requires(Access.OPERATE), response=ProjectionsOut)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from aiohttp import web
from pydantic import BaseModel

from hub.domain.keys import Access

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Auth:
    """How a route authenticates its caller.

    - ``public``: nobody (health probes);
    - ``signature``: the provider's webhook signature, checked by the handler;
    - ``key``: a bearer key; with ``access`` set, a key whose scope grants that access.
    """

    kind: Literal["public", "signature", "key"]
    access: Access | None = None


PUBLIC = Auth("public")
SIGNATURE = Auth("signature")
ANY_KEY = Auth("key")


def requires(access: Access) -> Auth:
    """A bearer key whose scope grants ``access`` (``ingest``, ``read`` or ``operate``)."""
    return Auth("key", access)


@dataclass(frozen=True)
class ApiRoute:
    """One route: where, who may call it, and what it takes and answers (for the spec)."""

    method: str
    path: str
    handler: Handler
    summary: str
    auth: Auth
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    errors: tuple[int, ...] = ()
    """Error statuses this route may answer besides the auth ones (documented in the spec)."""
