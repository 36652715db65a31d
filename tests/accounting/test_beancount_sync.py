"""The sender and the Beancount target together: one file write per run, outcomes in the log
only after the file holds them, and a crash between the two repaired without duplicates."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from connectors.beancount import BeancountTarget
from hub.domain.documents import Document
from hub.store import EventStore
from hub.sync.sender import Backoff, Sender
from tests.accounting.targets import CHART, bean_check

FAST = Backoff(attempts=2, initial=0.001, maximum=0.01)


@dataclasses.dataclass
class Source:
    """A ``DocumentSource`` over documents in memory (the projection's port)."""

    docs: list[Document]

    async def documents(self, conn: Any, tenant: str, target: str) -> list[Document]:
        return list(self.docs)

    async def last_positions(self, conn: Any, tenant: str, target: str) -> dict[str, int]:
        return {}


def docs(n: int) -> list[Document]:
    start = date(2024, 1, 1)
    return [
        Document("default", "beancount", f"stripe:acct/charge:ch_{i}", "payment",
                 start + timedelta(days=i % 90), f"Payment {i}",
                 (("1200", "USD", 100 + i), ("4000", "USD", -(100 + i))))
        for i in range(n)
    ]  # fmt: skip


class Target(BeancountTarget):
    """The file target, counting its writes; ``fail``: the write fails (disk full);
    ``die``: the process dies just after the file was renamed into place."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, CHART)
        self.writes = 0
        self.fail = False
        self.die = False

    def _write(self, text: str) -> tuple[int, int, int]:
        if self.fail:
            raise OSError(28, "No space left on device")
        stamp = super()._write(text)
        self.writes += 1
        if self.die:
            raise SystemExit("killed after the rename")
        return stamp


async def synced(store: EventStore) -> list[dict[str, Any]]:
    rows = await store.read_after(0, limit=100_000)
    return [e.data for e in rows if e.type == "accounting.document.synced"]


async def failed(store: EventStore) -> list[dict[str, Any]]:
    rows = await store.read_after(0, limit=100_000)
    return [e.data for e in rows if e.type == "accounting.document.failed"]


async def test_a_run_writes_the_file_once_and_logs_every_outcome(
    store: EventStore, tmp_path: Path
) -> None:
    source = Source(docs(120))
    target = Target(tmp_path / "default.beancount")
    sender = Sender(store, source, FAST)
    run_id = await sender.run("default", target)
    assert run_id is not None
    assert target.writes == 1
    bean_check(target.path)
    assert len(await synced(store)) == 120
    assert len(await sender.log.calls(run_id)) == 120
    held = await sender.log.held("default", "beancount")
    assert {h.status for h in held.values()} == {"synced"}

    amended = [
        dataclasses.replace(d, description=f"{d.description} (amended)") for d in source.docs
    ]
    source.docs = [
        amended[n] if n % 10 == 0 else d for n, d in enumerate(source.docs) if n % 10 != 1
    ]
    again = await sender.run("default", target)
    assert again is not None
    assert target.writes == 2  # 12 updates and 12 voids: one more write
    operations = [c["operation"] for c in await sender.log.calls(again)]
    assert sorted(set(operations)) == ["update", "void"]
    assert len(operations) == 24
    file_held = {h.content_hash for h in await BeancountTarget(target.path, CHART).held()}
    assert file_held == {d.content_hash for d in source.docs}


async def test_a_write_that_fails_logs_no_document_as_synced(
    store: EventStore, tmp_path: Path
) -> None:
    source = Source(docs(30))
    target = Target(tmp_path / "default.beancount")
    target.fail = True
    sender = Sender(store, source, FAST)
    run_id = await sender.run("default", target)
    rows = await sender.projections.fetch("SELECT * FROM ledgerhub.sync_runs WHERE id = $1", run_id)
    assert (rows[0]["sent"], rows[0]["failed"]) == (0, 30)
    assert rows[0]["retries"] == FAST.attempts - 1  # the flush was retried like a call
    assert await synced(store) == []  # the log claims nothing the file does not hold
    failures = await failed(store)
    assert len(failures) == 30
    assert all("No space left" in f["message"] and not f["parked"] for f in failures)
    assert not target.path.exists()

    target.fail = False  # the disk has room again: the next run sends them all
    await sender.run("default", target)
    assert len(await synced(store)) == 30
    assert len(await target.held()) == 30


async def test_a_crash_between_the_file_and_the_log_is_repaired_without_duplicates(
    store: EventStore, tmp_path: Path
) -> None:
    source = Source(docs(40))
    dying = Target(tmp_path / "default.beancount")
    dying.die = True
    with pytest.raises(SystemExit):
        await Sender(store, source, FAST).run("default", dying)
    # the file holds every document; the log records none of them as synced
    written = dying.path.read_bytes()
    assert len(await BeancountTarget(dying.path, CHART).held()) == 40
    assert await synced(store) == []

    restarted = Target(dying.path)  # a new process: the file is read back
    sender = Sender(store, source, FAST)
    run_id = await sender.run("default", restarted)
    assert run_id is not None
    calls = await sender.log.calls(run_id)
    assert [c["operation"] for c in calls] == ["create"] * 40  # repeated, same keys
    assert restarted.writes == 0  # every key was held: nothing to change
    assert restarted.path.read_bytes() == written  # no second copy of anything
    outcomes = await synced(store)
    assert len(outcomes) == 40
    assert {o["target_id"] for o in outcomes} == {d.idempotency_key for d in source.docs}
    text = restarted.path.read_text()
    assert all(text.count(f'"{d.idempotency_key}"') == 1 for d in source.docs)
    bean_check(restarted.path)


async def test_outcome_events_are_appended_after_the_flush(
    store: EventStore, tmp_path: Path
) -> None:
    """Order, observed: when the file is flushed, the log holds no synced outcome yet."""
    target = Target(tmp_path / "default.beancount")
    logged_at_flush: list[int] = []
    flush = target.flush

    async def watched() -> None:
        logged_at_flush.append(len(await synced(store)))
        await flush()

    target.flush = watched  # type: ignore[method-assign]
    await Sender(store, Source(docs(5)), FAST).run("default", target)
    assert logged_at_flush[0] == 0  # the run's flush (the batch's end finds nothing left)
    assert target.writes == 1
    assert len(await synced(store)) == 5
