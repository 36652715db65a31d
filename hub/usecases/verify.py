"""Walk the hash chain and name the first position where it breaks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hub.domain.chain import GENESIS_HASH, event_hash
from hub.store.events import EventStore


@dataclass(frozen=True)
class ChainReport:
    """The outcome of a chain walk. ``broken_at`` is None when every link verified."""

    checked: int
    head_hash: bytes
    broken_at: int | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.broken_at is None


async def verify_chain(
    store: EventStore,
    *,
    batch: int = 5000,
    on_progress: Callable[[int, int], None] | None = None,
) -> ChainReport:
    """Recompute every event's hash from its stored fields and check positions are 1..N."""
    total = await store.head()
    previous = GENESIS_HASH
    expected = 1
    while True:
        links = await store.read_chain(expected - 1, limit=batch)
        if not links:
            break
        for link in links:
            if link.position != expected:
                return ChainReport(
                    expected - 1,
                    previous,
                    expected,
                    f"position {expected} is missing (the next stored event is {link.position})",
                )
            computed = event_hash(previous, link)
            if computed != link.hash:
                return ChainReport(
                    expected - 1,
                    previous,
                    expected,
                    f"hash mismatch: stored {link.hash.hex()[:16]}…, "
                    f"recomputed {computed.hex()[:16]}… (the event or one before it was altered)",
                )
            previous = computed
            expected += 1
        if on_progress is not None:
            on_progress(expected - 1, total)
    return ChainReport(expected - 1, previous)
