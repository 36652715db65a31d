"""``ledgerhub import bank FILE``: a bank statement (OFX/QFX, CSV, Plaid JSON) into the log."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import Any

from connectors.bank.csv_format import load_mapping
from hub.app.bank_import import FORMATS, import_events, read_statement, statement_events
from hub.cli.context import open_store
from hub.cli.progress import progress
from hub.config import Settings
from hub.config_file import load_from_env
from hub.domain.events import DEFAULT_TENANT
from hub.errors import ConfigError

BIG_FILE_LINES = 2000
"""From this many lines on, a progress bar is shown (on a terminal)."""


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser("import", help="import files into the log")
    kinds = parser.add_subparsers(
        dest="kind", required=True, metavar="KIND", parser_class=type(parser)
    )
    bank = kinds.add_parser(
        "bank", help="a bank statement: OFX/QFX, CSV (with --mapping) or Plaid JSON"
    )
    bank.add_argument("file", type=Path, metavar="FILE")
    bank.add_argument("--tenant", default=DEFAULT_TENANT)
    bank.add_argument(
        "--account", required=True, help="the bank connection's name: source bank:ACCOUNT"
    )
    bank.add_argument(
        "--format", choices=FORMATS, help="default: from the file's extension or content"
    )
    bank.add_argument("--mapping", type=Path, help="CSV column mapping (TOML, a [csv] table)")
    bank.add_argument(
        "--statement-account",
        metavar="ID",
        help="the account in the file to import when it holds several (OFX ACCTID, Plaid account)",
    )
    bank.set_defaults(run=run)


async def run(args: argparse.Namespace) -> int:
    account = args.account.removeprefix("bank:")
    source = f"bank:{account}"
    config = load_from_env(Settings.from_env().config_file)
    connection = config.connection(source)
    if connection is not None and connection.tenant != args.tenant:
        raise ConfigError(
            f"connection {source} belongs to tenant {connection.tenant!r}, not {args.tenant!r}"
        )
    statement = read_statement(
        args.file,
        account=account,
        file_format=args.format,
        mapping=load_mapping(args.mapping) if args.mapping else None,
        zone=config.tenant(args.tenant).zone,
        select=args.statement_account,
    )
    with contextlib.ExitStack() as stack:
        update = (
            stack.enter_context(progress(f"importing {statement.file}"))
            if len(statement.lines) >= BIG_FILE_LINES
            else None
        )
        events = statement_events(statement, tenant=args.tenant, source=source, on_progress=update)
    async with await open_store() as store:
        report = await import_events(store, source, events)
    print(
        f"imported {statement.file} ({statement.format}) into {source}: {report.lines} lines, "
        f"{report.appended} new, {report.duplicates} already in the log",
        file=sys.stdout,
    )
    return 0
