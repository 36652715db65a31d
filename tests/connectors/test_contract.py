"""The connector contract, run against every registered connector that has a mapper.

Like eventsourcing's one recorder suite per backend: each connector found through the
``ledgerhub.connectors`` entry points must ship sample events that its mapper maps, the same way
every time, into facts whose money survives a round trip exactly.
"""

from __future__ import annotations

import copy
import fnmatch
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from pydantic import BaseModel, TypeAdapter

from hub.config.books import mappers
from hub.domain.facts import Customer, Fact, InventoryMovement
from hub.domain.money import Money
from hub.spi.mapper import FactMapper, MapContext, SourceEvent
from hub.spi.registry import connectors

FACTS: TypeAdapter[list[Fact]] = TypeAdapter(list[Fact])
MAPPERS = mappers()
ZONES = [ZoneInfo("UTC"), ZoneInfo("Pacific/Auckland"), ZoneInfo("America/Los_Angeles")]


def _context(mapper: FactMapper, zone: ZoneInfo = ZONES[0]) -> MapContext:
    return MapContext(mapper.compile(), zone)


def _money(value: Any) -> list[Money]:
    if isinstance(value, Money):
        return [value]
    if isinstance(value, BaseModel):
        return [m for name in type(value).model_fields for m in _money(getattr(value, name))]
    if isinstance(value, list | tuple):
        return [m for item in value for m in _money(item)]
    return []


def _floats(value: Any) -> list[float]:
    if isinstance(value, float):
        return [value]
    if isinstance(value, dict):
        return [f for item in value.values() for f in _floats(item)]
    if isinstance(value, list):
        return [f for item in value for f in _floats(item)]
    return []


def test_the_built_in_connectors_are_registered_with_mappers() -> None:
    assert {"stripe", "shopify", "woocommerce", "bank", "payroll"} <= set(MAPPERS)


@pytest.fixture(params=sorted(MAPPERS), ids=str)
def connector(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_ships_samples_of_types_it_declares(connector: str) -> None:
    mapper = MAPPERS[connector]
    samples = mapper.samples()
    assert samples, f"{connector} ships no samples.json"
    patterns = connectors()[connector].event_types
    for event_type in mapper.event_types():
        assert any(fnmatch.fnmatchcase(event_type, p) for p in patterns), event_type
    for sample in samples:
        assert sample.type in mapper.event_types()
        assert sample.occurred_at.tzinfo is not None


def test_maps_every_sample_deterministically(connector: str) -> None:
    mapper = MAPPERS[connector]
    for sample in mapper.samples():
        facts = mapper.map(sample, _context(mapper))
        assert facts, f"{sample.type} mapped to nothing"
        again = mapper.map(copy.deepcopy(sample), _context(mapper))
        assert again == facts
        assert len({fact.key for fact in facts}) == len(facts)
        for zone in ZONES:  # the tenant's zone moves dates, never amounts or keys
            shifted = mapper.map(sample, _context(mapper, zone)) or []
            assert [f.key for f in shifted] == [f.key for f in facts]
            assert [_money(f) for f in shifted] == [_money(f) for f in facts]


def test_money_round_trips_exactly(connector: str) -> None:
    mapper = MAPPERS[connector]
    for sample in mapper.samples():
        facts = mapper.map(sample, _context(mapper)) or []
        dumped = FACTS.dump_json(facts)
        assert not _floats(orjson.loads(dumped)), "a fact serialised a float"
        assert FACTS.validate_json(dumped) == facts
        for fact in facts:
            if not isinstance(fact, Customer | InventoryMovement):
                assert _money(fact), f"{fact.kind} carries no money"
        for amount in (m for fact in facts for m in _money(fact)):
            assert Money.parse(str(amount.major()), amount.currency) == amount


def test_an_unknown_type_is_not_understood_and_not_an_error(connector: str) -> None:
    mapper = MAPPERS[connector]
    event = SourceEvent(
        f"{connector}.something_new", f"{connector}:x", "1", datetime.now(ZONES[0]), {}
    )
    assert mapper.map(event, _context(mapper)) is None


def test_default_mapping_compiles_and_names_only_declared_fields(connector: str) -> None:
    mapper = MAPPERS[connector]
    compiled = mapper.compile()
    for kind, schema in mapper.schema.items():
        assert set(schema.defaults) <= set(schema.fields), kind
        assert schema.required <= set(schema.defaults), kind
        assert compiled.kinds[kind].root == schema.root


def test_parses_every_sample_into_typed_models_of_the_providers_objects(connector: str) -> None:
    mapper = MAPPERS[connector]
    assert mapper.parser is not None, f"{connector} has no parser"
    assert connectors()[connector].parser is mapper.parser
    assert sorted(mapper.parser.parsers) == mapper.event_types()
    for sample in mapper.samples():
        parsed = mapper.parser.parse(sample.type, sample.data)
        assert isinstance(parsed, BaseModel), sample.type
        assert parsed.model_dump(mode="json", exclude_unset=True)
