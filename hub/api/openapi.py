"""``GET /openapi.json``: the OpenAPI 3.1 document, generated from the routes and their models.

The document is the truth of what the server does: every status a route can answer is listed,
derived from its declaration (``hub.api.routing.ApiRoute``) as the server derives its behaviour
from it, plus the route's own ``errors``:

- every route: its success status (``status``: 200, or 202 for queued work) and 500 (a bug;
  the answer quotes the request id);
- a key: 401 (no key, or unknown, expired, rotated out, revoked), 403 (outside its scopes or
  tenant, or used from a client address its allowlist does not hold) and 429 with
  ``Retry-After`` (over its rate limit);
  a provider's signature: 401;
- a key or a signature is looked up in, and the route works on, the database: 503 with
  ``Retry-After`` while it is unreachable;
- path parameters, a declared query or body: 422 (a parameter or field that is invalid, or text
  PostgreSQL cannot store: see the guard in ``hub.api.routing``);
- a declared JSON body: 400 (not JSON), 413 (larger than ``LEDGERHUB_MAX_BODY_BYTES``), 415
  (not ``application/json``);
- a projection's read routes add 404 themselves (not built yet, or nothing by that name).

Errors are ``application/problem+json`` (``Problem``); a success is JSON of the route's response
model, or its ``media_type``, and ``text/csv`` and Excel too for a route that offers files.
"""

from __future__ import annotations

from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

import hub
from hub.api.models import Problem
from hub.api.routing import JSON, NO_NUL, ApiRoute, query_parameters
from hub.spi.exports import XLSX

_REF = "#/components/schemas/{model}"
_WHEN: dict[int, str] = {
    400: "the body is not JSON",
    401: "no valid credentials: the key is missing, unknown, expired or revoked (or, for a "
    "webhook, the provider's signature is missing, bad or stale)",
    403: "the key is valid but its scopes or tenant do not allow this, or it is used from a "
    "client address its allowlist does not hold (the detail names the address)",
    404: "nothing by that name (for a projection's route: or the projection has not been built "
    "yet)",
    409: "a stream's expected_version did not match; nothing was written",
    413: "the body is larger than the limit (LEDGERHUB_MAX_BODY_BYTES), or the batch holds more "
    "events than allowed",
    415: "the body is not application/json",
    422: "a parameter or field is invalid (errors name each one), including text PostgreSQL "
    "cannot store (NUL) and, in a JSON body, an object holding the same key twice",
    429: "the key is over its rate limit: retry after Retry-After seconds",
    500: "an internal error (a bug): quote the request id when reporting it",
    503: "the database is unreachable or not ready: retry after Retry-After seconds",
}


def _problem_response(status: int) -> dict[str, Any]:
    when = _WHEN.get(status)
    phrase = HTTPStatus(status).phrase
    return {
        "description": f"{phrase}: {when}" if when else phrase,
        "content": {"application/problem+json": {"schema": {"$ref": _REF.format(model="Problem")}}},
    }


def error_statuses(route: ApiRoute) -> set[int]:
    """Every error status ``route`` can answer (see the module docstring)."""
    statuses = set(route.errors) | {500}
    if route.auth.kind == "key":
        statuses |= {401, 403, 429, 503}
    elif route.auth.kind == "signature":
        statuses |= {401, 503}
    if route.path_parameters or route.headers or route.query is not None or route.body is not None:
        statuses.add(422)
    if route.body is not None:
        statuses |= {400, 413, 415}
    return statuses


def _success(route: ApiRoute) -> dict[str, Any]:
    ok: dict[str, Any] = {"description": HTTPStatus(route.status).phrase}
    content: dict[str, Any] = {}
    if route.media_type != JSON:
        content[route.media_type] = {"schema": {"type": "string"}}
    elif route.response is not None:
        content[JSON] = {"schema": {"$ref": _REF.format(model=route.response.__name__)}}
    else:  # a JSON document without a model (this document itself)
        content[JSON] = {"schema": {"type": "object"}}
    if route.csv:
        content["text/csv"] = {
            "schema": {
                "type": "string",
                "description": "the rows as CSV, a header line first (ask with Accept: text/csv)",
            }
        }
        content[XLSX] = {
            "schema": {
                "type": "string",
                "format": "binary",
                "description": "the rows as an Excel workbook with typed cells (ask with Accept: "
                "this media type)",
            }
        }
    if content:
        ok["content"] = content
    return ok


def _operation(route: ApiRoute) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": route.handler.__name__,
        "summary": route.summary,
        "description": (route.handler.__doc__ or "").strip(),
        "parameters": [
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": {"type": "string", "minLength": 1, "pattern": NO_NUL},
            }
            for name in route.path_parameters
        ],
    }
    op["parameters"].extend(
        {"name": h.name, "in": "header", "required": False, "description": h.description,
         "schema": h.schema}
        for h in route.headers
    )  # fmt: skip
    if route.query is not None:
        op["parameters"].extend(
            {"name": p.name, "in": "query", "required": p.required, "schema": p.schema}
            for p in query_parameters(route.query)
        )
    if route.body is not None:
        op["requestBody"] = {
            "required": route.body_required,
            "content": {JSON: {"schema": {"$ref": _REF.format(model=route.body.__name__)}}},
        }
    elif route.auth.kind == "signature":
        op["requestBody"] = {
            "required": True,
            "description": "the provider's own request body, signed by its scheme",
            "content": {JSON: {"schema": {"type": "object"}}},
        }
    op["security"] = [{"bearerKey": []}] if route.auth.kind == "key" else []
    op["responses"] = {str(route.status): _success(route)} | {
        str(s): _problem_response(s) for s in sorted(error_statuses(route))
    }
    return op


def _storable_strings(schema: Any, defs: dict[str, Any], seen: set[str]) -> None:
    """Give each text field of a request body (in place, through its ``$ref``s) the pattern that
    says what the route guard refuses: no NUL. Free-form objects (an event's ``data``) cannot
    say it in JSON Schema; their 422 is in the responses."""
    if isinstance(schema, list):
        for item in schema:
            _storable_strings(item, defs, seen)
        return
    if not isinstance(schema, dict):
        return
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith(_REF.format(model="")):
        name = ref.rsplit("/", 1)[1]
        if name not in seen:
            seen.add(name)
            _storable_strings(defs.get(name), defs, seen)
    free = not ({"pattern", "enum", "const"} & schema.keys())
    if schema.get("type") == "string" and free and "format" not in schema:
        schema["pattern"] = NO_NUL
    for value in schema.values():
        if isinstance(value, dict | list):
            _storable_strings(value, defs, seen)


def openapi_document(routes: Sequence[ApiRoute]) -> dict[str, Any]:
    """The spec of ``routes``, with every request and response model as a component schema."""
    models: dict[str, type[BaseModel]] = {"Problem": Problem}
    for route in routes:
        for model in (route.body, route.response):
            if model is not None:
                models[model.__name__] = model
    _, schemas = models_json_schema(
        [(model, "validation") for model in models.values()], ref_template=_REF
    )
    defs: dict[str, Any] = schemas.get("$defs", {})
    for route in routes:
        if route.body is not None:
            _storable_strings(defs[route.body.__name__], defs, set())
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ledgerhub",
            "version": hub.__version__ if hasattr(hub, "__version__") else "0",
        },
        "paths": paths,
        "components": {
            "schemas": defs,
            "securitySchemes": {"bearerKey": {"type": "http", "scheme": "bearer"}},
        },
    }
