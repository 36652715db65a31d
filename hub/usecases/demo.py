"""The demo: a month of sample activity into the log (delivered twice), the projections that keep
the books and compute the accounting documents run until caught up, the trial balance, the books
sent to a Beancount file (checked by Beancount's own loader), and the hash chain verified.

Without ``LEDGERHUB_CONFIG`` the demo writes its own config (``demo.toml`` under
``LEDGERHUB_HOME``: a New York business syncing per payout to Beancount) and uses it. Which
projections those are is found through the registry (``hub.spi.registry.trial_balance_source``
and ``document_source``), so the demo names none.

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

from hub.config import Config, Settings, load_config
from hub.domain.events import NewEvent
from hub.errors import StoreUnavailable
from hub.runtime.settings import RuntimeSettings
from hub.runtime.worker import Worker
from hub.spi.documents import DocumentSource
from hub.spi.projection import Projection
from hub.spi.registry import document_source, provider, trial_balance_source
from hub.spi.reports import TrialBalanceSource
from hub.store import EventStore
from hub.store.projections import ProjectionStore
from hub.sync.sender import Sender
from hub.sync.tenants import open_targets
from hub.usecases.verify import ChainReport, verify_chain

DEMO_CONFIG = """\
# Written by `ledgerhub demo` because LEDGERHUB_CONFIG was not set; see README.md for the format.
[tenants.default]
timezone = "America/New_York"
currency = "USD"
sync = { target = "beancount", mode = "per_payout" }
"""

DEMO_SETTINGS = RuntimeSettings(poll_interval=0.2)


def sample_events() -> list[NewEvent]:
    """The demo's events, as the connectors would have stored them."""
    raw = resources.files("hub.usecases").joinpath("samples", "demo_events.json").read_bytes()
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
class SyncReport:
    """One sync run of the demo."""

    target: str
    location: str
    sent: int
    failed: int
    problems: list[str]
    """What Beancount's own loader (the code behind ``bean-check``) says of the file."""


@dataclass(frozen=True)
class DemoReport:
    """What the demo did and what the books say."""

    config: str
    appended: int
    duplicates: int
    head: int
    trial_balance: dict[str, Any]
    syncs: list[SyncReport]
    chain: ChainReport


def demo_config(settings: Settings) -> Config:
    """The config the demo uses: ``LEDGERHUB_CONFIG``, else its own file, written once."""
    if settings.config_file is not None:
        return load_config(settings.config_file)
    path = settings.home / "demo.toml"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(DEMO_CONFIG)
    return load_config(path)


def _beancount_problems(path: str) -> list[str]:
    from beancount import loader

    _, errors, _ = loader.load_file(path)
    return [str(getattr(error, "message", error)) for error in errors]


async def _run_until_caught_up(
    dsn: str,
    store: EventStore,
    config: Config,
    projections: list[type[Projection]],
    patience: float,
) -> None:
    worker = Worker(dsn, projections, DEMO_SETTINGS, config=config)
    task = asyncio.create_task(worker.run())
    status = ProjectionStore.over(store)
    names = {p.name for p in projections}
    try:
        deadline = asyncio.get_running_loop().time() + patience
        while True:
            ready = {
                s.name
                for s in await status.status()
                if s.name in names and s.position >= s.head and s.state == "running"
            }
            if ready == names:
                return
            if task.done():
                task.result()  # the worker died: raise its error
            if asyncio.get_running_loop().time() > deadline:
                raise StoreUnavailable(f"the projections did not catch up within {patience:.0f} s")
            await asyncio.sleep(0.1)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _sync(
    store: EventStore, source: DocumentSource, config: Config, settings: Settings
) -> list[SyncReport]:
    reports = []
    sender = Sender(store, source)
    async with open_targets(config, settings.home) as pairs:
        for tenant, target in pairs:
            run_id = await sender.run(tenant, target)
            run = next(r for r in await sender.log.runs(tenant=tenant) if r.id == run_id)
            location = str(getattr(target, "path", target.name))
            problems = _beancount_problems(location) if target.name == "beancount" else []
            reports.append(SyncReport(target.name, location, run.sent, run.failed, problems))
    return reports


async def run_demo(dsn: str, *, patience: float = 60) -> DemoReport:
    """Deliver every sample twice (providers redeliver), book and sync them, verify the chain."""
    settings = Settings.from_env()
    config = demo_config(settings)
    books, documents = trial_balance_source(), document_source()
    projections = [
        provider(TrialBalanceSource, "a trial balance"),
        provider(DocumentSource, "accounting documents"),
    ]
    async with await EventStore.open(dsn) as store:
        events = sample_events()
        results = await store.append(events) + await store.append(events)
        await _run_until_caught_up(dsn, store, config, projections, patience)
        async with ProjectionStore.over(store).pool.acquire() as conn:
            balance = await books.trial_balance(conn, "default")
        syncs = await _sync(store, documents, config, settings)
        return DemoReport(
            config=str(config.path),
            appended=sum(r.status == "appended" for r in results),
            duplicates=sum(r.status == "duplicate" for r in results),
            head=await store.head(),
            trial_balance=balance,
            syncs=syncs,
            chain=await verify_chain(store),
        )
