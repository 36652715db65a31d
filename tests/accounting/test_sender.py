"""The sender: documents reach the Beancount file once each, outcomes land in the log, runs
and calls are recorded, and only new or changed documents are sent again."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import asyncpg
import orjson

from connectors.beancount import BeancountTarget
from hub import telemetry
from hub.config.books import DEFAULT_CHART
from hub.domain.documents import Document
from hub.errors import TargetUnavailable
from hub.spi.target import Receipt
from hub.store import EventStore
from hub.sync.sender import Backoff, Sender
from projections.accounting import Accounting
from projections.ledger import Ledger
from tests.accounting.harness import documents, running, settle, write_config
from tests.accounting.targets import bean_check
from tests.api.test_metrics import parse, value
from tests.ledger.harness import Books
from tests.ledger.scenarios import stripe_scenario

CHART = {a.code: a for a in DEFAULT_CHART}
FAST = Backoff(attempts=3, initial=0.001, maximum=0.01)


async def _outcomes(conn: asyncpg.Connection, event_type: str) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT data::text AS data FROM ledgerhub.events WHERE type = $1 ORDER BY position",
        event_type,
    )
    return [orjson.loads(r["data"]) for r in rows]


async def _run(sender: Sender, target: Any) -> asyncpg.Record:
    run_id = await sender.run("default", target)
    assert run_id is not None
    rows = await sender.projections.fetch("SELECT * FROM ledgerhub.sync_runs WHERE id = $1", run_id)
    return rows[0]


async def _books_ready(dsn: str, store: EventStore, books: Books, events: list[Any]) -> None:
    async with running(dsn):
        await store.append(events)
        await settle(books.conn, ("ledger", "accounting"))


async def test_each_document_is_sent_once_and_its_outcome_logged(
    dsn: str, store: EventStore, config: Path, books: Books, tmp_path: Path
) -> None:
    write_config(config, "per_transaction")
    scenario = stripe_scenario()
    await _books_ready(dsn, store, books, scenario.before_payout + scenario.payout_paid)
    docs = await documents(books.conn)
    target = BeancountTarget(tmp_path / "default.beancount", CHART)
    sender = Sender(store, Accounting, FAST)

    first = await _run(sender, target)
    assert (first["sent"], first["failed"], first["parked"]) == (len(docs), 0, 0)
    assert first["ended_at"] is not None
    bean_check(target.path)
    held = {h.target_id: h.content_hash for h in await target.held()}
    assert sorted(held.values()) == sorted(d["content_hash"] for d in docs.values())
    synced = await _outcomes(books.conn, "accounting.document.synced")
    assert sorted(s["doc_key"] for s in synced) == sorted(docs)
    assert all(s["target_id"] in held for s in synced)
    calls = await sender.log.calls(first["id"])
    assert len(calls) == len(docs)
    assert {c["status"] for c in calls} == {"ok"}

    again = await _run(sender, target)  # nothing new: nothing sent, no call made
    assert again["sent"] == 0
    assert await sender.log.calls(again["id"]) == []

    # a crash after the calls but before they were recorded: the sends repeat, keyed the same
    await books.conn.execute("DELETE FROM ledgerhub.sync_documents")
    await _run(sender, target)
    assert {h.target_id: h.content_hash for h in await target.held()} == held
    synced = await _outcomes(books.conn, "accounting.document.synced")
    assert len(synced) == len(docs)  # the repeated outcomes were duplicates in the log
    await _books_ready(dsn, store, books, [])  # the ledger books nothing for the outcomes
    unmapped = await books.conn.fetchval(f"SELECT count(*) FROM {Ledger.view('unmapped')}")
    assert unmapped == 0


async def test_a_changed_document_is_updated_and_a_gone_one_voided(
    dsn: str, store: EventStore, config: Path, books: Books, tmp_path: Path
) -> None:
    write_config(config, "per_payout")
    scenario = stripe_scenario()
    await _books_ready(dsn, store, books, scenario.before_payout)
    target = BeancountTarget(tmp_path / "default.beancount", CHART)
    sender = Sender(store, Accounting, FAST)
    await _run(sender, target)
    before = {h.content_hash for h in await target.held()}

    await _books_ready(dsn, store, books, scenario.payout_paid)  # the payout's journal grows
    docs = await documents(books.conn)
    run = await _run(sender, target)
    calls = await sender.log.calls(run["id"])
    assert [c["operation"] for c in calls] == ["update"]
    after = {h.content_hash for h in await target.held()}
    assert after == {d["content_hash"] for d in docs.values()}
    assert len(after - before) == 1
    bean_check(target.path)


class _NoUpdate(BeancountTarget):
    """The same file, driven as a target that cannot update in place."""

    supports_update: ClassVar[bool] = False


async def test_without_update_a_change_is_void_then_recreate(
    dsn: str, store: EventStore, config: Path, books: Books, tmp_path: Path
) -> None:
    write_config(config, "per_payout")
    scenario = stripe_scenario()
    await _books_ready(dsn, store, books, scenario.before_payout)
    target = _NoUpdate(tmp_path / "default.beancount", CHART)
    sender = Sender(store, Accounting, FAST)
    await _run(sender, target)
    count = len(await target.held())
    await _books_ready(dsn, store, books, scenario.payout_paid)
    run = await _run(sender, target)
    assert [c["operation"] for c in await sender.log.calls(run["id"])] == ["void", "create"]
    docs = await documents(books.conn)
    held = await target.held()
    assert len(held) == count  # replaced, never a second copy
    assert {h.content_hash for h in held} == {d["content_hash"] for d in docs.values()}
    bean_check(target.path)


class _Flaky(BeancountTarget):
    """Unavailable for the first ``failures`` creates, then the real file target."""

    def __init__(self, path: Path, failures: int) -> None:
        super().__init__(path, CHART)
        self.failures = failures

    async def create(self, document: Document) -> Receipt:
        if self.failures > 0:
            self.failures -= 1
            raise TargetUnavailable("503 from the target", retry_after=0.001)
        return await super().create(document)


async def test_transient_failures_are_retried_and_rejections_parked(
    dsn: str, store: EventStore, config: Path, books: Books, tmp_path: Path
) -> None:
    write_config(config, "per_transaction")
    scenario = stripe_scenario()
    await _books_ready(dsn, store, books, scenario.before_payout)
    docs = await documents(books.conn)
    target = _Flaky(tmp_path / "default.beancount", failures=2)
    target.chart = {c: a for c, a in CHART.items() if c != "6000"}  # no fees account
    sender = Sender(store, Accounting, FAST)
    before = parse(telemetry.render().decode())
    run = await _run(sender, target)
    after = parse(telemetry.render().decode())

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    fee_docs = [d for d in docs.values() if "6000" in d["accounts"]]
    assert fee_docs
    assert run["retries"] == 2
    assert run["parked"] == len(fee_docs)
    assert run["sent"] == len(docs) - len(fee_docs)
    failed = await _outcomes(books.conn, "accounting.document.failed")
    assert all("6000" in f["message"] and f["parked"] for f in failed)
    assert len(failed) == len(fee_docs)
    documents_total = "ledgerhub_sync_documents_total"
    assert moved(documents_total, target="beancount", outcome="parked") == len(fee_docs)
    assert moved(documents_total, target="beancount", outcome="sent") == run["sent"]
    assert moved("ledgerhub_sync_retries_total", target="beancount") == 2
    calls = "ledgerhub_target_calls_total"
    assert moved(calls, target="beancount", operation="create", outcome="unavailable") == 2
    assert moved(calls, target="beancount", operation="create", outcome="rejected") == len(fee_docs)
    assert (await _run(sender, target))["parked"] == 0  # parked stays parked until it changes
