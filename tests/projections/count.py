"""Test projections, loaded by subprocess workers through ``LEDGERHUB_PROJECTIONS``.

``CountByType`` records every application of every event (``seen.applications``) and counts
events per type idempotently (``counts``), so tests can tell "applied exactly once" from
"applied again by a replay". It talks to the test through files in ``LEDGERHUB_TEST_DIR``:

- ``held-<pid>-<first>-<last>``: with ``LEDGERHUB_TEST_HOLD_AT=<mode>:<position>``, the first
  batch in that mode (``live``, ``rebuild``…) holding ``position``, of any process sharing the
  directory, writes this after its rows and then waits for a file ``release``: until then
  the batch cannot commit (a test kills or stops its worker there, at a point it knows); later
  batches pass (``hold-claimed``);
- ``LEDGERHUB_TEST_BATCH_SLEEP`` (seconds): every batch sleeps so long before it commits;
- ``active-<name>``: a file holding the pid of the process whose handler is running; finding it
  held by another live process means two were handling the projection at once, recorded as
  ``overlap-<pid>``;
- an event with ``data.poison`` fails with ``SkippableError`` until a file ``fixed`` exists;
- ``sent.log``: one line per event ``send`` was called for (``Mailer``).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from hub.domain.events import RecordedEvent
from hub.errors import SkippableError
from hub.spi.projection import Context, Projection


def _dir() -> Path | None:
    value = os.environ.get("LEDGERHUB_TEST_DIR")
    return Path(value) if value else None


def _enter(marker: Path) -> Path | None:
    """Claim ``marker`` for this process; record an overlap if a live process holds it."""
    while True:
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                text = marker.read_text()
                if not text:
                    continue  # its owner is still writing its pid
                os.kill(int(text), 0)
            except (ProcessLookupError, FileNotFoundError):
                marker.unlink(missing_ok=True)  # left behind by a killed process
                continue
            (marker.parent / f"overlap-{os.getpid()}").write_text(text)
            return None
        with os.fdopen(fd, "w") as out:
            out.write(str(os.getpid()))
        return marker


def _hold(where: Path, ctx: Context, events: Sequence[RecordedEvent]) -> bool:
    """Whether this batch is the one ``LEDGERHUB_TEST_HOLD_AT`` names, met for the first time."""
    mode, _, position = os.environ.get("LEDGERHUB_TEST_HOLD_AT", "").partition(":")
    if ctx.mode != mode or not any(e.position == int(position) for e in events):
        return False
    try:
        os.close(os.open(where / "hold-claimed", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


class CountByType(Projection):
    """Counts events per type; remembers how often each event was applied and by whom."""

    name: ClassVar[str] = "count_by_type"
    version: ClassVar[int] = int(os.environ.get("LEDGERHUB_TEST_VERSION", "1"))
    tables: ClassVar[dict[str, str]] = {
        "seen": "position bigint PRIMARY KEY, type text NOT NULL, applications int NOT NULL, "
        "pid int NOT NULL",
        "counts": "type text PRIMARY KEY, n bigint NOT NULL",
    }

    async def handle(self, events: Sequence[RecordedEvent], ctx: Context) -> None:
        where = _dir()
        active = _enter(where / f"active-{self.name}") if where else None
        try:
            await self._apply(events, ctx, where)
        finally:
            if active is not None:
                active.unlink()

    async def _apply(
        self, events: Sequence[RecordedEvent], ctx: Context, where: Path | None
    ) -> None:
        fixed = where is not None and (where / "fixed").exists()
        for event in events:
            if event.data.get("poison") and not fixed:
                raise SkippableError(f"poison event {event.external_id}")
        await ctx.conn.execute(
            f"WITH ins AS (INSERT INTO {ctx.tables['seen']} AS s "
            "(position, type, applications, pid) "
            "SELECT p, t, 1, $3 FROM unnest($1::bigint[], $2::text[]) AS u(p, t) "
            "ON CONFLICT (position) DO UPDATE SET applications = s.applications + 1, "
            "pid = excluded.pid RETURNING type, (xmax = 0) AS inserted) "
            f"INSERT INTO {ctx.tables['counts']} AS c (type, n) "
            "SELECT type, count(*) FROM ins WHERE inserted GROUP BY type "
            "ON CONFLICT (type) DO UPDATE SET n = c.n + excluded.n",
            [e.position for e in events],
            [e.type for e in events],
            os.getpid(),
        )
        if where is not None and _hold(where, ctx, events):
            first, last = events[0].position, events[-1].position
            (where / f"held-{os.getpid()}-{first}-{last}").touch()
            while not (where / "release").exists():  # noqa: ASYNC110 - another process's file
                await asyncio.sleep(0.05)
        pause = float(os.environ.get("LEDGERHUB_TEST_BATCH_SLEEP", "0"))
        if pause:
            await asyncio.sleep(pause)


class Mailer(Projection):
    """A projection with side effects: ``send`` appends each event's position to sent.log."""

    name: ClassVar[str] = "mailer"
    side_effects: ClassVar[bool] = True
    tables: ClassVar[dict[str, str]] = {"outbox": "position bigint PRIMARY KEY"}

    async def handle(self, events: Sequence[RecordedEvent], ctx: Context) -> None:
        await ctx.conn.execute(
            f"INSERT INTO {ctx.tables['outbox']} SELECT unnest($1::bigint[]) "
            "ON CONFLICT DO NOTHING",
            [e.position for e in events],
        )

    async def send(self, events: Sequence[RecordedEvent], ctx: Context) -> None:
        where = _dir()
        assert where is not None, "Mailer needs LEDGERHUB_TEST_DIR"
        with (where / "sent.log").open("a") as log:
            log.writelines(f"{e.position} {ctx.mode}\n" for e in events)
