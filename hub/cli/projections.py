"""Shared by the projection commands: the store, and printing jobs and tables."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator, Sequence
from typing import Any

import orjson
from rich.table import Table

from hub.cli.context import database_dsn
from hub.cli.output import console
from hub.domain.projections import Job
from hub.store.projections import ProjectionStore


@contextlib.asynccontextmanager
async def open_projections() -> AsyncIterator[tuple[str, ProjectionStore]]:
    """The DSN and a ``ProjectionStore`` on it."""
    dsn = await database_dsn()
    async with await ProjectionStore.open(dsn, max_connections=4) as store:
        yield dsn, store


def print_rows(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A table: drawn by rich on a terminal, tab-separated lines with a header otherwise.

    On a terminal the table fits its width (80 columns and up): a cell too long for its column
    wraps onto more lines (``overflow="fold"``), never cut short with an ellipsis, so an id or a
    timestamp can always be copied whole."""
    if sys.stdout.isatty():
        table = Table(title=title)
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*("" if v is None else str(v) for v in row))
        console().print(table)
        return
    print("\t".join(columns))
    for row in rows:
        print("\t".join("-" if v is None else str(v) for v in row))


def print_json(value: Any) -> None:
    """``value`` as indented JSON on stdout."""
    sys.stdout.buffer.write(orjson.dumps(value, option=orjson.OPT_INDENT_2) + b"\n")
    sys.stdout.flush()


def describe(job: Job) -> str:
    """One line about a job."""
    what = (
        f"replay {job.projection} {job.from_position}..{job.to_position}"
        if job.kind == "replay"
        else f"rebuild {job.projection}"
    )
    if job.partition is not None:
        what += f" partition {job.partition}"
    send = " with --send" if job.send else ""
    return f"job {job.id} ({what}{send}): {job.state}, {job.done}/{job.total}"
