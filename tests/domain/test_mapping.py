"""The declarative mapping engine: paths, transforms, defaults, and refusing bad definitions."""

from __future__ import annotations

from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from hub.domain.mapping import (
    KindSchema,
    MappingEnv,
    MappingError,
    UnmappableValue,
    compile_mapping,
    spec,
)
from hub.domain.toml_lines import line_of

SCHEMA = {
    "sale": KindSchema(
        root="order",
        fields={
            "currency": "text",
            "status": "text",
            "total": "money",
            "tax": "money",
            "date": "date",
            "customer": "text",
        },
        defaults={
            "currency": spec("order.currency"),
            "status": spec("order.financial_status"),
            "total": spec("order.total_price", "decimal_string_to_minor"),
            "tax": spec("sum(order.tax_lines[*].price)", "decimal_string_to_minor"),
            "date": spec("order.created_at", "iso_to_date"),
            "customer": spec("concat(order.customer.first_name, ' ', order.customer.last_name)"),
        },
        required=frozenset({"total"}),
    )
}
SEED_STATUS = {
    "from": "order.financial_status",
    "transform": "map",
    "values": {"paid": "paid", "pending": "draft"},
    "default": "draft",
}
ORDER: dict[str, Any] = {
    "currency": "KWD",
    "financial_status": "pending",
    "total_price": "12.345",
    "tax_lines": [{"price": "0.100"}, {"price": "0.245"}],
    "created_at": "2024-03-31T23:30:00-04:00",
    "customer": {"first_name": "Bob", "last_name": "Norman"},
}
NEW_YORK = MappingEnv(ZoneInfo("America/New_York"))


def test_the_seed_status_mapping_with_its_default() -> None:
    mapping = compile_mapping(SCHEMA, {"sale": {"status": SEED_STATUS}})
    statuses = {
        given: mapping.evaluate("sale", {**ORDER, "financial_status": given}, NEW_YORK)["status"]
        for given in ("paid", "pending", "authorized")
    }
    assert statuses == {"paid": "paid", "pending": "draft", "authorized": "draft"}


def test_sum_concat_minor_units_and_dates_in_the_tenant_zone() -> None:
    values = compile_mapping(SCHEMA).evaluate("sale", ORDER, NEW_YORK)
    assert values["total"] == 12345  # KWD has three decimals
    assert values["tax"] == 345
    assert values["customer"] == "Bob Norman"
    assert values["date"] == date(2024, 3, 31)
    tokyo = compile_mapping(SCHEMA).evaluate("sale", ORDER, MappingEnv(ZoneInfo("Asia/Tokyo")))
    assert tokyo["date"] == date(2024, 4, 1)


def test_unix_seconds_and_cents() -> None:
    schema = {
        "payment": KindSchema(
            root="charge",
            fields={"currency": "text", "gross": "money", "date": "date"},
            defaults={
                "currency": spec("charge.currency"),
                "gross": spec("charge.amount", "cents"),
                "date": spec("charge.created", "iso_to_date"),
            },
        )
    }
    charge = {"currency": "jpy", "amount": 1500, "created": 1234567890}
    values = compile_mapping(schema).evaluate("payment", charge, NEW_YORK)
    assert values == {"currency": "jpy", "gross": 1500, "date": date(2009, 2, 13)}
    with pytest.raises(UnmappableValue, match="gross"):
        compile_mapping(schema).evaluate("payment", {**charge, "amount": "15.00"}, NEW_YORK)


def test_unmappable_values_name_the_field() -> None:
    mapping = compile_mapping(SCHEMA)
    with pytest.raises(UnmappableValue, match=r"total.*more than 3 decimal places"):
        mapping.evaluate("sale", {**ORDER, "total_price": "1.0001"}, NEW_YORK)
    with pytest.raises(UnmappableValue, match="total: the source has no value"):
        mapping.evaluate("sale", {**ORDER, "total_price": None}, NEW_YORK)
    with pytest.raises(UnmappableValue, match="no UTC offset"):
        mapping.evaluate("sale", {**ORDER, "created_at": "2024-03-31T23:30:00"}, NEW_YORK)


@pytest.mark.parametrize(
    ("override", "location", "message"),
    [
        ({"refund": {}}, ("refund",), "unknown kind"),
        ({"sale": {"colour": {"from": "order.x"}}}, ("sale", "colour"), "unknown field"),
        (
            {"sale": {"status": {"from": "order.x", "transform": "mapp"}}},
            ("sale", "status", "transform"),
            "unknown transform 'mapp'",
        ),
        (
            {"sale": {"status": {"from": "order.x", "transform": "map"}}},
            ("sale", "status", "values"),
            "needs a values table",
        ),
        (
            {"sale": {"total": {"from": "order.total_price"}}},
            ("sale", "total", "transform"),
            "amount",
        ),
        ({"sale": {"status": {"from": "orders..x"}}}, ("sale", "status", "from"), "bad path"),
        (
            {"sale": {"status": {"from": "charge.x"}}},
            ("sale", "status", "from"),
            "start with 'order'",
        ),
        (
            {"sale": {"status": {"from": "avg(order.x)"}}},
            ("sale", "status", "from"),
            "unknown function",
        ),
        (
            {"sale": {"status": {"from": "order.x", "colour": 1}}},
            ("sale", "status", "colour"),
            "unknown option",
        ),
    ],
)
def test_bad_definitions_are_refused_with_their_location(
    override: dict[str, Any], location: tuple[str, ...], message: str
) -> None:
    with pytest.raises(MappingError, match=message) as caught:
        compile_mapping(SCHEMA, override)
    assert caught.value.location == location


CONFIG = """\
[tenants.default]
timezone = "UTC"  # a comment

[[connections]]
id = "stripe:a"

[[connections]]
id = "shopify:b"
payout_account = "1000"

[connections.mapping.sale]
total = { from = "order.total_price", transform = "decimal_string_to_minor" }
status = { from = "order.financial_status", transform = "mapp" }

[[connections]]
id = "shopify:c"
mapping.sale.status = { from = "order.x", transform = "map" }
"""


@pytest.mark.parametrize(
    ("location", "line"),
    [
        (("tenants", "default", "timezone"), 2),
        (("connections", 0, "id"), 5),
        (("connections", 1, "payout_account"), 9),
        (("connections", 1, "mapping", "sale", "status", "transform"), 13),
        (("connections", 1, "mapping", "sale", "total"), 12),
        (("connections", 2, "mapping", "sale", "status", "values"), 17),
        (("connections", 2, "tenant"), 15),
    ],
)
def test_toml_lines_are_found_for_nested_keys(location: tuple[str | int, ...], line: int) -> None:
    assert line_of(CONFIG, location) == line
