"""``ledgerhub import bank FILE``: a bank statement (OFX/QFX, CSV, Plaid JSON) into the log.

The file is read by the bank connector's importer, found through the registry
(``hub.usecases.file_import.importer_for("bank")``); building the parser loads no plugin.

A file of ``BIG_FILE_LINES`` lines or more shows its progress on standard error (``hub.cli
.progress.stages``: a bar on a terminal, a line per stage otherwise): the importer's stages
while it reads (for OFX: reading lines, checking transactions), then preparing events and
appending them to the log (one transaction: all of the file or none of it).

``--dry-run`` reads and checks the whole file exactly as an import does (every line, every
record against what the log can hold) without the database: each problem is printed on its own
line, ``FILE:WHERE: REASON``, and nothing is stored, not even a run. A real import that fails
names its first problem and how many more there are, in one line on stderr.

The configuration is read without resolving any secret (``load(..., secrets=False)``): an
import needs only its own connection's settings, so another connection's missing secret does
not stop it.

Each import is a row of the runs log (``hub.usecases.file_import.recorded``): kind ``import``,
connection ``bank:ACCOUNT``, ``records`` the lines appended; a file that cannot be imported
leaves a ``failed`` row naming why.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from hub.cli import usage
from hub.cli.context import open_store
from hub.cli.progress import stages
from hub.cli.projections import print_json
from hub.config import Settings, load
from hub.domain.events import DEFAULT_TENANT
from hub.errors import ConfigError, InvalidInput, LedgerhubError
from hub.spi.importer import FileImporter, ImportFileError
from hub.usecases.file_import import (
    Statement,
    import_events,
    importer_for,
    read_statement,
    recorded,
    statement_events,
)

KIND = "bank"
"""The connector whose importer reads the files (its connections are ``bank:ACCOUNT``)."""

BIG_FILE_LINES = 2000
"""From this many lines (of the file, or records when the importer does not tell its progress)
on, progress is shown."""


class _Formats:
    """``--format``'s choices: the formats the installed importer of ``kind`` reads, looked up
    only when a format is given or the help is shown."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def _known(self) -> tuple[str, ...] | None:
        try:
            return importer_for(self.kind).formats
        except LedgerhubError:
            return None  # no importer, or a broken plugin: ``run`` reports it in one line

    def __contains__(self, value: object) -> bool:
        known = self._known()
        return known is None or value in known

    def __iter__(self) -> Iterator[str]:
        return iter(self._known() or ())


def _account(text: str) -> str:
    """``--account``: the connection's name, with or without its ``bank:`` prefix."""
    name = text.removeprefix(f"{KIND}:")
    if not name.strip() or name != name.strip():
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an account name (the connection is {KIND}:ACCOUNT)"
        )
    return usage.name("--account", prefix=f"{KIND}:")(name)


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser("import", help="import files into the log")
    kinds = parser.add_subparsers(
        dest="kind", required=True, metavar="KIND", parser_class=type(parser)
    )
    bank = kinds.add_parser(
        "bank", help="a bank statement: OFX/QFX, CSV (with --mapping) or Plaid JSON"
    )
    bank.add_argument("file", type=Path, metavar="FILE")
    bank.add_argument("--tenant", default=DEFAULT_TENANT, type=usage.name("--tenant"))
    bank.add_argument(
        "--account",
        required=True,
        type=_account,
        help="the bank connection's name: source bank:ACCOUNT",
    )
    bank.add_argument(
        "--format",
        choices=_Formats(KIND),
        metavar="FORMAT",
        help="one of %(choices)s; default: from the file's extension or content",
    )
    bank.add_argument("--mapping", type=Path, help="CSV column mapping (TOML, a [csv] table)")
    bank.add_argument(
        "--statement-account",
        metavar="ID",
        type=usage.text("--statement-account"),
        help="the account in the file to import when it holds several (OFX ACCTID, Plaid account)",
    )
    bank.add_argument(
        "--dry-run",
        action="store_true",
        help="read and check the whole file, list every problem, store nothing",
    )
    bank.add_argument("--json", action="store_true", help="print the outcome as JSON")
    bank.set_defaults(run=run)


async def run(args: argparse.Namespace) -> int:
    account = args.account
    source = f"{KIND}:{account}"
    # this connection's settings only: another connection's missing secret is not our business
    config = load(Settings.from_env(), secrets=False)
    connection = config.connection(source)
    if connection is not None and connection.tenant != args.tenant:
        raise ConfigError(
            f"connection {source} belongs to tenant {connection.tenant!r}, not {args.tenant!r}"
        )
    importer = importer_for(KIND)
    mapping = importer.load_mapping(args.mapping) if args.mapping else None
    zone = config.tenant(args.tenant).zone
    if args.dry_run:
        return _dry_run(args, importer, mapping, zone, source)
    try:
        return await _import(args, importer, mapping, zone, source)
    except ImportFileError as exc:
        if len(exc.errors) < 2:
            raise
        raise InvalidInput(f"{exc.detail}; `--dry-run` lists every one", errors=exc.errors) from exc


async def _import(
    args: argparse.Namespace, importer: FileImporter, mapping: Any, zone: ZoneInfo, source: str
) -> int:
    """Import the file (one transaction, one run row); print what it did."""
    account = args.account
    async with (
        await open_store() as store,
        recorded(store, tenant=args.tenant, source=source) as run_row,
    ):
        with stages(f"importing {args.file.name}", minimum=BIG_FILE_LINES) as update:
            statement = read_statement(
                args.file,
                importer,
                account=account,
                file_format=args.format,
                mapping=mapping,
                zone=zone,
                select=args.statement_account,
                progress=update,
            )

            def preparing(done: int, total: int) -> None:
                update("preparing events", done, total)

            events = statement_events(
                statement, tenant=args.tenant, source=source, on_progress=preparing
            )
            update("appending to the log", 0, len(events))
            report = run_row.report = await import_events(store, source, events)
            update("appending to the log", len(events), len(events))
    if args.json:
        print_json(
            {
                "file": statement.file, "format": statement.format, "sha256": statement.sha256,
                "source": source, "tenant": args.tenant, "dry_run": False,
                "lines": report.lines, "appended": report.appended,
                "duplicates": report.duplicates, "problems": [],
            }
        )  # fmt: skip
        return 0
    print(
        f"imported {statement.file} ({statement.format}) into {source}: {report.lines} records, "
        f"{report.appended} new, {report.duplicates} already in the log",
        file=sys.stdout,
    )
    return 0


def _dry_run(
    args: argparse.Namespace, importer: FileImporter, mapping: Any, zone: ZoneInfo, source: str
) -> int:
    """Read and check the whole file as an import would, without the database: every problem
    on its own line (``FILE:WHERE: REASON``) and exit 1, or a summary and exit 0."""
    statement: Statement | None = None
    problems: list[dict[str, Any]] = []
    try:
        statement = read_statement(
            args.file, importer, account=args.account, file_format=args.format,
            mapping=mapping, zone=zone, select=args.statement_account,
        )  # fmt: skip
        statement_events(statement, tenant=args.tenant, source=source)
    except ImportFileError as exc:  # the file's lines (a file that cannot be read: raised)
        problems = exc.errors
    lines = 0 if statement is None else len(statement.lines)
    if args.json:
        print_json(
            {
                "file": args.file.name, "format": None if statement is None else statement.format,
                "sha256": None if statement is None else statement.sha256, "source": source,
                "tenant": args.tenant, "dry_run": True, "lines": lines, "appended": 0,
                "duplicates": 0,
                "problems": [{"where": p["field"], "reason": p["message"]} for p in problems],
            }
        )  # fmt: skip
    else:
        for problem in problems:
            print(f"{args.file.name}:{problem['field']}: {problem['message']}")
    if problems:
        print(
            f"ledgerhub: {len(problems)} problem(s) in {args.file}; nothing stored (dry run)",
            file=sys.stderr,
        )
        return 1
    if not args.json:
        assert statement is not None
        print(
            f"{statement.file} ({statement.format}) for {source}: {lines} records, no problems; "
            "nothing stored (dry run)"
        )
    return 0
