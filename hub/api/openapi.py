"""``GET /openapi.json``: the OpenAPI 3.1 document, generated from the routes and their models."""

from __future__ import annotations

import re
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

import hub
from hub.api.models import Problem
from hub.api.routing import ApiRoute

_REF = "#/components/schemas/{model}"
_PATH_PARAM = re.compile(r"{([a-z_]+)}")
_TEXT_RESPONSES = {("GET", "/metrics"): "text/plain; version=0.0.4"}
"""Routes answering text rather than JSON: (method, path) -> media type."""


def _problem_response(status: int) -> dict[str, Any]:
    return {
        "description": HTTPStatus(status).phrase,
        "content": {"application/problem+json": {"schema": {"$ref": _REF.format(model="Problem")}}},
    }


def _operation(route: ApiRoute) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": route.handler.__name__,
        "summary": route.summary,
        "description": (route.handler.__doc__ or "").strip(),
        "parameters": [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in _PATH_PARAM.findall(route.path)
        ],
    }
    if route.query is not None:
        schema = route.query.model_json_schema()
        required = set(schema.get("required", []))
        for name, prop in schema.get("properties", {}).items():
            op["parameters"].append(
                {"name": name, "in": "query", "required": name in required, "schema": prop}
            )
    if route.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": _REF.format(model=route.body.__name__)}}
            },
        }
    elif route.auth.kind == "signature":
        op["requestBody"] = {
            "required": True,
            "description": "the provider's own request body, signed by its scheme",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    ok: dict[str, Any] = {"description": "OK"}
    text = _TEXT_RESPONSES.get((route.method, route.path))
    if text is not None:
        ok["content"] = {text: {"schema": {"type": "string"}}}
    elif route.response is not None:
        ok["content"] = {
            "application/json": {"schema": {"$ref": _REF.format(model=route.response.__name__)}}
        }
    statuses = set(route.errors) | {500}
    if route.auth.kind == "key":
        op["security"] = [{"bearerKey": []}]
        statuses |= {401, 403}
    else:
        op["security"] = []
    if route.auth.kind == "signature":
        statuses.add(401)
    op["responses"] = {"200": ok} | {str(s): _problem_response(s) for s in sorted(statuses)}
    return op


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
            "schemas": schemas.get("$defs", {}),
            "securitySchemes": {"bearerKey": {"type": "http", "scheme": "bearer"}},
        },
    }
