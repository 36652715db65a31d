"""How the console writes values: amounts in their currency's format, times in the tenant's
time zone, JSON for people to read."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from babel.numbers import format_currency

from hub.domain.money import to_major

LOCALE = "en_US"
"""The locale amounts and dates are written in."""


def money(minor: int | None, currency: str | None) -> str:
    """Integer minor units in the currency's format (``1099, "USD"`` → ``$10.99``,
    ``-500, "EUR"`` → ``-€5.00``, JPY without decimals); empty for None."""
    if minor is None or currency is None:
        return ""
    return str(format_currency(to_major(minor, currency), currency.upper(), locale=LOCALE))


def local_time(value: datetime | None, zone: ZoneInfo) -> str:
    """An aware timestamp in ``zone``, to the second, with the zone's abbreviation."""
    if value is None:
        return ""
    return value.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z")


def day(value: date | None) -> str:
    """A business date (already in the tenant's zone) as ``YYYY-MM-DD``."""
    return "" if value is None else value.isoformat()


def pretty_json(value: Any) -> str:
    """``value`` as indented JSON with sorted keys."""
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()


def raw_text(raw: bytes | None) -> str:
    """A stored raw delivery as text, byte for byte as received (what its signature covers);
    empty when there is none."""
    return "" if raw is None else raw.decode("utf-8", "replace")
