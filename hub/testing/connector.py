"""``ConnectorContract``: the checks every connector passes, run on "this connector class".

Subclass it in a test module (the class name must start with ``Test``) and name the class::

    from hub.testing import ConnectorContract

    class TestAcmePay(ConnectorContract):
        connector = AcmePayConnector

        def signed(self, connector, sample, secret):  # optional: the verifier round trip
            return WebhookDelivery(url, headers_signed_with(secret), body_of(sample))

To run it on several connectors, override the ``connector_class`` fixture (e.g. parametrized).

What it checks, like eventsourcing's one recorder suite per backend:

- the declaration: a name in the log's type alphabet, event-type patterns under that name;
- with a mapper: it ships sample events (``samples.json`` beside the mapper's module) of types it
  declares; it maps every sample to facts, the same way every time and in any tenant time zone;
  the facts' money survives a JSON round trip exactly (no floats); an event type it does not
  know is not understood (None), not an error; its default mapping compiles and names only
  declared fields; its parser is the connector's parser and parses every sample into a typed
  model of the provider's object;
- with a verifier: signature headers are declared in lower case; and, for each sample that
  ``signed`` can turn into a delivery, the delivery verifies with the secret and with nothing
  else (another secret, a changed body), carries the sample's type and data, and verifies again
  from only the headers the hub keeps (as ``ledgerhub verify --signatures`` does).
"""

from __future__ import annotations

import copy
import fnmatch
import re
from datetime import UTC, datetime
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import orjson
import pytest
from pydantic import BaseModel, TypeAdapter

from hub.domain.facts import Customer, Fact, InventoryMovement
from hub.domain.money import Money
from hub.errors import SignatureInvalid
from hub.spi.connector import Connector
from hub.spi.mapper import FactMapper, MapContext, SourceEvent
from hub.spi.verifier import WebhookDelivery, WebhookVerifier

FACTS: TypeAdapter[list[Fact]] = TypeAdapter(list[Fact])
ZONES = (ZoneInfo("UTC"), ZoneInfo("Pacific/Auckland"), ZoneInfo("America/Los_Angeles"))
"""The tenant time zones every sample is mapped in: zones move dates, never amounts or keys."""

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def context(mapper: FactMapper, zone: ZoneInfo = ZONES[0]) -> MapContext:
    """The context of a connection on ``mapper``'s default mapping, in ``zone``."""
    return MapContext(mapper.compile(), zone)


def money_in(value: Any) -> list[Money]:
    """Every ``Money`` inside a fact (or a list of them), in field order."""
    if isinstance(value, Money):
        return [value]
    if isinstance(value, BaseModel):
        return [m for name in type(value).model_fields for m in money_in(getattr(value, name))]
    if isinstance(value, list | tuple):
        return [m for item in value for m in money_in(item)]
    return []


def floats_in(value: Any) -> list[float]:
    """Every float inside parsed JSON."""
    if isinstance(value, float):
        return [value]
    if isinstance(value, dict):
        return [f for item in value.values() for f in floats_in(item)]
    if isinstance(value, list):
        return [f for item in value for f in floats_in(item)]
    return []


class ConnectorContract:
    """The connector contract suite: subclass with ``connector = YourConnector``."""

    connector: ClassVar[type[Connector]]
    """The connector class under test."""
    secret: ClassVar[bytes] = b"contract-suite-webhook-secret"
    """The webhook secret ``signed`` signs with."""

    @pytest.fixture
    def connector_class(self) -> type[Connector]:
        """The connector under test: ``connector``. Override this fixture (parametrized) to run
        the suite on several connectors."""
        found = getattr(type(self), "connector", None)
        if not (isinstance(found, type) and issubclass(found, Connector)):
            pytest.fail(f"{type(self).__qualname__}: set connector = <your Connector subclass>")
        return found

    def signed(
        self, connector: type[Connector], sample: SourceEvent, secret: bytes
    ) -> WebhookDelivery | None:
        """A webhook delivery of ``sample`` as the provider would send it, signed with
        ``secret``; None when the sample does not arrive by webhook. Override it to run the
        verifier round trip (the default signs nothing, and those tests are skipped)."""
        return None

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def mapper_of(connector: type[Connector]) -> FactMapper:
        """The connector's mapper; the test is skipped for a connector without one."""
        if connector.mapper is None:
            pytest.skip(f"{connector.name} has no mapper")
        return connector.mapper

    @staticmethod
    def verifier_of(connector: type[Connector]) -> WebhookVerifier:
        """The connector's verifier; the test is skipped for a connector without one."""
        if connector.verifier is None:
            pytest.skip(f"{connector.name} takes no webhooks")
        return connector.verifier

    # ------------------------------------------------------------------ the declaration

    def test_declares_a_name_and_the_event_types_under_it(
        self, connector_class: type[Connector]
    ) -> None:
        name = getattr(connector_class, "name", None)
        assert isinstance(name, str), "a connector declares its name"
        assert _NAME.match(name), f"{name!r}: a name is [a-z][a-z0-9_]*"
        assert connector_class.event_types, f"{name} declares no event types"
        for pattern in connector_class.event_types:
            assert pattern.startswith(f"{name}."), f"{pattern!r} is not under {name}."

    # ------------------------------------------------------------------ the mapper

    def test_ships_samples_of_types_it_declares(self, connector_class: type[Connector]) -> None:
        mapper = self.mapper_of(connector_class)
        samples = mapper.samples()
        assert samples, f"{connector_class.name} ships no samples.json"
        patterns = connector_class.event_types
        for event_type in mapper.event_types():
            assert any(fnmatch.fnmatchcase(event_type, p) for p in patterns), event_type
        for sample in samples:
            assert sample.type in mapper.event_types()
            assert sample.occurred_at.tzinfo is not None

    def test_maps_every_sample_deterministically(self, connector_class: type[Connector]) -> None:
        mapper = self.mapper_of(connector_class)
        for sample in mapper.samples():
            facts = mapper.map(sample, context(mapper))
            assert facts, f"{sample.type} mapped to nothing"
            again = mapper.map(copy.deepcopy(sample), context(mapper))
            assert again == facts
            assert len({fact.key for fact in facts}) == len(facts)
            for zone in ZONES:  # the tenant's zone moves dates, never amounts or keys
                shifted = mapper.map(sample, context(mapper, zone)) or []
                assert [f.key for f in shifted] == [f.key for f in facts]
                assert [money_in(f) for f in shifted] == [money_in(f) for f in facts]

    def test_money_round_trips_exactly(self, connector_class: type[Connector]) -> None:
        mapper = self.mapper_of(connector_class)
        for sample in mapper.samples():
            facts = mapper.map(sample, context(mapper)) or []
            dumped = FACTS.dump_json(facts)
            assert not floats_in(orjson.loads(dumped)), "a fact serialised a float"
            assert FACTS.validate_json(dumped) == facts
            for fact in facts:
                if not isinstance(fact, Customer | InventoryMovement):
                    assert money_in(fact), f"{fact.kind} carries no money"
            for amount in (m for fact in facts for m in money_in(fact)):
                assert Money.parse(str(amount.major()), amount.currency) == amount

    def test_an_unknown_type_is_not_understood_and_not_an_error(
        self, connector_class: type[Connector]
    ) -> None:
        mapper = self.mapper_of(connector_class)
        name = connector_class.name
        event = SourceEvent(f"{name}.something_new", f"{name}:x", "1", datetime.now(ZONES[0]), {})
        assert mapper.map(event, context(mapper)) is None

    def test_default_mapping_compiles_and_names_only_declared_fields(
        self, connector_class: type[Connector]
    ) -> None:
        mapper = self.mapper_of(connector_class)
        compiled = mapper.compile()
        for kind, schema in mapper.schema.items():
            assert set(schema.defaults) <= set(schema.fields), kind
            assert schema.required <= set(schema.defaults), kind
            assert compiled.kinds[kind].root == schema.root

    def test_parses_every_sample_into_typed_models_of_the_providers_objects(
        self, connector_class: type[Connector]
    ) -> None:
        mapper = self.mapper_of(connector_class)
        assert mapper.parser is not None, f"{connector_class.name} has no parser"
        assert connector_class.parser is mapper.parser
        assert sorted(mapper.parser.parsers) == mapper.event_types()
        for sample in mapper.samples():
            parsed = mapper.parser.parse(sample.type, sample.data)
            assert isinstance(parsed, BaseModel), sample.type
            assert parsed.model_dump(mode="json", exclude_unset=True)

    # ------------------------------------------------------------------ the verifier

    def test_declares_its_signature_headers_in_lower_case(
        self, connector_class: type[Connector]
    ) -> None:
        verifier = self.verifier_of(connector_class)
        for header in verifier.signature_headers:
            assert header == header.lower(), header

    def _deliveries(self, connector: type[Connector]) -> list[tuple[SourceEvent, WebhookDelivery]]:
        mapper = connector.mapper
        found = []
        for sample in mapper.samples() if mapper is not None else []:
            delivery = self.signed(connector, sample, self.secret)
            if delivery is not None:
                headers = {k.lower(): v for k, v in delivery.headers.items()}
                found.append((sample, WebhookDelivery(delivery.url, headers, delivery.body)))
        if not found:
            pytest.skip(f"no signed deliveries of {connector.name}'s samples (see signed())")
        return found

    def test_a_signed_sample_verifies_and_carries_the_sample(
        self, connector_class: type[Connector]
    ) -> None:
        verifier = self.verifier_of(connector_class)
        for sample, delivery in self._deliveries(connector_class):
            verifier.verify(delivery, self.secret, now=datetime.now(UTC))
            delivered = verifier.events(delivery)
            assert any(e.type == sample.type and e.data == sample.data for e in delivered), (
                f"the delivery of {sample.type} {sample.external_id} does not carry it"
            )
            for event in delivered:
                assert any(fnmatch.fnmatchcase(event.type, p) for p in connector_class.event_types)

    def test_another_secret_or_a_changed_body_does_not_verify(
        self, connector_class: type[Connector]
    ) -> None:
        verifier = self.verifier_of(connector_class)
        now = datetime.now(UTC)
        for _, delivery in self._deliveries(connector_class):
            with pytest.raises(SignatureInvalid):
                verifier.verify(delivery, self.secret + b"-other", now=now)
            changed = WebhookDelivery(delivery.url, delivery.headers, delivery.body + b" ")
            with pytest.raises(SignatureInvalid):
                verifier.verify(changed, self.secret, now=now)

    def test_the_kept_headers_verify_the_stored_body_later(
        self, connector_class: type[Connector]
    ) -> None:
        verifier = self.verifier_of(connector_class)
        for _, delivery in self._deliveries(connector_class):
            kept = {
                name: value
                for name in verifier.signature_headers
                if (value := delivery.header(name)) is not None
            }
            stored = WebhookDelivery(delivery.url, kept, delivery.body)
            verifier.verify(stored, self.secret, now=None)
            again = [(e.external_id, e.type, e.data) for e in verifier.events(stored)]
            assert again == [(e.external_id, e.type, e.data) for e in verifier.events(delivery)]
