"""Where the runners of one worker process are while they are behind the head of the log.

``Runner._read`` uses it twice:

- A runner reads its next batch ahead only when it is the one runner of its process behind
  (``only``): with several behind, the process's one CPU is busy anyway (measured at 25,000
  events: a ledger rebuild alone 9% faster reading ahead, a catch-up of every projection 13%
  slower).
- Runners whose projection prepares events (``Projection.prepare``: they map them, as the
  ledger, accounting and reconciliation do) keep within ``WINDOW`` events of the slowest such
  runner of the process (``keep_up``). What one maps, the others then find in the mapping
  memo (``BooksConfig.remember``, about the last 4,000 events). Without it the faster ones ran
  ahead past the memo: in a catch-up of every projection in one worker (25,000 events) each
  event was mapped 2.5 times and booked 1.7 times, 19.8 s; with it once each, 15.8 s (a memo
  holding the whole log: 14.9 s, twice the memory). A runner never waits for long on one that
  does not move: after ``PATIENCE`` seconds in which no runner of the process read a batch, it
  goes on, and no runner waits for that one again until it moves (one retrying a failing batch,
  say).
"""

from __future__ import annotations

import asyncio

Unit = tuple[str, int]
"""(projection, partition)."""

WINDOW = 2_000
"""Events a preparing runner may be ahead of the slowest preparing runner of its process (the
mapping memo holds two results per event for about 4,000 events)."""

PATIENCE = 2.0
"""Seconds a runner waits, while no runner of the process moves, before it goes on alone."""


class Behind:
    """The units of one process behind the head, each at the position it reads from next."""

    def __init__(self) -> None:
        self._at: dict[Unit, int] = {}
        self._paced: set[Unit] = set()
        self._stalled: set[Unit] = set()
        """Paced units waited for ``PATIENCE`` seconds in vain; not waited for until they move."""
        self._moved = asyncio.Event()

    def __contains__(self, unit: object) -> bool:
        return unit in self._at

    def only(self, unit: Unit) -> bool:
        """Whether ``unit`` is the one unit of the process behind the head."""
        return len(self._at) == 1 and unit in self._at

    def move(self, unit: Unit, position: int | None, *, paced: bool = False) -> None:
        """``unit`` reads from ``position`` next (None: it is at the head, or stopped);
        ``paced``: it keeps up with the others (``keep_up``) and they wait for it."""
        self._stalled.discard(unit)
        if position is None:
            self._at.pop(unit, None)
            self._paced.discard(unit)
        else:
            self._at[unit] = position
            if paced:
                self._paced.add(unit)
            else:
                self._paced.discard(unit)
        moved, self._moved = self._moved, asyncio.Event()
        moved.set()

    async def keep_up(self, unit: Unit, position: int) -> None:
        """Wait while ``position`` is more than ``WINDOW`` events past the slowest other
        paced unit, or until no unit has moved for ``PATIENCE`` seconds (then that unit is
        stalled: not waited for until it moves)."""
        while True:
            waited = [
                (at, other)
                for other, at in self._at.items()
                if other in self._paced and other != unit and other not in self._stalled
            ]
            if not waited or position - min(waited)[0] <= WINDOW:
                return
            try:
                await asyncio.wait_for(self._moved.wait(), PATIENCE)
            except TimeoutError:
                self._stalled.add(min(waited)[1])
                return
