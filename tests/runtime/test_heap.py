"""``tune_heap``: young collections wait for ``YOUNG_THRESHOLD`` objects, and garbage in
reference cycles is still collected without anyone calling ``gc.collect``."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from typing import Any

import pytest

from hub.runtime.heap import YOUNG_THRESHOLD, tune_heap


class _Node:
    other: _Node | None = None


@pytest.fixture
def tuned() -> Iterator[list[int]]:
    """The heap tuned as ``serve`` and ``worker`` tune it; yields what each collection
    found in cycles (the process's collector settings are restored after)."""
    thresholds = gc.get_threshold()
    found: list[int] = []

    def count(phase: str, info: dict[str, Any]) -> None:
        if phase == "stop":
            found.append(info["collected"])

    tune_heap()
    gc.callbacks.append(count)
    try:
        yield found
    finally:
        gc.callbacks.remove(count)
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def test_a_batch_held_and_freed_does_not_start_a_collection(tuned: list[int]) -> None:
    """As a worker holds a batch's decoded events until it is applied, then drops them (with
    the default threshold of 700, each round below would start about 30 collections)."""
    for _ in range(20):
        batch = [{"data": [n]} for n in range(YOUNG_THRESHOLD // 5)]
        del batch
    assert tuned == []


def test_garbage_in_cycles_is_collected_without_gc_collect(tuned: list[int]) -> None:
    first: weakref.ref[_Node] | None = None
    for _ in range(2 * YOUNG_THRESHOLD):
        a, b = _Node(), _Node()
        a.other, b.other = b, a  # a cycle: reference counting alone never frees it
        first = first or weakref.ref(a)
    assert first is not None
    assert first() is None
    assert sum(tuned) >= YOUNG_THRESHOLD
