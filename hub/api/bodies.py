"""Reading request bodies: media type, JSON, pydantic validation into problem items.

A JSON body is read with orjson, which would turn an integer beyond 64 bits into a float; such a
number (or a decimal with more digits than a float keeps) is refused with a 422 naming its path,
never stored as a different value (see ``hub.domain.events``, "What the log can hold").
"""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel, ValidationError

from hub.domain.events import JsonProblem, inexact_numbers
from hub.errors import InvalidInput, RejectedError, UnsupportedMediaType

M = TypeVar("M", bound=BaseModel)

JSON_BODY = web.RequestKey("ledgerhub_json_body", object)
"""The body as parsed by the route's guard (``hub.api.routing``), when it parsed it with orjson
and found nothing to refuse: ``read_json`` answers with it instead of parsing again."""

_UNPARSED = object()


def problem_items(exc: ValidationError, *, list_field: str | None = None) -> list[dict[str, Any]]:
    """Pydantic errors as ``{"index", "field", "message"}``; ``index`` from ``list_field[i]``."""
    items = []
    for error in exc.errors(include_url=False):
        loc: list[str | int] = list(error["loc"])
        index = None
        if list_field and len(loc) >= 2 and loc[0] == list_field and isinstance(loc[1], int):
            index = loc[1]
            loc = loc[2:]
        within = (error.get("ctx") or {}).get("json_path")  # a value inside a JSON field
        if within:
            loc.append(within)
        items.append(
            {
                "index": index,
                "field": ".".join(str(part) for part in loc) or None,
                "message": error["msg"],
            }
        )
    return items


def json_problem_items(
    problems: list[JsonProblem], *, list_field: str | None = None
) -> list[dict[str, Any]]:
    """Problems found in a JSON body as problem items; ``index`` from ``list_field[i]``."""
    items = []
    for problem in problems:
        path = list(problem.path)
        index = None
        if list_field and len(path) >= 2 and path[0] == list_field and isinstance(path[1], int):
            index = path[1]
            path = path[2:]
        items.append(
            {
                "index": index,
                "field": ".".join(str(part) for part in path) or None,
                "message": problem.message,
            }
        )
    return items


def describe(items: list[dict[str, Any]]) -> str:
    """One line naming the first problem (and how many more)."""
    first = items[0]
    where = " ".join(
        part
        for part in (
            f"event {first['index']}" if first["index"] is not None else "",
            f"field {first['field']!r}" if first["field"] else "",
        )
        if part
    )
    more = f" (and {len(items) - 1} more)" if len(items) > 1 else ""
    return f"{where or 'body'}: {first['message']}{more}"


async def read_json(request: web.Request, *, list_field: str | None = None) -> Any:
    """The body as JSON: 415 unless it is JSON, 413 past the body limit, 400 if unparsable,
    422 naming each number that would not be kept as written (``index`` from
    ``list_field[i]``)."""
    if request.content_type != "application/json" and not request.content_type.endswith("+json"):
        raise UnsupportedMediaType(
            f"send the body as application/json (got {request.content_type or 'no content type'})"
        )
    body = await request.read()
    value = request.get(JSON_BODY, _UNPARSED)
    if value is _UNPARSED:
        try:
            value = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise RejectedError(f"the body is not valid JSON: {exc}") from exc
    inexact = inexact_numbers(body)
    if inexact:
        items = json_problem_items(inexact, list_field=list_field)
        raise InvalidInput(describe(items), errors=items)
    return value


def validate(model: type[M], value: Any, *, list_field: str | None = None) -> M:
    """``value`` as ``model``, or 422 naming each bad item's index and field."""
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        items = problem_items(exc, list_field=list_field)
        raise InvalidInput(describe(items), errors=items) from exc
