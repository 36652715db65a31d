"""Bank statement import: a file's lines into ``bank.line`` events, all of them or none.

The whole file is parsed and checked before anything is written, and its events go to the log
in one append (one transaction), so a broken line anywhere leaves the log untouched.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from connectors.bank.csv_format import CsvMapping, parse_csv
from connectors.bank.lines import EVENT_TYPE, BankFileError, StatementLine, external_ids
from connectors.bank.ofx import parse_ofx
from connectors.bank.plaid import parse_plaid
from hub.domain.events import NewEvent
from hub.store.events import EventStore

Format = Literal["ofx", "csv", "plaid"]
FORMATS: tuple[Format, ...] = ("ofx", "csv", "plaid")
UTC_ZONE = ZoneInfo("UTC")


def detect_format(path: Path, data: bytes) -> Format:
    """The format by extension (.ofx, .qfx, .csv, .json), else by the first bytes."""
    suffix = path.suffix.lower()
    if suffix in (".ofx", ".qfx"):
        return "ofx"
    if suffix == ".csv":
        return "csv"
    if suffix == ".json":
        return "plaid"
    head = data[:1024].lstrip().upper()
    if head.startswith((b"OFXHEADER", b"<?XML", b"<OFX")):
        return "ofx"
    return "plaid" if head.startswith(b"{") else "csv"


@dataclass(frozen=True)
class Statement:
    """A parsed statement file, ready to append."""

    file: str
    format: Format
    sha256: str
    lines: list[StatementLine]


def read_statement(
    path: Path,
    *,
    account: str,
    file_format: Format | None = None,
    mapping: CsvMapping | None = None,
    zone: ZoneInfo = UTC_ZONE,
    select: str | None = None,
) -> Statement:
    """Parse ``path``; ``BankFileError`` naming the line and reason if any line is bad."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BankFileError(str(path), "line 0", f"cannot read the file: {exc.strerror}") from exc
    fmt = file_format or detect_format(path, data)
    name = path.name
    if fmt == "ofx":
        lines = parse_ofx(name, data, account=account, select=select)
    elif fmt == "csv":
        lines = parse_csv(name, data, account=account, mapping=mapping or CsvMapping(), zone=zone)
    else:
        lines = parse_plaid(name, data, account=account, zone=zone, select=select)
    return Statement(name, fmt, hashlib.sha256(data).hexdigest(), lines)


def statement_events(
    statement: Statement,
    *,
    tenant: str,
    source: str,
    on_progress: Callable[[int, int], None] | None = None,
) -> list[NewEvent]:
    """One ``bank.line`` event per line, identified by FITID or the stable key."""
    events = []
    total = len(statement.lines)
    for done, (line, external_id) in enumerate(
        zip(statement.lines, external_ids(statement.lines), strict=True), start=1
    ):
        events.append(
            NewEvent(
                tenant=tenant,
                source=source,
                external_id=external_id,
                type=EVENT_TYPE,
                occurred_at=line.occurred_at,
                data=line.data(statement.format),
                meta={
                    "import": {
                        "file": statement.file,
                        "sha256": statement.sha256,
                        "where": line.where,
                    }
                },
            )
        )
        if on_progress is not None and (done % 1000 == 0 or done == total):
            on_progress(done, total)
    return events


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
