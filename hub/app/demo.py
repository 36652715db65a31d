"""The demo: a month of sample activity into the log (delivered twice), the ledger projection run
until caught up, its trial balance, and the hash chain verified.

The samples (``samples/demo_events.json``) are Stripe charges, a partial refund, their balance
transactions with fees and the payout of them, built on the shapes of Stripe's published
fixtures; and Shopify's published order, payout and payout balance transactions as they are.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import Any

import orjson

from hub.app.verify import ChainReport, verify_chain
from hub.domain.events import NewEvent
from hub.errors import StoreUnavailable
from hub.runtime.settings import RuntimeSettings
from hub.runtime.worker import Worker
from hub.store import EventStore
from hub.store.projections import ProjectionStore
from projections.ledger import Ledger, queries

DEMO_SETTINGS = RuntimeSettings(poll_interval=0.2)


def sample_events() -> list[NewEvent]:
    """The demo's events, as the connectors would have stored them."""
    raw = resources.files("hub.app").joinpath("samples", "demo_events.json").read_bytes()
    return [
        NewEvent(
            source=item["source"],
            external_id=item["external_id"],
            type=item["type"],
            occurred_at=datetime.fromisoformat(item["occurred_at"]),
            data=item["data"],
            meta={"demo": True},
        )
        for item in orjson.loads(raw)["events"]
    ]


@dataclass(frozen=True)
class DemoReport:
    """What the demo did and what the books say."""

    appended: int
    duplicates: int
    head: int
    trial_balance: dict[str, Any]
    chain: ChainReport


async def _run_ledger_until_caught_up(dsn: str, store: EventStore, patience: float) -> None:
    worker = Worker(dsn, [Ledger], DEMO_SETTINGS)
    task = asyncio.create_task(worker.run())
    projections = ProjectionStore.over(store)
    try:
        deadline = asyncio.get_running_loop().time() + patience
        while True:
            ledger = [s for s in await projections.status() if s.name == Ledger.name]
            if ledger and ledger[0].position >= ledger[0].head and ledger[0].state == "running":
                return
            if task.done():
                task.result()  # the worker died: raise its error
            if asyncio.get_running_loop().time() > deadline:
                raise StoreUnavailable(f"the ledger did not catch up within {patience:.0f} s")
            await asyncio.sleep(0.1)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def run_demo(dsn: str, *, patience: float = 60) -> DemoReport:
    """Deliver every sample twice (providers redeliver), book them, verify the chain."""
    async with await EventStore.open(dsn) as store:
        events = sample_events()
        results = await store.append(events) + await store.append(events)
        await _run_ledger_until_caught_up(dsn, store, patience)
        async with ProjectionStore.over(store).pool.acquire() as conn:
            balance = await queries.trial_balance(conn, "default")
        return DemoReport(
            appended=sum(r.status == "appended" for r in results),
            duplicates=sum(r.status == "duplicate" for r in results),
            head=await store.head(),
            trial_balance=balance,
            chain=await verify_chain(store),
        )
