"""Shadow mode: compare the documents the books call for with what a target holds, and write
nothing — for running ledgerhub beside an existing sync during a validation period.

Each document is looked up at the target by the idempotency key it was (or would be) sent
under; a difference is ``missing`` (the target does not hold it), ``changed`` (it holds other
content) or ``extra`` (the target holds a ledgerhub document the books no longer call for).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hub.spi.documents import DocumentSource
from hub.spi.target import NOT_SENT, Target
from hub.store.projections import ProjectionStore
from hub.store.sync import SyncLog

DifferenceKind = Literal["missing", "changed", "extra"]


@dataclass(frozen=True)
class Difference:
    """One way the target differs from the books."""

    kind: DifferenceKind
    idempotency_key: str
    doc_key: str | None
    """The document's key (None for an ``extra`` the books know nothing of)."""
    description: str


async def compare(
    store: ProjectionStore, source: DocumentSource, tenant: str, target: Target
) -> list[Difference]:
    """The differences between ``tenant``'s documents (as ``source`` computes them) and what
    ``target`` holds (read only)."""
    async with store.pool.acquire() as conn:
        wanted = await source.documents(conn, tenant, target.name)
    sent = await SyncLog(store).held(tenant, target.name)
    held = {h.idempotency_key: h for h in await target.held()}
    found: list[Difference] = []
    expected: set[str] = set()
    for document in wanted:
        was = sent.get(document.key)
        if was is not None and was.target_id == NOT_SENT:
            continue  # a kind this target does not hold (a statement balance at Xero, say)
        key = was.idempotency_key if was is not None else document.idempotency_key
        expected.add(key)
        there = held.get(key)
        if there is None:
            found.append(Difference("missing", key, document.key, document.description))
        elif there.content_hash != document.content_hash:
            found.append(Difference("changed", key, document.key, document.description))
    for key in sorted(set(held) - expected):
        found.append(Difference("extra", key, None, f"target id {held[key].target_id}"))
    return found
