"""File import (``ledgerhub import bank``): a statement file's records into events, all of them
or none.

The file is read by the importer of the connector named by its kind (``connector("bank")
.importer``, a ``hub.spi.importer.FileImporter``), so another connector package can ship an
importer for its own kind of file. The whole file is parsed and checked before anything is
written, and its events go to the log in one append (one transaction), so a broken line
anywhere leaves the log untouched.

Every import a person starts is a row of the runs log (``recorded``, DESIGN "Runs"): written
``running`` when it starts and always finished, ``records`` = lines appended (duplicates are
not records, so 0 when nothing was new); a failed import has ``error`` (why) and ``errors``
(the problems found in the file, or 1).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from hub import logs
from hub.domain.events import NewEvent
from hub.errors import ConfigError, InvalidInput, LedgerhubError
from hub.spi.importer import (
    UTC_ZONE,
    FileImporter,
    ImportedRecord,
    ImportFileError,
    ImportOptions,
    Progress,
)
from hub.spi.registry import connector
from hub.store.events import EventStore
from hub.store.runs import RunLog, RunTally

ERROR_CHARS = 1000
"""A failed run's ``error`` is cut to this many characters (the first problems of a file)."""


def importer_for(kind: str) -> FileImporter:
    """The importer of the installed connector ``kind``; ``ConfigError`` if it has none."""
    plugin = connector(kind)
    if plugin is None or plugin.importer is None:
        raise ConfigError(f"no installed connector imports {kind} files")
    return plugin.importer


@dataclass(frozen=True)
class Statement:
    """A parsed statement file, ready to append."""

    file: str
    format: str
    sha256: str
    lines: list[ImportedRecord]


def read_statement(
    path: Path,
    importer: FileImporter,
    *,
    account: str,
    file_format: str | None = None,
    mapping: Any = None,
    zone: ZoneInfo = UTC_ZONE,
    select: str | None = None,
    progress: Progress | None = None,
) -> Statement:
    """Parse ``path`` with ``importer`` (``mapping``: what its ``load_mapping`` returned);
    ``ImportFileError`` naming the line and reason of every bad line (``errors``), or
    ``InvalidInput`` naming the file when it cannot be read. ``progress`` is handed
    to the importer (``ImportOptions.progress``)."""
    try:
        data = path.read_bytes()
    except OSError as exc:  # the file as a whole: no line of it to name
        reason = f"cannot read {path}: {exc.strerror}"
        raise InvalidInput(reason, errors=[{"field": "FILE", "message": reason}]) from exc
    name = path.name
    fmt = file_format or importer.detect(name, data)
    options = ImportOptions(account=account, zone=zone, mapping=mapping, select=select)
    if progress is not None:
        options = dataclasses.replace(options, progress=progress)
    lines = importer.read(name, data, file_format=fmt, options=options)
    return Statement(name, fmt, hashlib.sha256(data).hexdigest(), lines)


def statement_events(
    statement: Statement,
    *,
    tenant: str,
    source: str,
    on_progress: Callable[[int, int], None] | None = None,
) -> list[NewEvent]:
    """One event per record, identified by the importer's external id (FITID or stable key).

    A record the log cannot hold (an id too long, a NUL in its text, a date with no UTC
    instant, …) is the file's problem, named by its line like any other: ``ImportFileError``
    for every such record, after all of them were tried; nothing is appended.
    """
    events = []
    problems: list[ImportFileError] = []
    total = len(statement.lines)
    for done, line in enumerate(statement.lines, start=1):
        try:
            events.append(
                NewEvent(
                    tenant=tenant,
                    source=source,
                    external_id=line.external_id,
                    type=line.type,
                    occurred_at=line.occurred_at,
                    data=line.data,
                    meta={
                        "import": {
                            "file": statement.file,
                            "sha256": statement.sha256,
                            "where": line.where,
                        }
                    },
                )
            )
        except ValidationError as exc:
            problems.append(ImportFileError(statement.file, line.where, _reason(exc)))
        if on_progress is not None and (done % 1000 == 0 or done == total):
            on_progress(done, total)
    if problems:
        raise ImportFileError.combine(problems)
    return events


_FIELDS = {"external_id": "its id", "occurred_at": "its date", "data": "its content"}


def _reason(exc: ValidationError) -> str:
    """Why the log cannot hold a record, in one line: the first problem pydantic found."""
    first = exc.errors(include_url=False, include_input=False)[0]
    field = str(first["loc"][0]) if first["loc"] else "the record"
    reason = f"{_FIELDS.get(field, field)} cannot be stored: {first['msg']}"
    return reason if len(reason) <= 300 else f"{reason[:280]}… ({len(reason)} characters)"


@dataclass(frozen=True)
class ImportReport:
    """What an import did."""

    source: str
    lines: int
    appended: int
    duplicates: int


async def import_events(store: EventStore, source: str, events: list[NewEvent]) -> ImportReport:
    """Append every line in one batch (all or nothing); re-imported lines count as duplicates."""
    results = await store.append(events)
    appended = sum(r.status == "appended" for r in results)
    return ImportReport(source, len(results), appended, len(results) - appended)


@dataclass
class ImportRun:
    """An import's row in the runs log while it runs: set ``report`` once appended."""

    run_id: int
    report: ImportReport | None = None


@contextlib.asynccontextmanager
async def recorded(store: EventStore, *, tenant: str, source: str) -> AsyncIterator[ImportRun]:
    """Write the import of ``source`` (connection ``source``, tenant ``tenant``) to the runs log:
    a ``running`` row now, finished when the block ends: ``succeeded`` with ``records`` = the
    ``report``'s appended lines, or ``failed`` with the exception's message when the block
    raises (which is re-raised; a database that fails the finishing write loses only the row's
    ending). What the block logs carries ``tenant`` and ``connection`` (``hub.logs``)."""
    runs = RunLog.over(store)
    run = ImportRun(await runs.start("import", tenant, source))
    try:
        with logs.bound(tenant=tenant, connection=source):
            yield run
    except BaseException as exc:
        problems = len(exc.errors) if isinstance(exc, InvalidInput) and exc.errors else 1
        message = str(exc) or type(exc).__name__
        with contextlib.suppress(LedgerhubError):
            await runs.finish(
                run.run_id,
                RunTally(status="failed", errors=problems, error=message[:ERROR_CHARS]),
            )
        raise
    appended = run.report.appended if run.report is not None else 0
    await runs.finish(run.run_id, RunTally(status="succeeded", records=appended))
