"""The parser a connector puts in its ``parser`` slot: a raw payload → typed models of the
provider's own objects (a Stripe ``Charge``, a Shopify ``Order``).

Models validate what mapping relies on (ids, amounts as the provider types them: Stripe integer
minor units, Shopify decimal strings, never floats; timestamps with their offsets) and keep every
other field (``extra="allow"``), so a payload that parses is one the mapper can read. A connector's
``FactMapper`` parses each event before mapping it; a payload that does not parse is
``Unmappable`` (kept and counted by the ledger), never an error that stops anything.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, StrictInt

DecimalString = Annotated[str, Field(pattern=r"^-?\d+(\.\d+)?$")]
"""A decimal amount as a string (``"409.94"``): the way Shopify and WooCommerce send money."""

MinorUnits = StrictInt
"""An amount already in integer minor units (the way Stripe sends money)."""

Id = Annotated[str | int, Field(union_mode="left_to_right")]
"""An object id: a string, or a number (Shopify)."""


class ProviderModel(BaseModel):
    """Base of a provider object's model: typed where mapping reads, open elsewhere."""

    model_config = ConfigDict(extra="allow", frozen=True)


Parse = Callable[[Mapping[str, Any]], BaseModel]
"""Turns one event's ``data`` into its typed model (raises ``ValidationError``)."""


class PayloadParser:
    """Event type → how to parse its ``data``. Subclasses set ``parsers``."""

    parsers: ClassVar[Mapping[str, Parse]] = {}

    def parse(self, event_type: str, data: Mapping[str, Any]) -> BaseModel | None:
        """The typed model of ``data``; None for a type this parser does not know."""
        parse = self.parsers.get(event_type)
        return None if parse is None else parse(data)


def model(cls: type[BaseModel]) -> Parse:
    """Parse ``data`` as ``cls`` itself."""
    return cls.model_validate
