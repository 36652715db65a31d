"""The mapper a connector puts in its ``mapper`` slot: raw events → canonical facts.

A mapper is pure: the facts depend only on the event and the connection's ``MapContext``
(compiled mapping, tenant time zone), so fixing a mapping and rebuilding re-derives the books.
``map`` returns None for an event type it does not understand, a list (maybe empty) of facts
otherwise, and raises ``Unmappable`` for an event it understands but cannot map.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import orjson
from pydantic import ValidationError

from hub.domain.facts import Customer, Fact, Payout, Sale, SaleLine, TaxLine
from hub.domain.mapping import (
    CompiledMapping,
    FieldType,
    MappingEnv,
    MappingSchema,
    UnmappableValue,
    compile_mapping,
)
from hub.domain.money import Money
from hub.errors import Unmappable
from hub.spi.parser import PayloadParser


@dataclass(frozen=True)
class SourceEvent:
    """What a mapper may read of a logged event."""

    type: str
    source: str
    external_id: str
    occurred_at: datetime
    data: Mapping[str, Any]


@dataclass(frozen=True)
class MapContext:
    """A connection's compiled mapping and its tenant's time zone."""

    mapping: CompiledMapping
    timezone: ZoneInfo

    def fields(self, kind: str, source: Any) -> dict[str, Any]:
        """The declarative fields of ``kind`` for ``source`` (the kind's root object)."""
        return self.mapping.evaluate(kind, source, MappingEnv(self.timezone))

    def business_date(self, moment: datetime) -> Any:
        """``moment`` as a date in the tenant's time zone."""
        return moment.astimezone(self.timezone).date()


Handler = Callable[[SourceEvent, MapContext], list[Fact]]
"""Maps one event type: a plain function of the event and the context."""


class FactMapper:
    """Base of every connector's mapper. Subclasses set ``schema`` (declarative fields per
    kind of fact, with defaults), ``handlers`` (event type → function) and ``parser``."""

    schema: ClassVar[MappingSchema] = {}
    handlers: ClassVar[Mapping[str, Handler]] = {}
    parser: ClassVar[PayloadParser | None] = None
    """The connector's parser: each event's payload is parsed (validated) before mapping."""

    def samples(self) -> list[SourceEvent]:
        """The sample events the connector ships (``samples.json`` beside its mapper module):
        the contract suite maps them, and they document what ``data`` looks like."""
        package = type(self).__module__.rpartition(".")[0]
        try:
            text = resources.files(package).joinpath("samples.json").read_bytes()
        except (FileNotFoundError, ModuleNotFoundError):
            return []
        return [
            SourceEvent(
                type=item["type"],
                source=item["source"],
                external_id=item["external_id"],
                occurred_at=datetime.fromisoformat(item["occurred_at"]),
                data=item["data"],
            )
            for item in orjson.loads(text)["events"]
        ]

    def event_types(self) -> list[str]:
        """The event types this mapper understands."""
        return sorted(self.handlers)

    def compile(self, overrides: Mapping[str, Mapping[str, Any]] | None = None) -> CompiledMapping:
        """The shipped defaults with a connection's overrides (``MappingError`` if wrong)."""
        return compile_mapping(self.schema, overrides)

    def map(self, event: SourceEvent, ctx: MapContext) -> list[Fact] | None:
        """``event``'s facts; None if its type is not understood; ``Unmappable`` if it cannot
        be mapped (a missing field, an amount with too many decimals, facts that do not add up).
        """
        handler = self.handlers.get(event.type)
        if handler is None:
            return None
        try:
            if self.parser is not None:
                self.parser.parse(event.type, event.data)
            return handler(event, ctx)
        except (UnmappableValue, ValidationError, KeyError, TypeError, ValueError) as exc:
            raise Unmappable(f"{event.type} {event.external_id}: {_reason(exc)}") from exc


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return f"{where}: {first['msg']}" if where else str(first["msg"])
    if isinstance(exc, KeyError):
        return f"missing {exc}"
    return str(exc)


def money(values: Mapping[str, Any], name: str, currency: str | None = None) -> Money:
    """The ``name`` field of evaluated ``values`` as Money in ``values['currency']``."""
    amount = values[name]
    if amount is None:
        raise UnmappableValue(f"{name}: no amount")
    return Money.of(amount, currency or values["currency"])


def optional_money(values: Mapping[str, Any], name: str) -> Money | None:
    """Like ``money`` but None when the field has no value."""
    return None if values.get(name) is None else money(values, name)


def text(value: Any) -> str | None:
    """``value`` as text (ids arrive as numbers from Shopify), None for null."""
    return None if value is None else str(value)


# ------------------------------------------------------------------ facts from mapped fields

SALE_FIELDS: dict[str, FieldType] = {
    "id": "text",
    "number": "text",
    "status": "text",
    "currency": "text",
    "date": "date",
    "subtotal": "money",
    "discounts": "money",
    "shipping": "money",
    "total": "money",
    "taxes_included": "bool",
    "customer": "text",
}
"""The declarative fields of a shop's ``sale`` kind (lines and tax lines are mapped in code)."""


def sale_fact(
    f: Mapping[str, Any],
    lines: list[SaleLine],
    taxes: list[TaxLine],
    *,
    status: str | None = None,
) -> Sale:
    """A ``Sale`` from the evaluated ``SALE_FIELDS``, its lines and taxes."""
    return Sale(
        key=f"order:{f['id']}",
        business_date=f["date"],
        order_id=f["id"],
        number=f["number"],
        status=status or f["status"],
        currency=f["currency"],
        lines=lines,
        subtotal=money(f, "subtotal"),
        discounts=money(f, "discounts"),
        shipping=money(f, "shipping"),
        tax_lines=taxes,
        taxes_included=bool(f["taxes_included"]),
        total=money(f, "total"),
        customer=(f["customer"] or "").strip() or None,
    )


def payout_fact(f: Mapping[str, Any], processor: str, settles: Any = None) -> Payout:
    """A ``Payout`` from evaluated fields (``arrival_date`` defaults to ``date``) and the ids
    of the balance transactions it settles, when the event lists them."""
    return Payout(
        key=f"payout:{f['id']}",
        business_date=f["date"],
        processor=processor,
        payout_id=f["id"],
        amount=money(f, "amount"),
        arrival_date=f.get("arrival_date") or f["date"],
        status=f["status"],
        settles=[str(item) for item in settles or []],
        description=f.get("description"),
    )


def customer_fact(f: Mapping[str, Any]) -> Customer:
    """A ``Customer`` from evaluated ``id``, ``date``, ``name``, ``email``."""
    return Customer(
        key=f"customer:{f['id']}",
        business_date=f["date"],
        customer_id=f["id"],
        name=(f["name"] or "").strip() or None,
        email=f["email"],
    )
