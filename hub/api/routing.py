"""Routes with what they declare: method, path, auth, and the models the OpenAPI spec shows.

A route module exposes a list of ``ApiRoute``; ``build_app`` mounts them. Every route declares
its auth, so nothing can be mounted open by accident (the auth middleware refuses a route with
no declaration). Other stages declare theirs the same way::

    ApiRoute("GET", "/v1/projections", list_projections, "List projections",
             auth=requires(Access.OPERATE), response=ProjectionsOut)

What a route declares is also enforced before its handler runs (``ApiRoute.handler`` is the
declared handler behind this guard), so that no handler has to repeat it and a new route gets it
for free. Refused with 422 problem+json naming the parameter or field (``errors``):

- text PostgreSQL cannot store (NUL, ``%00`` or ``\\u0000``) in a path parameter, in a query
  parameter of a route that declares ``query``, or anywhere in the JSON body (keys included) of
  a route that declares ``body``;
- a query parameter not written as the OpenAPI document says: given more than once, an integer
  that is not plain digits (``10.0``, ``+10``, ``1_000``), a boolean other than ``true`` or
  ``false``, a date other than ``YYYY-MM-DD`` (``0.0``, ``2024-03-01T00:00``);
- a request header the route declares (``headers``) that is empty, too long, or not visible
  ASCII;
- a JSON body in which one object holds the same key twice (JSON parsers silently keep one of
  them; the log must never store something other than what was sent).

The handler's own validation (its pydantic models) does the rest. The OpenAPI document
(``hub.api.openapi``) lists what this guard may answer, from the same declaration.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any, Literal

import orjson
from aiohttp import web
from pydantic import BaseModel

from hub.api.bodies import JSON_BODY
from hub.domain.keys import Access
from hub.errors import InvalidInput

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

JSON = "application/json"
NO_NUL = "^[^\\u0000]*$"
"""The pattern the document gives text parameters: PostgreSQL text cannot hold NUL."""


@dataclass(frozen=True)
class Auth:
    """How a route authenticates its caller.

    - ``public``: nobody (health probes);
    - ``signature``: the provider's webhook signature, checked by the handler;
    - ``key``: a bearer key; with ``access`` set, a key whose scope grants that access;
    - ``session``: the web console's own sign-in and session, checked by its handlers
      (``hub.console``).
    """

    kind: Literal["public", "signature", "key", "session"]
    access: Access | None = None


PUBLIC = Auth("public")
SIGNATURE = Auth("signature")
ANY_KEY = Auth("key")
SESSION = Auth("session")


def requires(access: Access) -> Auth:
    """A bearer key whose scope grants ``access`` (``ingest``, ``read`` or ``operate``)."""
    return Auth("key", access)


@dataclass(frozen=True)
class Header:
    """An optional request header a route reads: 1 to ``max_length`` visible ASCII characters
    (``!`` to ``~``), else 422 naming it."""

    name: str
    description: str
    max_length: int = 255

    @property
    def schema(self) -> dict[str, Any]:
        """Its schema in the OpenAPI document."""
        return {"type": "string", "minLength": 1, "maxLength": self.max_length, "pattern": _VISIBLE}


_VISIBLE = "^[!-~]+$"


@dataclass(frozen=True)
class ApiRoute:
    """One route: where, who may call it, and what it takes and answers (for the spec).

    ``handler`` is the declared handler behind the guard described in the module docstring.
    """

    method: str
    path: str
    handler: Handler
    summary: str
    auth: Auth
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    errors: tuple[int, ...] = ()
    """Error statuses this route may answer besides those the spec derives from the rest of the
    declaration (auth: 401, 403; parameters: 422; a JSON body: 400, 413, 415, 422; the database:
    503; see ``hub.api.openapi``)."""
    status: int = 200
    """The status of a successful answer (202 when it queues work or appends for a worker)."""
    media_type: str = JSON
    """The media type of a successful answer."""
    csv: bool = False
    """Whether it also answers ``text/csv`` when the client asks (``Accept: text/csv``)."""
    body_required: bool = True
    """Whether a declared ``body`` must be sent (``False``: no body means the defaults)."""
    headers: tuple[Header, ...] = ()
    """The optional request headers it reads (``Idempotency-Key`` …)."""

    def __post_init__(self) -> None:
        declared = getattr(self.handler, _DECLARED, self.handler)
        object.__setattr__(self, "handler", _guarded(self, declared))

    @property
    def path_parameters(self) -> list[str]:
        """The names of the path's parameters (``{code}`` …), in order."""
        return _PATH_PARAM.findall(self.path)


_PATH_PARAM = re.compile(r"{([A-Za-z_][A-Za-z0-9_]*)}")
_DECLARED = "__ledgerhub_declared__"


def _guarded(route: ApiRoute, handler: Handler) -> Handler:
    @functools.wraps(handler)
    async def guarded(request: web.Request) -> web.StreamResponse:
        _check_path(request)
        _check_headers(request, route.headers)
        if route.query is not None:
            _check_query(request, route.query)
        if route.body is not None:
            await _check_body(request)
        return await handler(request)

    setattr(guarded, _DECLARED, handler)
    return guarded


# ---------------------------------------------------------------------- text the database holds


def text_problem(value: str) -> str | None:
    """Why PostgreSQL cannot store ``value`` as text, or None."""
    if "\x00" in value:
        return "must not contain the NUL character (\\u0000): PostgreSQL cannot store it"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "must be Unicode text (it holds a lone surrogate, which is not UTF-8)"
    return None


def _refuse(
    field: str, message: str, *, index: int | None = None, within: str | None = None
) -> InvalidInput:
    where = f"{within}[{index}] field {field!r}" if within is not None else f"{field!r}"
    return InvalidInput(
        f"{where}: {message}", errors=[{"index": index, "field": field, "message": message}]
    )


def _check_path(request: web.Request) -> None:
    for name, value in request.match_info.items():
        problem = text_problem(value)
        if problem is not None:
            raise _refuse(name, problem)


def _check_headers(request: web.Request, headers: tuple[Header, ...]) -> None:
    for header in headers:
        value = request.headers.get(header.name)
        if value is not None and not (
            len(value) <= header.max_length and re.fullmatch(_VISIBLE, value)
        ):
            raise _refuse(header.name, f"must be 1 to {header.max_length} visible ASCII characters")


# ---------------------------------------------------------------------- query parameters


@dataclass(frozen=True)
class QueryParameter:
    """A query parameter as the OpenAPI document shows it (``schema`` without ``null``)."""

    name: str
    schema: dict[str, Any]
    required: bool


def query_parameters(model: type[BaseModel]) -> list[QueryParameter]:
    """The query parameters ``model`` declares, by alias, with their schemas as documented:
    without the ``null`` of an optional field (absent is how a query says none), and text that
    PostgreSQL cannot store (NUL) excluded."""
    return [replace(p, schema=copy.deepcopy(p.schema)) for p in _query_parameters(model)]


@functools.cache
def _query_parameters(model: type[BaseModel]) -> tuple[QueryParameter, ...]:
    schema = model.model_json_schema()
    schema = _inline(schema, schema.get("$defs", {}))
    required = set(schema.get("required", []))
    return tuple(
        QueryParameter(name, _storable_text(_without_null(prop)), name in required)
        for name, prop in schema.get("properties", {}).items()
    )


def _inline(value: Any, defs: dict[str, Any]) -> Any:
    """``value`` with each ``$ref`` to ``#/$defs/…`` replaced by what it names (a parameter's
    schema stands alone in the document)."""
    if isinstance(value, dict):
        ref = value.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            rest = {k: v for k, v in value.items() if k != "$ref"}
            return {**_inline(defs[ref.removeprefix("#/$defs/")], defs), **rest}
        return {k: _inline(v, defs) for k, v in value.items() if k != "$defs"}
    if isinstance(value, list):
        return [_inline(v, defs) for v in value]
    return value


def _without_null(prop: dict[str, Any]) -> dict[str, Any]:
    prop = dict(prop)
    if prop.get("default", 0) is None:
        del prop["default"]
    branches = prop.get("anyOf")
    if branches is not None:
        kept = [b for b in branches if b.get("type") != "null"]
        del prop["anyOf"]
        if len(kept) == 1:
            prop = {**kept[0], **prop}
        else:
            prop["anyOf"] = kept
    return prop


def _storable_text(schema: dict[str, Any]) -> dict[str, Any]:
    if "anyOf" in schema:
        return {**schema, "anyOf": [_storable_text(b) for b in schema["anyOf"]]}
    free = not ({"pattern", "enum", "const"} & schema.keys())
    if schema.get("type") == "string" and free and schema.get("format") not in _DATES:
        return {**schema, "pattern": NO_NUL}
    return schema


_DATES = ("date", "date-time")
_WIRE: dict[str, tuple[re.Pattern[str], str]] = {
    "integer": (re.compile(r"-?[0-9]+"), "must be an integer written in digits"),
    "boolean": (re.compile(r"true|false"), "must be true or false"),
    "date": (re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}"), "must be a date written YYYY-MM-DD"),
}


def _wire_kinds(schema: dict[str, Any]) -> Iterator[str | None]:
    for branch in schema.get("anyOf", [schema]):
        if branch.get("type") == "string" and branch.get("format") == "date":
            yield "date"
        elif branch.get("type") in ("integer", "boolean"):
            yield branch["type"]
        else:
            yield None


@functools.cache
def _declared(model: type[BaseModel]) -> frozenset[str]:
    return frozenset(p.name for p in _query_parameters(model))


@functools.cache
def _wire_rules(model: type[BaseModel]) -> dict[str, tuple[re.Pattern[str], str]]:
    rules = {}
    for parameter in _query_parameters(model):
        kinds = set(_wire_kinds(parameter.schema))
        if len(kinds) == 1 and (kind := kinds.pop()) is not None:
            rules[parameter.name] = _WIRE[kind]
    return rules


def _check_query(request: web.Request, model: type[BaseModel]) -> None:
    rules = _wire_rules(model)
    declared = _declared(model)
    for name in request.query:
        problem = text_problem(name)
        if problem is not None:
            raise _refuse(name, f"the parameter's name {problem}")
        values = request.query.getall(name)
        if name in declared and len(values) > 1:
            raise _refuse(name, "give this parameter once")
        for value in values:
            problem = text_problem(value)
            if problem is not None:
                raise _refuse(name, problem)
        rule = rules.get(name)
        if rule is not None and not rule[0].fullmatch(values[0]):
            raise _refuse(name, rule[1])


# ---------------------------------------------------------------------- JSON bodies


class _Duplicate(Exception):
    pass


_ESCAPED_COLONS = (b"\\u003a", b"\\u003A")


def _no_key_twice(raw: bytes, value: Any) -> bool:
    """True only if no object in the JSON text ``raw`` (parsed by orjson as ``value``) holds a
    key twice; False when that is not known (the standard library's parse then looks).

    orjson keeps the last of a key given twice, and its rendering of ``value`` writes a ``:``
    for each member kept and for each colon inside a string, never escaping one. The text sent
    has a ``:`` for each member it holds and each colon written plainly in a string, plus the
    colons written ``\\u003a``. Equal counts mean no member was dropped. A text with
    ``\\\\u003a`` (an escaped backslash, then ``u003a``) is counted too high, never too low: it
    only sends the body to the exact parse. A duplicate always drops a ``:``, so it is never
    missed."""
    try:
        kept = orjson.dumps(value).count(b":")
    except orjson.JSONEncodeError:  # nested deeper than orjson writes: ask the exact parse
        return False
    return kept == raw.count(b":") + sum(raw.count(e) for e in _ESCAPED_COLONS)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        raise _Duplicate
    return found


class _Members(list[tuple[str, Any]]):
    """An object's members as written, duplicates kept (to find where a problem is)."""


def _first_problem(value: Any) -> tuple[list[str | int], str] | None:
    stack: list[tuple[list[str | int], Any]] = [([], value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, _Members):
            seen: set[str] = set()
            children = []
            for key, child in item:
                problem = text_problem(key)
                if problem is not None:
                    return [*path, key], f"the key {problem}"
                if key in seen:
                    return [*path, key], "this key is given twice in one object"
                seen.add(key)
                children.append(([*path, key], child))
            stack.extend(reversed(children))
        elif isinstance(item, list):
            stack.extend(([*path, i], child) for i, child in reversed(list(enumerate(item))))
        elif isinstance(item, str):
            problem = text_problem(item)
            if problem is not None:
                return path, problem
    return None


async def _check_body(request: web.Request) -> None:
    if not request.body_exists:
        return
    content_type = request.content_type
    if content_type != JSON and not content_type.endswith("+json"):
        return  # the handler refuses it (415)
    raw = await request.read()  # kept by aiohttp for the handler; 413 past the limit
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass  # orjson refuses it (the handler answers 400); the standard library may not
    else:
        if b"\\u0000" not in raw and _no_key_twice(raw, value):
            request[JSON_BODY] = value  # ``read_json`` answers the handler with it
            return
    try:
        json.loads(raw, object_pairs_hook=_unique_keys)
        if b"\\u0000" not in raw:
            return
    except _Duplicate:
        pass
    except (ValueError, RecursionError):
        return  # not JSON, or not JSON we read the same way: the handler answers it (400)
    found = _first_problem(json.loads(raw, object_pairs_hook=_Members))
    if found is None:
        return
    path, message = found
    if len(path) >= 2 and isinstance(path[0], str) and isinstance(path[1], int):
        # an item of a batch, named as the handler's validation names it: index, then field
        rest = path[2:] or path[:1]
        field = ".".join(str(part) for part in rest)
        raise _refuse(field, message, index=path[1], within=path[0])
    raise _refuse(".".join(str(part) for part in path) or "body", message)
