"""Bearer-key authentication, checked against the access each route declares."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from hub.api.context import API_KEY, ROUTE_AUTH, context
from hub.api.problems import Handler
from hub.domain.keys import ApiKey, key_digest
from hub.errors import Forbidden, Unauthenticated

_BEARER = "bearer "


def current_key(request: web.Request) -> ApiKey:
    """The key that authenticated this request (only on key-authenticated routes)."""
    return request[API_KEY]


async def _authenticate(request: web.Request) -> ApiKey:
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith(_BEARER) or not header[len(_BEARER) :].strip():
        raise Unauthenticated("this route needs an API key: Authorization: Bearer <key>")
    key = await context(request).find_key(key_digest(header[len(_BEARER) :].strip()))
    if key is None:
        raise Unauthenticated("the API key is not known")
    state = key.state(datetime.now(UTC))
    if state != "active":
        raise Unauthenticated(f"the API key {key.prefix}… is {state}")
    return key


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Enforce the matched route's declared auth; refuse routes that declare none."""
    match = request.match_info
    if match.http_exception is not None:  # 404/405: nothing to protect
        raise match.http_exception
    auth = request.app[ROUTE_AUTH].get(match.route)
    if auth is None:  # fail closed
        raise Forbidden("this route declares no authentication and is refused")
    if auth.kind == "key":
        key = await _authenticate(request)
        if auth.access is not None and key.scope.access is not auth.access:
            raise Forbidden(f"the key's scope {key.scope} does not grant {auth.access} access")
        request[API_KEY] = key
    return await handler(request)
