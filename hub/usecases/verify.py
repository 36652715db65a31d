"""Walk the hash chain and name the first position where it breaks; optionally check it against
a head hash kept elsewhere (after a restore: is this the log whose head was written down?)."""

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
    hash_at: bytes | None = None
    """The chain's hash at the position ``verify_chain`` was asked to keep (if reached)."""

    @property
    def ok(self) -> bool:
        return self.broken_at is None


@dataclass(frozen=True)
class ExpectedHead:
    """A hash of the log kept outside it: the chain's hash at ``position`` (``None``: at the
    log's head). The log may have grown since a position was written down; every event up to
    it must be the one that was there, since each hash covers all those before it."""

    hash: bytes
    position: int | None = None

    @classmethod
    def parse(cls, text: str) -> ExpectedHead:
        """``HASH`` (64 hex digits: the head must be that) or ``POSITION:HASH`` (the hash at
        that position must be that, as ``ledgerhub verify`` printed it then); ``ValueError``
        naming what is wrong."""
        where, _, digits = text.strip().rpartition(":")
        position = None
        if where:
            if not where.isdigit() or int(where) < 1:
                raise ValueError(f"{where!r} is not a position (1 or more)")
            position = int(where)
        try:
            value = bytes.fromhex(digits)
        except ValueError:
            value = b""
        if len(value) != 32:
            raise ValueError(f"{digits!r} is not a hash (64 hex digits, as `verify` prints it)")
        return cls(value, position)

    def check(self, report: ChainReport) -> str | None:
        """Why ``report`` (of a chain that verified) is not the log this hash was kept of, or
        ``None`` when it is."""
        if self.position is None:
            if report.head_hash != self.hash:
                return (
                    f"the head hash is {report.head_hash.hex()} at position {report.checked}, "
                    f"not the expected {self.hash.hex()}"
                )
            return None
        if report.checked < self.position:
            return (
                f"the log ends at position {report.checked}, before position {self.position} "
                "of the expected head (events were lost)"
            )
        if report.hash_at != self.hash:
            found = report.hash_at.hex() if report.hash_at is not None else "unknown"
            return (
                f"the hash at position {self.position} is {found}, not the expected "
                f"{self.hash.hex()} (the log was altered or is another one)"
            )
        return None


async def verify_chain(
    store: EventStore,
    *,
    batch: int = 5000,
    on_progress: Callable[[int, int], None] | None = None,
    hash_at: int | None = None,
) -> ChainReport:
    """Recompute every event's hash from its stored fields and check positions are 1..N;
    ``hash_at``: also keep the chain's hash at that position (``ChainReport.hash_at``)."""
    total = await store.head()
    previous = GENESIS_HASH
    expected = 1
    kept: bytes | None = None
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
            if expected == hash_at:
                kept = computed
            expected += 1
        if on_progress is not None:
            on_progress(expected - 1, total)
    return ChainReport(expected - 1, previous, hash_at=kept)
