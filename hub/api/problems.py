"""RFC 9457 problem+json for every error response: ours, aiohttp's (404/405/413) and crashes.

Library errors that reach this boundary untranslated are answered for what they are rather
than as a crash: text PostgreSQL cannot store (``CharacterNotInRepertoireError``,
``UntranslatableCharacterError``: the request's own input, which the route guard in
``hub.api.routing`` should have refused first) is a 422, and a lost or refused database
connection is a 503 with ``Retry-After``, like the store's own ``StoreUnavailable``.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

import asyncpg
import orjson
from aiohttp import web

from hub.api.context import REQUEST_ID
from hub.errors import (
    BatchTooLarge,
    ConcurrencyConflict,
    Forbidden,
    InvalidInput,
    NotFound,
    RejectedError,
    RetriableError,
    SchemaError,
    SignatureInvalid,
    Unauthenticated,
    UnsupportedMediaType,
)

log = logging.getLogger(__name__)


class RateLimited(RejectedError):
    """A key made more requests than its rate limit allows (HTTP 429, ``Retry-After``)."""

    status = 429

    def __init__(self, detail: str, *, retry_after: float) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


PROBLEM_JSON = "application/problem+json"
_TYPE_BASE = "urn:ledgerhub:problem:"
_SLUGS: dict[type[RejectedError], str] = {
    InvalidInput: "invalid-input",
    BatchTooLarge: "too-large",
    ConcurrencyConflict: "concurrency-conflict",
    NotFound: "not-found",
    SignatureInvalid: "signature-invalid",
    Unauthenticated: "unauthenticated",
    Forbidden: "forbidden",
    UnsupportedMediaType: "unsupported-media-type",
    RateLimited: "rate-limited",
}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_UNSTORABLE_TEXT = (asyncpg.CharacterNotInRepertoireError, asyncpg.UntranslatableCharacterError)
"""The database refused text of the request (NUL, or not in its encoding)."""
_UNAVAILABLE = (
    RetriableError,
    SchemaError,
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,
    asyncpg.InsufficientResourcesError,
    # What asyncpg raises for the next statement (a COMMIT, say) on a session the server has
    # just ended (pg_ctl stop, a restart), before it sees the socket close: MagicStack/asyncpg#784.
    asyncpg.InternalClientError,
    ConnectionError,
)
"""The database is away, shutting down, out of connections, or its schema is not ours yet."""
RETRY_AFTER = "5"


def problem(
    status: int,
    detail: str,
    *,
    slug: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    instance: str | None = None,
) -> web.Response:
    """A problem+json response."""
    body: dict[str, Any] = {
        "type": _TYPE_BASE + slug if slug else "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = errors
    return web.Response(
        status=status, body=orjson.dumps(body), content_type=PROBLEM_JSON, headers=headers
    )


def _rejected(exc: RejectedError, request_id: str) -> web.Response:
    slug = next((s for cls, s in _SLUGS.items() if type(exc) is cls), None)
    headers = {"WWW-Authenticate": 'Bearer realm="ledgerhub"'} if exc.status == 401 else None
    if isinstance(exc, RateLimited):  # whole seconds, never 0: the bucket is empty until then
        headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after)))}
    return problem(
        exc.status,
        exc.detail,
        slug=slug or "rejected",
        errors=exc.errors,
        headers=headers,
        instance=f"urn:uuid:{request_id}",
    )


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every error into problem+json; log crashes with their request id, never send them."""
    request_id = request.headers.get("X-Request-Id") or str(uuid.uuid4())
    if len(request_id) > 100 or not request_id.isprintable():
        request_id = str(uuid.uuid4())
    request[REQUEST_ID] = request_id
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        detail = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else exc.reason
        response = problem(exc.status, detail or exc.reason, instance=f"urn:uuid:{request_id}")
        if exc.status == 405:
            response.headers["Allow"] = exc.headers.get("Allow", "")
    except RejectedError as exc:
        response = _rejected(exc, request_id)
    except _UNSTORABLE_TEXT as exc:
        log.warning("request %s: the database refused its text: %s", request_id, exc)
        response = problem(
            422,
            "the request holds text the database cannot store (such as the NUL character)",
            slug="invalid-input",
            instance=f"urn:uuid:{request_id}",
        )
    except _UNAVAILABLE as exc:
        log.warning("request %s: service unavailable: %s", request_id, exc)
        response = problem(
            503,
            "the event store is unavailable; retry later",
            slug="unavailable",
            headers={"Retry-After": RETRY_AFTER},
            instance=f"urn:uuid:{request_id}",
        )
    except Exception:
        log.exception("request %s: unhandled error", request_id)
        response = problem(
            500,
            f"an internal error occurred; quote request id {request_id} when reporting it",
            slug="internal",
            instance=f"urn:uuid:{request_id}",
        )
    response.headers["X-Request-Id"] = request_id
    return response
