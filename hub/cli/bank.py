"""``ledgerhub import bank FILE``: a bank statement (OFX/QFX, CSV, Plaid JSON) into the log.

The file is read by the bank connector's importer, found through the registry
(``hub.usecases.file_import.importer_for("bank")``); building the parser loads no plugin.

A file of ``BIG_FILE_LINES`` lines or more shows its progress on standard error (``hub.cli
.progress.stages``: a bar on a terminal, a line per stage otherwise): the importer's stages
while it reads (for OFX: reading lines, checking transactions), then preparing events and
appending them to the log (one transaction: all of the file or none of it).

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

from hub.cli import usage
from hub.cli.context import open_store
from hub.cli.progress import stages
from hub.config import Settings, load
from hub.domain.events import DEFAULT_TENANT
from hub.errors import ConfigError, LedgerhubError
from hub.usecases.file_import import (
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
    bank.set_defaults(run=run)


async def run(args: argparse.Namespace) -> int:
    account = args.account
    source = f"{KIND}:{account}"
    config = load(Settings.from_env())
    connection = config.connection(source)
    if connection is not None and connection.tenant != args.tenant:
        raise ConfigError(
            f"connection {source} belongs to tenant {connection.tenant!r}, not {args.tenant!r}"
        )
    importer = importer_for(KIND)
    mapping = importer.load_mapping(args.mapping) if args.mapping else None
    zone = config.tenant(args.tenant).zone
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
    print(
        f"imported {statement.file} ({statement.format}) into {source}: {report.lines} lines, "
        f"{report.appended} new, {report.duplicates} already in the log",
        file=sys.stdout,
    )
    return 0
