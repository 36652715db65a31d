"""Progress for long commands: a rich bar on a terminal, plain lines otherwise.

- ``progress(label)``: one count (``update(done, total)``), e.g. events verified;
- ``stages(label, minimum)``: a command that goes through stages, each with its own count
  (``update(stage, done, total)``), e.g. ``ledgerhub import bank``: reading the file's lines,
  checking its transactions, preparing events, appending them to the log. Nothing is shown when
  the first count reported is below ``minimum`` (a small file is done before a bar helps).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

PLAIN_EVERY = 5.0
"""Seconds between two plain progress lines of one stage (off a terminal)."""


@contextmanager
def progress(label: str) -> Iterator[Callable[[int, int], None]]:
    """Yield ``update(done, total)``; draws a bar on a TTY, else prints a line every few seconds."""
    if sys.stderr.isatty():
        with Progress(
            TextColumn(label),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            transient=True,
        ) as bar:
            task = bar.add_task(label, total=None)

            def update(done: int, total: int) -> None:
                bar.update(task, completed=done, total=max(total, done))

            yield update
        return

    last = 0.0

    def update_plain(done: int, total: int) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= PLAIN_EVERY or done >= total:
            last = now
            print(f"{label}: {done}/{total}", file=sys.stderr, flush=True)

    yield update_plain


Staged = Callable[[str, int, "int | None"], None]
"""``update(stage, done, total)``: ``done`` of ``total`` in ``stage`` (total None: unknown)."""


@contextmanager
def stages(label: str, minimum: int = 0) -> Iterator[Staged]:
    """Yield ``update(stage, done, total)``. On a TTY: one bar, its text naming the stage, with
    the count and the time elapsed in the stage; otherwise a line when a stage starts, when it
    completes and every ``PLAIN_EVERY`` seconds between. Silent throughout if the first total
    reported is below ``minimum``."""
    shown: bool | None = None  # decided by the first update

    def wanted(total: int | None) -> bool:
        nonlocal shown
        if shown is None:
            shown = total is None or total >= minimum
        return shown

    if sys.stderr.isatty():
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            transient=True,
            auto_refresh=True,
        ) as bar:
            task = bar.add_task(label, total=None, visible=False)
            current = [""]

            def update(stage: str, done: int, total: int | None) -> None:
                if not wanted(total):
                    return
                whole = None if total is None else max(total, done)
                text = f"{label}: {stage}"
                if stage != current[0]:  # a new stage: its own count and its own clock
                    current[0] = stage
                    bar.reset(task, total=whole, completed=done, description=text, visible=True)
                else:
                    bar.update(task, completed=done, total=whole)

            yield update
        return

    last: tuple[str, float] = ("", 0.0)

    def update_plain(stage: str, done: int, total: int | None) -> None:
        nonlocal last
        if not wanted(total):
            return
        now = time.monotonic()
        finished = total is not None and done >= total
        if stage != last[0] or finished or now - last[1] >= PLAIN_EVERY:
            count = f"{done}/{total}" if total is not None else f"{done}"
            print(f"{label}: {stage} {count}", file=sys.stderr, flush=True)
            last = (stage, now)

    yield update_plain
