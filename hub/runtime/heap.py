"""The heap of a long-running process (``serve``, ``worker``): start-up frozen, young
collections sized for batches.

Two measured costs of Python's cyclic collector in a worker (CPython 3.11):

- A full (generation 2) collection walks every tracked object, most of them the modules,
  classes and functions imported at start-up, which never become garbage: 15-50 ms a pause in a
  worker holding its imports and a mapping memo. ``gc.freeze()`` moves what exists at start-up
  to a permanent generation no collection walks (the use the ``gc`` module's documentation
  gives it).
- A young collection runs each time the tracked objects made exceed those freed by 700 (the
  default threshold). A worker's batch holds thousands of decoded payloads alive until it is
  applied, so with 700 the collector ran about 1,700 young, 160 middle and 15 full collections
  in a 25,000-event ledger rebuild, 1.9 s of its 10 s, and found little: nothing in a batch is
  garbage before the batch is done. ``YOUNG_THRESHOLD`` lets a young collection wait for
  50,000 more objects than were freed: 7 young and 1 full collection in the same rebuild,
  0.16 s. Garbage in reference cycles still counts towards that excess, so it is still
  collected, at most ``YOUNG_THRESHOLD`` objects later (``tests/runtime/test_heap.py``).
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 50_000
"""Tracked objects made minus freed before a young collection (CPython's default: 700)."""


def tune_heap() -> None:
    """Collect once, leave everything alive now out of every later collection, and let young
    collections wait for ``YOUNG_THRESHOLD`` objects (the older generations' thresholds keep
    their defaults)."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
