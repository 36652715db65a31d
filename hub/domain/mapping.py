"""Declarative field mapping: source path → target field, with transforms.

A connector ships a ``MappingSchema``: for each kind of fact it builds (``sale``, ``payment`` …)
the root name its source object is known by (``order``), the target fields with their types, and
a default ``FieldSpec`` per field. A connection may override any field in its config::

    [connections.mapping.sale]
    status = { from = "order.financial_status", transform = "map",
               values = { paid = "paid", pending = "draft" }, default = "draft" }
    tax = { from = "sum(order.tax_lines[*].price)", transform = "decimal_string_to_minor" }

``from`` is a path (``order.customer.email``, ``order.lines[0].price``, ``order.lines[*].price``
for every element), ``sum(path)`` (exact: decimal strings are added as ``Decimal``) or
``concat(path, 'literal', …)``. ``transform`` is one name or a list applied in order:

- ``iso_to_date``: an ISO 8601 timestamp with offset (or Unix seconds, or a plain date) → the
  date in the tenant's time zone;
- ``utc_date``: a calendar date carried as midnight UTC (Stripe's ``arrival_date``: Unix seconds)
  → that date, not shifted into the tenant's time zone (where it would be the day before);
- ``map``: look the value up in ``values``; ``default`` when absent (an error without one);
- ``decimal_string_to_minor``: a decimal string → integer minor units of the fact's currency
  (refusing more decimals than the currency has);
- ``cents``: an integer that already is minor units (Stripe) → itself, refusing anything else.

``default`` also stands in for a path that is missing or null. Compiling refuses an unknown kind,
field, transform or option, a bad path, and a transform chain that cannot produce the field's
type, with a ``MappingError`` whose ``location`` names the config keys (the caller turns it into
``FILE:LINE``). Evaluating is a pure function of the source object and ``MappingEnv``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hub.domain.money import to_minor

FieldType = Literal["text", "money", "date", "bool", "int"]
"""What a target field holds: ``money`` is integer minor units of the fact's currency."""

Scalar = str | int | bool
Location = tuple[str | int, ...]


class MappingError(ValueError):
    """A mapping definition is wrong; ``location`` names the config keys of the culprit."""

    def __init__(self, location: Location, message: str) -> None:
        super().__init__(message)
        self.location = location
        self.message = message


class UnmappableValue(ValueError):
    """A source object does not fit the mapping (missing field, bad amount, unknown value)."""


class FieldSpec(BaseModel):
    """One field's mapping, as written in the config."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    source: str = Field(alias="from", min_length=1)
    transform: str | list[str] = Field(default_factory=list)
    values: dict[str, Scalar] | None = None
    default: Scalar | None = None

    @property
    def transforms(self) -> list[str]:
        """The transform names, in order."""
        return [self.transform] if isinstance(self.transform, str) else list(self.transform)


def spec(source: str, *transforms: str, **options: Any) -> FieldSpec:
    """A ``FieldSpec`` in code (for the defaults connectors ship)."""
    return FieldSpec.model_validate({"from": source, "transform": list(transforms), **options})


@dataclass(frozen=True)
class KindSchema:
    """One kind of fact a connector builds declaratively: root name, typed fields, defaults."""

    root: str
    fields: Mapping[str, FieldType]
    defaults: Mapping[str, FieldSpec]
    required: frozenset[str] = frozenset()


MappingSchema = Mapping[str, KindSchema]
"""kind → its schema, as a connector ships it."""


@dataclass(frozen=True)
class MappingEnv:
    """What evaluation may depend on besides the source object."""

    timezone: ZoneInfo
    currency: str | None = None


# ------------------------------------------------------------------ paths and expressions

_SEGMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\d+|\*)\]|\.")
_CALL = re.compile(r"^\s*([a-z_]+)\((.*)\)\s*$", re.S)
_LITERAL = re.compile(r"^\s*(['\"])(.*)\1\s*$", re.S)

Getter = Callable[[Any], Any]


def _parse_path(text: str) -> list[str | int | None]:
    """``a.b[0].c[*]`` → ``["a", "b", 0, "c", None]`` (None = every element)."""
    parts: list[str | int | None] = []
    pos, expect_name = 0, True
    text = text.strip()
    while pos < len(text):
        match = _SEGMENT.match(text, pos)
        if match is None:
            raise ValueError(f"bad path {text!r} at character {pos + 1}")
        name, index = match.group(1), match.group(2)
        if name is not None:
            if not expect_name:
                raise ValueError(f"bad path {text!r}: a name must follow a dot")
            parts.append(name)
            expect_name = False
        elif index is not None:
            parts.append(None if index == "*" else int(index))
        else:
            if expect_name:
                raise ValueError(f"bad path {text!r}: a dot must follow a name or index")
            expect_name = True
        pos = match.end()
    if not parts or expect_name or not isinstance(parts[0], str):
        raise ValueError(f"bad path {text!r}")
    return parts


def _walk(value: Any, parts: Sequence[str | int | None]) -> Any:
    for i, part in enumerate(parts):
        if value is None:
            return None
        if part is None:
            if not isinstance(value, list):
                return None
            rest = parts[i + 1 :]
            return [_walk(item, rest) for item in value]
        if isinstance(part, int):
            value = value[part] if isinstance(value, list) and part < len(value) else None
        else:
            value = value.get(part) if isinstance(value, dict) else None
    return value


def _flat(value: Any) -> list[Any]:
    if isinstance(value, list):
        return [x for item in value for x in _flat(item)]
    return [] if value is None else [value]


def _add(values: list[Any]) -> Decimal | int:
    result: Decimal | int = 0
    for item in values:
        if isinstance(item, bool) or not isinstance(item, str | int | Decimal):
            raise UnmappableValue(f"cannot add {item!r}: amounts are decimal strings or integers")
        try:
            result += Decimal(item) if isinstance(item, str) else item
        except InvalidOperation as exc:
            raise UnmappableValue(f"{item!r} is not a decimal number") from exc
    return result


def _split_args(text: str) -> list[str]:
    args, depth, quote, current = [], 0, "", ""
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            args.append(current)
            current = ""
            continue
        current += char
    args.append(current)
    return [a for a in (arg.strip() for arg in args) if a]


def compile_expression(text: str, root: str) -> Getter:
    """A getter for ``text`` (path, ``sum(path)`` or ``concat(…)``) rooted at ``root``."""
    call = _CALL.match(text)
    if call is not None:
        name, inner = call.group(1), call.group(2)
        if name == "sum":
            getter = compile_expression(inner, root)
            return lambda obj: _add(_flat(getter(obj)))
        if name == "concat":
            parts = [_compile_part(arg, root) for arg in _split_args(inner)]
            if not parts:
                raise ValueError("concat() needs at least one argument")
            return lambda obj: "".join(str(v) for p in parts for v in _flat(p(obj)))
        raise ValueError(f"unknown function {name!r} (known: sum, concat)")
    path = _parse_path(text)
    if path[0] != root:
        raise ValueError(f"path {text!r} must start with {root!r}")
    rest = path[1:]
    if all(isinstance(part, str) for part in rest):
        return _keys(tuple(str(part) for part in rest))
    return lambda obj: _walk(obj, rest)


def _keys(keys: tuple[str, ...]) -> Getter:
    """``_walk`` for a path of names only (most paths): no list to spread, no index."""

    def get(value: Any) -> Any:
        for key in keys:
            if not isinstance(value, dict):
                return None
            value = value.get(key)
        return value

    return get


def _compile_part(arg: str, root: str) -> Getter:
    literal = _LITERAL.match(arg)
    if literal is not None:
        value = literal.group(2)
        return lambda _obj: value
    return compile_expression(arg, root)


# ------------------------------------------------------------------ transforms

Transform = Callable[[Any, MappingEnv], Any]


def _iso_to_date(value: Any, env: MappingEnv) -> date:
    if isinstance(value, int) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC).astimezone(env.timezone).date()
    if not isinstance(value, str):
        raise UnmappableValue(f"{value!r} is not a timestamp")
    try:
        if len(value.strip()) == 10:
            return date.fromisoformat(value.strip())
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise UnmappableValue(f"{value!r} is not an ISO 8601 timestamp") from exc
    if moment.tzinfo is None:
        raise UnmappableValue(f"{value!r} has no UTC offset: its date is ambiguous")
    return moment.astimezone(env.timezone).date()


def _utc_date(value: Any, env: MappingEnv) -> date:
    if isinstance(value, int) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC).date()
    return _iso_to_date(value, MappingEnv(ZoneInfo("UTC"), env.currency))


def _decimal_string_to_minor(value: Any, env: MappingEnv) -> int:
    if env.currency is None:
        raise UnmappableValue("no currency to convert the amount with")
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise UnmappableValue(f"{value!r} is not a decimal string")
    try:
        return to_minor(value, env.currency)
    except ValueError as exc:
        raise UnmappableValue(str(exc)) from exc


def _cents(value: Any, env: MappingEnv) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise UnmappableValue(f"{value!r} is not an integer amount in minor units")
    return value


_TRANSFORMS: dict[str, tuple[Transform, FieldType | None]] = {
    "iso_to_date": (_iso_to_date, "date"),
    "utc_date": (_utc_date, "date"),
    "decimal_string_to_minor": (_decimal_string_to_minor, "money"),
    "cents": (_cents, "money"),
    "map": (lambda value, env: value, None),  # replaced per field (needs `values`)
}
TRANSFORM_NAMES = tuple(sorted(_TRANSFORMS))


def _mapper(values: Mapping[str, Scalar], default: Scalar | None) -> Transform:
    def apply(value: Any, env: MappingEnv) -> Any:
        key = str(value).lower() if isinstance(value, bool) else str(value)
        if key in values:
            return values[key]
        if default is None:
            raise UnmappableValue(f"no mapping for {value!r} and no default")
        return default

    return apply


# ------------------------------------------------------------------ compiled mappings


@dataclass(frozen=True)
class CompiledField:
    """A field ready to evaluate."""

    name: str
    type: FieldType
    getter: Getter
    transforms: tuple[Transform, ...]
    default: Scalar | None
    required: bool

    def evaluate(self, obj: Any, env: MappingEnv) -> Any:
        value = self.getter(obj)
        if value is None or value == []:
            if self.default is None:
                if self.required:
                    raise UnmappableValue(f"{self.name}: the source has no value")
                return None
            value = self.default
            if self.type == "money" and isinstance(value, int):
                return value
        for transform in self.transforms:
            value = transform(value, env)
        return _check_type(self.name, self.type, value)


def _check_type(name: str, kind: FieldType, value: Any) -> Any:
    if kind == "text":
        if isinstance(value, int | Decimal) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, str):
            return value
    elif kind in ("money", "int"):
        if isinstance(value, Decimal) and value == value.to_integral_value():
            return int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif kind == "date":
        if isinstance(value, date):
            return value
    elif kind == "bool" and isinstance(value, bool):
        return value
    raise UnmappableValue(f"{name}: {value!r} is not a {kind} value")


@dataclass(frozen=True)
class KindMapping:
    """The compiled fields of one kind: ``evaluate`` turns a source object into field values."""

    root: str
    fields: tuple[CompiledField, ...]

    def __post_init__(self) -> None:
        # ``currency`` first, so money fields convert with it (sorted once, not per event)
        ordered = tuple(sorted(self.fields, key=lambda f: f.name != "currency"))
        object.__setattr__(self, "fields", ordered)

    def evaluate(self, source: Any, env: MappingEnv) -> dict[str, Any]:
        """Field values for ``source`` (the object known as ``root``); ``currency`` first, so
        money fields convert with it. ``UnmappableValue`` names the field that failed."""
        values: dict[str, Any] = {}
        for compiled in self.fields:
            try:
                values[compiled.name] = compiled.evaluate(source, env)
            except UnmappableValue as exc:
                raise UnmappableValue(f"{self.root} → {compiled.name}: {exc}") from exc
            if compiled.name == "currency" and isinstance(values["currency"], str):
                env = MappingEnv(env.timezone, values["currency"].upper())
        return values


@dataclass(frozen=True)
class CompiledMapping:
    """Every kind of one connection's mapping (defaults with its overrides)."""

    kinds: Mapping[str, KindMapping] = field(default_factory=dict)

    def evaluate(self, kind: str, source: Any, env: MappingEnv) -> dict[str, Any]:
        """Field values of ``kind`` for ``source``."""
        return self.kinds[kind].evaluate(source, env)


def compile_field(
    name: str, ftype: FieldType, raw: FieldSpec | Mapping[str, Any], root: str, *, required: bool
) -> CompiledField:
    """Compile one field; ``MappingError`` with a location relative to the field."""
    try:
        fspec = raw if isinstance(raw, FieldSpec) else FieldSpec.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = tuple(str(p) for p in first["loc"] if p != "from") or ("from",)
        option = first["loc"][0] if first["loc"] else "from"
        message = (
            f"unknown option {option!r} (known: from, transform, values, default)"
            if first["type"] == "extra_forbidden"
            else first["msg"]
        )
        raise MappingError(where[:1], message) from exc
    try:
        getter = compile_expression(fspec.source, root)
    except ValueError as exc:
        raise MappingError(("from",), str(exc)) from exc
    transforms: list[Transform] = []
    produces: FieldType | None = None
    for tname in fspec.transforms:
        if tname not in _TRANSFORMS:
            raise MappingError(
                ("transform",),
                f"unknown transform {tname!r} (known: {', '.join(TRANSFORM_NAMES)})",
            )
        if tname == "map":
            if not fspec.values:
                raise MappingError(("values",), "transform 'map' needs a values table")
            transforms.append(_mapper(fspec.values, fspec.default))
            produces = None
        else:
            transforms.append(_TRANSFORMS[tname][0])
            produces = _TRANSFORMS[tname][1]
    if fspec.values is not None and "map" not in fspec.transforms:
        raise MappingError(("values",), "values is only used by transform 'map'")
    if ftype == "money" and produces != "money":
        raise MappingError(
            ("transform",),
            f"{name} is an amount: end with decimal_string_to_minor or cents",
        )
    if ftype == "date" and produces != "date" and "map" not in fspec.transforms:
        raise MappingError(("transform",), f"{name} is a date: use iso_to_date or utc_date")
    return CompiledField(
        name, ftype, getter, tuple(transforms), fspec.default, required and fspec.default is None
    )


def compile_mapping(
    schema: MappingSchema, overrides: Mapping[str, Mapping[str, Any]] | None = None
) -> CompiledMapping:
    """The connector's defaults with ``overrides`` (kind → field → spec) applied.

    ``MappingError.location`` is ``(kind, field, option…)`` relative to the connection's
    ``mapping`` table.
    """
    overrides = overrides or {}
    for kind, fields in overrides.items():
        if kind not in schema:
            raise MappingError(
                (kind,), f"unknown kind {kind!r} (known: {', '.join(sorted(schema)) or 'none'})"
            )
        if not isinstance(fields, Mapping):
            raise MappingError((kind,), f"mapping.{kind} must be a table of fields")
        for name in fields:
            if name not in schema[kind].fields:
                known = ", ".join(sorted(schema[kind].fields))
                raise MappingError((kind, name), f"unknown field {name!r} of {kind} ({known})")
    kinds: dict[str, KindMapping] = {}
    for kind, kschema in schema.items():
        compiled: list[CompiledField] = []
        for name, ftype in kschema.fields.items():
            raw = overrides.get(kind, {}).get(name, kschema.defaults.get(name))
            if raw is None:
                continue
            try:
                compiled.append(
                    compile_field(name, ftype, raw, kschema.root, required=name in kschema.required)
                )
            except MappingError as exc:
                raise MappingError((kind, name, *exc.location), exc.message) from exc
        kinds[kind] = KindMapping(kschema.root, tuple(compiled))
    return CompiledMapping(kinds)
