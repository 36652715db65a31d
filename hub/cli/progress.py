"""Progress for long commands: a rich bar on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


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
        if now - last >= 5 or done >= total:
            last = now
            print(f"{label}: {done}/{total}", file=sys.stderr, flush=True)

    yield update_plain
