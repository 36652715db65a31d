"""RFC 9457 problem+json for every error response: ours, aiohttp's (404/405/413) and crashes."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

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
}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


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
    except (RetriableError, SchemaError) as exc:
        log.warning("request %s: service unavailable: %s", request_id, exc)
        response = problem(
            503,
            "the event store is unavailable; retry later",
            slug="unavailable",
            headers={"Retry-After": "5"},
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
