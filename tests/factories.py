"""Builders for test events."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hub.domain.events import NewEvent


def event(external_id: str, *, source: str = "stripe:acct_test", **fields: Any) -> NewEvent:
    """A valid event; any field can be overridden."""
    values: dict[str, Any] = {
        "source": source,
        "external_id": external_id,
        "type": "stripe.charge.succeeded",
        "occurred_at": datetime(2026, 11, 1, 12, 0, tzinfo=UTC),
        "data": {"id": external_id, "amount": 1099, "currency": "usd"},
    }
    values.update(fields)
    return NewEvent(**values)
