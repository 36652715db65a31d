"""``Behind``: where a worker's runners are; a paced runner waits for the slowest paced one."""

from __future__ import annotations

import asyncio

import pytest

from hub.runtime import behind
from hub.runtime.behind import Behind


async def _settle() -> None:
    """Let every task that can run, run (one event loop: nothing else moves a unit)."""
    for _ in range(20):
        await asyncio.sleep(0)


async def test_a_paced_unit_ahead_of_the_window_waits_until_the_slowest_moves_up() -> None:
    units = Behind()
    units.move(("slow", 0), 1_000, paced=True)
    units.move(("fast", 0), 1_000 + behind.WINDOW + 500, paced=True)
    waiting = asyncio.create_task(units.keep_up(("fast", 0), 1_000 + behind.WINDOW + 500))
    await _settle()
    assert not waiting.done()
    units.move(("slow", 0), 1_200, paced=True)  # moved, still too far behind
    await _settle()
    assert not waiting.done()
    units.move(("slow", 0), 1_500, paced=True)
    await asyncio.wait_for(waiting, 5)


async def test_a_unit_at_the_head_or_unpaced_is_not_waited_for() -> None:
    units = Behind()
    units.move(("counts", 0), 10, paced=False)  # behind, but it maps nothing
    units.move(("ledger", 0), 10_000, paced=True)
    await asyncio.wait_for(units.keep_up(("ledger", 0), 10_000), 5)
    units.move(("recon", 0), 10, paced=True)
    waiting = asyncio.create_task(units.keep_up(("ledger", 0), 10_000))
    await _settle()
    assert not waiting.done()
    units.move(("recon", 0), None)  # caught up (or stopped)
    await asyncio.wait_for(waiting, 5)
    assert units.only(("ledger", 0)) is False  # "counts" is still behind
    units.move(("counts", 0), None)
    assert units.only(("ledger", 0))


async def test_a_unit_that_does_not_move_is_waited_for_only_so_long(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(behind, "PATIENCE", 0.05)
    units = Behind()
    units.move(("stuck", 0), 0, paced=True)
    units.move(("fast", 0), 50_000, paced=True)
    await asyncio.wait_for(units.keep_up(("fast", 0), 50_000), 5)
    # not waited for again until it moves (a runner retrying a failing batch, say)
    monkeypatch.setattr(behind, "PATIENCE", 60)
    await asyncio.wait_for(units.keep_up(("fast", 0), 51_000), 5)
    units.move(("stuck", 0), 1_000, paced=True)  # it moved: it counts again
    waiting = asyncio.create_task(units.keep_up(("fast", 0), 52_000))
    await _settle()
    assert not waiting.done()
    units.move(("stuck", 0), 50_500, paced=True)
    await asyncio.wait_for(waiting, 5)
