"""The demo: sample Stripe and Shopify deliveries into the log, delivered twice, then verified.

Later stages (projections, ledger, reconciliation, the Beancount target) extend this same run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import orjson

from hub.app.verify import ChainReport, verify_chain
from hub.domain.events import NewEvent
from hub.store import EventStore


def _sample(name: str) -> Any:
    return orjson.loads(resources.files("hub.app").joinpath("samples", name).read_bytes())


def sample_events() -> list[NewEvent]:
    """The demo's events, built the way a webhook receiver builds them from a delivery."""
    stripe = _sample("stripe_events.json")
    shopify = _sample("shopify_deliveries.json")
    events = [
        NewEvent(
            source=stripe["source"],
            external_id=evt["id"],
            type=f"stripe.{evt['type']}",
            occurred_at=datetime.fromtimestamp(evt["created"], UTC),
            stream=f"{stripe['source']}/{evt['data']['object']['id']}",
            data=evt,
            meta={"demo": True},
        )
        for evt in stripe["events"]
    ]
    events += [
        NewEvent(
            source=shopify["source"],
            external_id=delivery["event_id"],
            type="shopify." + delivery["topic"].replace("/", "."),
            occurred_at=datetime.fromisoformat(delivery["occurred_at"]),
            stream=f"{shopify['source']}/{delivery['body']['id']}",
            data=delivery["body"],
            meta={"demo": True, "topic": delivery["topic"]},
        )
        for delivery in shopify["deliveries"]
    ]
    return events


@dataclass(frozen=True)
class DemoReport:
    """What the demo did."""

    appended: int
    duplicates: int
    head: int
    chain: ChainReport


async def run_demo(store: EventStore) -> DemoReport:
    """Deliver every sample twice (providers redeliver) and verify the chain."""
    events = sample_events()
    first = await store.append(events)
    second = await store.append(events)  # a redelivery must add nothing
    results = first + second
    return DemoReport(
        appended=sum(r.status == "appended" for r in results),
        duplicates=sum(r.status == "duplicate" for r in results),
        head=await store.head(),
        chain=await verify_chain(store),
    )
