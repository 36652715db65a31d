"""A sender that dies after a call reached the target and before its outcome was recorded, and
a document that changes before the next run: the target still ends with one copy of each
document, of its latest content, under the key ``sync_documents`` records. The same holds for a
document voided and then wanted again (no crash needed: a key answered with a voided copy).

A process's death is a ``BaseException`` raised by the target right after the call returned
(nothing the sender does after the call happens). The documents come from a source of their
own (``hub.spi.documents.DocumentSource``), so a test can change one between runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from ledgerhub_example.target import JsonLinesTarget

from connectors.beancount import BeancountTarget
from connectors.xero.target import AiohttpTransport, Tokens, XeroTarget
from hub.domain.documents import Document
from hub.spi.target import BatchingTarget, HeldDocument, Receipt, Target
from hub.store import EventStore
from hub.sync.sender import Backoff, Sender
from hub.testing.target import document
from tests.accounting.fake_xero import FakeXero, serve
from tests.accounting.targets import CHART

FAST = Backoff(attempts=3, initial=0.001, maximum=0.01)


class _Died(BaseException):
    """The sender's process ended here."""


class _Source:
    """A ``DocumentSource`` holding whatever documents the test gives it."""

    def __init__(self) -> None:
        self.docs: list[Document] = []

    async def documents(self, conn: Any, tenant: str, target: str) -> list[Document]:
        return [dataclasses.replace(d, target=target) for d in self.docs]

    async def last_positions(self, conn: Any, tenant: str, target: str) -> dict[str, int]:
        return {}


class _Dying:
    """``target``, but the process dies right after the next call named ``dies_after``
    returned (the call made, its outcome never recorded)."""

    def __init__(self, target: Target) -> None:
        self.inner = target
        self.name = target.name
        self.supports_update = target.supports_update
        self.dies_after: str | None = None

    async def _after(self, operation: str, receipt: Receipt) -> Receipt:
        if self.dies_after == operation:
            self.dies_after = None
            raise _Died
        return receipt

    async def create(self, document: Document) -> Receipt:
        return await self._after("create", await self.inner.create(document))

    async def update(self, target_id: str, document: Document) -> Receipt:
        return await self._after("update", await self.inner.update(target_id, document))

    async def void(self, target_id: str) -> Receipt:
        return await self._after("void", await self.inner.void(target_id))

    async def held(self) -> list[HeldDocument]:
        return await self.inner.held()


class _DyingBatches(_Dying):
    """``_Dying`` for a target that batches: its calls are durable at the flush, so the
    process dies right after a ``flush`` (``dies_after = "flush"``)."""

    def __init__(self, target: BatchingTarget) -> None:
        super().__init__(target)
        self.batching = target

    def batch(self) -> contextlib.AbstractAsyncContextManager[None]:
        return self.batching.batch()

    async def flush(self) -> None:
        await self.batching.flush()
        if self.dies_after == "flush":
            self.dies_after = None
            raise _Died


@contextlib.asynccontextmanager
async def _jsonl(tmp: Path) -> AsyncIterator[Target]:
    yield JsonLinesTarget(tmp / "books.jsonl", {"1000", "1200", "4000"})


@contextlib.asynccontextmanager
async def _xero(tmp: Path) -> AsyncIterator[Target]:
    refresh = tmp / "xero-refresh-token"
    refresh.write_text("r0")
    fake = FakeXero(set(CHART), "r0", "org-1")
    async with serve(fake), aiohttp.ClientSession() as session:
        transport = AiohttpTransport(session, timeout=5)
        tokens = Tokens(transport, "client", "secret", refresh, f"{fake.url}/connect/token")
        yield XeroTarget(transport, tokens, "org-1", api=f"{fake.url}/api.xro/2.0", accounts=CHART)


@contextlib.asynccontextmanager
async def _beancount(tmp: Path) -> AsyncIterator[Target]:
    yield BeancountTarget(tmp / "default.beancount", CHART)


TARGETS = {"jsonl": _jsonl, "xero": _xero, "beancount": _beancount}
"""A target that voids and re-creates (the example plugin), one that updates over HTTP with
idempotency keys (Xero's), and one that batches (the Beancount file, durable at the flush)."""


def _version(amount: int) -> list[Document]:
    """The documents as they are now: a payout of ``amount`` (Xero cannot change a transfer
    in place: it voids and re-creates it) and a payment that never changes."""
    payout = Document(
        "default",
        "",
        "stripe:acct/payout:po_1",
        "transfer",
        date(2024, 3, 2),
        "payout po_1",
        (("1000", "USD", amount), ("1200", "USD", -amount)),
    )
    return [payout, document("stripe:acct/charge:ch_2", 900)]


class _Case:
    """One target, its documents and a sender that can die."""

    def __init__(self, store: EventStore, inner: Target) -> None:
        self.inner = inner
        batching = isinstance(inner, BatchingTarget)
        self.target = _DyingBatches(inner) if isinstance(inner, BatchingTarget) else _Dying(inner)
        self.durable = "flush" if batching else None
        """Where a call becomes durable: the flush at a target that batches, else the call."""
        self.source = _Source()
        self.sender = Sender(store, self.source, FAST)

    async def run(self, docs: list[Document]) -> None:
        self.source.docs = docs
        await self.sender.run("default", self.target)  # type: ignore[arg-type]

    async def dies(self, docs: list[Document], operation: str) -> None:
        """A run that dies right after its first call named ``operation`` was made durable
        (returned, or at a target that batches, was flushed)."""
        self.target.dies_after = self.durable or operation
        with pytest.raises(_Died):
            await self.run(docs)

    async def check(self) -> None:
        """The target holds each document once, of its latest content, under the recorded
        key."""
        held = await self.inner.held()
        recorded = {
            k: r for k, r in (await self.sender.log.held("default", self.inner.name)).items()
            if r.status == "synced"
        }  # fmt: skip
        wanted = await self.source.documents(None, "default", self.inner.name)
        assert sorted(h.content_hash for h in held) == sorted(d.content_hash for d in wanted)
        keys = sorted(r.idempotency_key for r in recorded.values())
        assert sorted(h.idempotency_key for h in held) == keys
        assert {r.content_hash for r in recorded.values()} == {h.content_hash for h in held}


@contextlib.asynccontextmanager
async def _case(store: EventStore, tmp: Path, name: str) -> AsyncIterator[_Case]:
    async with TARGETS[name](tmp) as inner:
        yield _Case(store, inner)


@pytest.mark.parametrize("name", sorted(TARGETS))
async def test_a_create_made_but_not_recorded_then_changed(
    store: EventStore, tmp_path: Path, name: str
) -> None:
    async with _case(store, tmp_path, name) as case:
        await case.dies(_version(2500), "create")  # the payout made, not recorded
        await case.run(_version(2400))
        await case.check()


@pytest.mark.parametrize("name", sorted(TARGETS))
async def test_a_change_made_but_not_recorded_then_changed_again(
    store: EventStore, tmp_path: Path, name: str
) -> None:
    async with _case(store, tmp_path, name) as case:
        await case.run(_version(2500))
        changing = "update" if case.inner.supports_update else "create"  # the re-create
        await case.dies(_version(2400), changing)
        await case.run(_version(2300))
        await case.check()
        for amount in (2500, 2400):  # content seen before: each copy under a key of its own
            await case.run(_version(amount))
            await case.check()


@pytest.mark.parametrize("name", sorted(TARGETS))
async def test_a_create_made_but_not_recorded_then_gone(
    store: EventStore, tmp_path: Path, name: str
) -> None:
    async with _case(store, tmp_path, name) as case:
        await case.dies(_version(2500), "create")  # the payout made, not recorded
        await case.run(_version(2500)[1:])  # and no longer wanted
        await case.check()
        assert await case.sender.log.pending("default", case.inner.name) == {}


@pytest.mark.parametrize("name", sorted(TARGETS))
async def test_a_document_voided_then_wanted_again_is_a_copy_of_its_own(
    store: EventStore, tmp_path: Path, name: str
) -> None:
    """Not a crash: a document gone (voided at the target) that comes back (a mapping changed
    back) is created again under a key of its own, never answered with the voided copy."""
    async with _case(store, tmp_path, name) as case:
        await case.run(_version(2500))
        await case.run(_version(2500)[1:])  # the payout voided
        await case.check()
        await case.run(_version(2500))  # and wanted again
        await case.check()
