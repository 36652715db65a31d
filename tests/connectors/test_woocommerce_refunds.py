"""WooCommerce refunds made in the shop: listed by the order (amount only) and as refund objects
(with their split), both the same shop-side ``Refund``."""

from __future__ import annotations

import copy

import pytest
from pydantic import ValidationError

from connectors.woocommerce.mapping import WooCommerceMapper
from hub.domain.facts import Refund, Sale
from hub.domain.money import Money
from hub.spi.mapper import SourceEvent
from hub.testing.connector import context

MAPPER = WooCommerceMapper()


def _sample(event_type: str) -> SourceEvent:
    return next(s for s in MAPPER.samples() if s.type == event_type)


def _usd(minor: int) -> Money:
    return Money(minor=minor, currency="USD")


def test_an_order_listing_a_refund_maps_its_sale_and_the_refund_by_its_total() -> None:
    facts = MAPPER.map(_sample("woocommerce.order.updated"), context(MAPPER))
    assert facts is not None
    sale, refund = facts
    assert isinstance(sale, Sale)
    assert isinstance(refund, Refund)
    assert refund.key == "refund:728"
    assert refund.processor is None  # the shop's own refund
    assert refund.amount == _usd(645)  # ``total`` is negative in the listing
    assert refund.tax is None  # no split stated: the ledger splits it by the order
    assert refund.order_ref == "727"


def test_a_refund_object_states_its_tax_and_shipping() -> None:
    facts = MAPPER.map(_sample("woocommerce.refund"), context(MAPPER))
    assert facts is not None
    (refund,) = facts
    assert isinstance(refund, Refund)
    assert refund.key == "refund:728"  # the same refund as the order lists
    assert (refund.amount, refund.tax, refund.shipping) == (_usd(645), _usd(45), _usd(0))
    assert refund.order_ref == "727"
    assert refund.business_date.isoformat() == "2017-03-23"


def test_a_refund_with_shipping_lines_states_the_shipping_and_its_tax() -> None:
    sample = _sample("woocommerce.refund")
    data = copy.deepcopy(dict(sample.data))
    data["refund"].update(
        amount="11.45",
        shipping_lines=[{"id": 9, "total": "-10.00", "total_tax": "-1.00"}],
        line_items=[{"id": 1, "total": "-0.40", "total_tax": "-0.05"}],
    )
    event = SourceEvent(sample.type, sample.source, "r", sample.occurred_at, data)
    facts = MAPPER.map(event, context(MAPPER))
    assert facts is not None
    (refund,) = facts
    assert isinstance(refund, Refund)
    assert (refund.tax, refund.shipping) == (_usd(105), _usd(1000))


def test_a_float_refund_amount_is_refused() -> None:
    data = copy.deepcopy(dict(_sample("woocommerce.refund").data))
    data["refund"]["amount"] = 6.45
    parser = WooCommerceMapper.parser
    assert parser is not None
    with pytest.raises(ValidationError):
        parser.parse("woocommerce.refund", data)
