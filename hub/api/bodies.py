"""Reading request bodies: media type, JSON, pydantic validation into problem items."""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel, ValidationError

from hub.errors import InvalidInput, RejectedError, UnsupportedMediaType

M = TypeVar("M", bound=BaseModel)


def problem_items(exc: ValidationError, *, list_field: str | None = None) -> list[dict[str, Any]]:
    """Pydantic errors as ``{"index", "field", "message"}``; ``index`` from ``list_field[i]``."""
    items = []
    for error in exc.errors(include_url=False):
        loc = list(error["loc"])
        index = None
        if list_field and len(loc) >= 2 and loc[0] == list_field and isinstance(loc[1], int):
            index = loc[1]
            loc = loc[2:]
        items.append(
            {
                "index": index,
                "field": ".".join(str(part) for part in loc) or None,
                "message": error["msg"],
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


async def read_json(request: web.Request) -> Any:
    """The body as JSON: 415 unless it is JSON, 413 past the body limit, 400 if unparsable."""
    if request.content_type != "application/json" and not request.content_type.endswith("+json"):
        raise UnsupportedMediaType(
            f"send the body as application/json (got {request.content_type or 'no content type'})"
        )
    body = await request.read()
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RejectedError(f"the body is not valid JSON: {exc}") from exc


def validate(model: type[M], value: Any, *, list_field: str | None = None) -> M:
    """``value`` as ``model``, or 422 naming each bad item's index and field."""
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        items = problem_items(exc, list_field=list_field)
        raise InvalidInput(describe(items), errors=items) from exc
