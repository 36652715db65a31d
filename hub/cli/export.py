"""``ledgerhub export journal|trial-balance|payouts|exceptions --format csv|xlsx --out FILE``.

The guide's file-based integration: the same rows the HTTP API answers (``hub.spi.reports``,
read from the installed projections that keep them), written by ``hub.spi.exports`` as CSV
(the route's ``Accept: text/csv`` answer) or as an Excel workbook with typed cells (dates as
dates, amounts as numbers with the currency's decimals). Every row is exported (all pages).

The file is written whole or not at all: into a temporary file beside ``FILE``, renamed over
it at the end. ``--out -`` writes to standard output. ``--format`` defaults to ``FILE``'s
extension.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hub.cli.reading import (
    PAGE,
    add_tenant,
    books_source,
    day,
    every_page,
    journal_source,
    reading,
    reconciliation_source,
)
from hub.cli.reconcile import PAYOUT_STATUSES
from hub.cli.usage import UsageError, text
from hub.errors import LedgerhubError
from hub.spi.exports import FORMATS, Format, render
from hub.spi.reports import (
    EXCEPTION_FIELDS,
    JOURNAL_FIELDS,
    PAYOUT_FIELDS,
    TRIAL_BALANCE_FIELDS,
    journal_rows,
)


def _common(parser: argparse.ArgumentParser) -> None:
    add_tenant(parser)
    parser.add_argument(
        "--format",
        choices=FORMATS,
        help="csv or xlsx (default: from the extension of --out)",
    )
    parser.add_argument(
        "--out",
        required=True,
        metavar="FILE",
        type=text("--out"),
        help="the file to write (replaced whole at the end); - for standard output",
    )


def _dates(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--from", dest="start", type=day("--from"), metavar="YYYY-MM-DD",
        help=f"{what} on or after this day",
    )  # fmt: skip
    parser.add_argument(
        "--to", dest="end", type=day("--to"), metavar="YYYY-MM-DD",
        help=f"{what} on or before this day",
    )  # fmt: skip


def _as_of(parser: argparse.ArgumentParser, described: str) -> None:
    parser.add_argument("--as-of", type=day("--as-of"), metavar="YYYY-MM-DD", help=described)


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "export",
        help="write the journal, trial balance, payouts or exceptions as CSV or Excel",
        description="Write a report as CSV or as an Excel workbook (typed cells: dates as "
        "dates, amounts as numbers with their currency's decimals).",
    )
    reports = parser.add_subparsers(
        dest="report", required=True, metavar="REPORT", parser_class=type(parser)
    )
    journal = reports.add_parser("journal", help="every posting of every entry, one row a posting")
    _common(journal)
    _dates(journal, "entries dated")
    journal.set_defaults(run=run_export, rows=_journal, columns=JOURNAL_FIELDS)
    balance = reports.add_parser("trial-balance", help="the trial balance, one row an account")
    _common(balance)
    _as_of(balance, "entries dated on or before this day (default: all)")
    balance.set_defaults(run=run_export, rows=_trial_balance, columns=TRIAL_BALANCE_FIELDS)
    payouts = reports.add_parser("payouts", help="payouts and their bank deposits")
    _common(payouts)
    _dates(payouts, "payouts arriving")
    _as_of(payouts, "evaluate statuses on this day (default: today in the tenant's zone)")
    payouts.add_argument("--status", choices=PAYOUT_STATUSES, help="only payouts of this status")
    payouts.set_defaults(run=run_export, rows=_payouts, columns=PAYOUT_FIELDS)
    exceptions = reports.add_parser("exceptions", help="the reconciliation exceptions")
    _common(exceptions)
    _as_of(exceptions, "evaluate exceptions on this day (default: today in the tenant's zone)")
    exceptions.add_argument("--kind", type=text("--kind"), help="only this kind")
    state = exceptions.add_mutually_exclusive_group()
    state.add_argument(
        "--open", dest="resolved", action="store_const", const=False, help="only unresolved ones"
    )
    state.add_argument(
        "--resolved", dest="resolved", action="store_const", const=True, help="only resolved ones"
    )
    exceptions.set_defaults(run=run_export, rows=_exceptions, columns=EXCEPTION_FIELDS)


async def _journal(args: argparse.Namespace) -> list[dict[str, Any]]:
    source = journal_source()
    async with reading("the ledger") as conn:

        async def read(after: str | None) -> dict[str, Any]:
            return await source.journal(
                conn, args.tenant, start=args.start, end=args.end, after=after, limit=PAGE
            )

        return journal_rows(await every_page(read, "entries"))


async def _trial_balance(args: argparse.Namespace) -> list[dict[str, Any]]:
    source = books_source()
    async with reading("the ledger") as conn:
        found = await source.trial_balance(conn, args.tenant, args.as_of)
    lines: list[dict[str, Any]] = found["lines"]
    return lines


async def _payouts(args: argparse.Namespace) -> list[dict[str, Any]]:
    source = reconciliation_source()
    async with reading("reconciliation") as conn:

        async def read(after: str | None) -> dict[str, Any]:
            return await source.payouts(
                conn, args.tenant, status=args.status, start=args.start, end=args.end,
                as_of=args.as_of, after=after, limit=PAGE,
            )  # fmt: skip

        return await every_page(read, "payouts")


async def _exceptions(args: argparse.Namespace) -> list[dict[str, Any]]:
    source = reconciliation_source()
    async with reading("reconciliation") as conn:

        async def read(after: str | None) -> dict[str, Any]:
            return await source.exceptions(
                conn, args.tenant, kind=args.kind, resolved=args.resolved, as_of=args.as_of,
                after=after, limit=PAGE,
            )  # fmt: skip

        return await every_page(read, "exceptions")


def _format(args: argparse.Namespace) -> Format:
    """``--format``, or the one ``--out``'s extension names; ``UsageError`` when neither."""
    if args.format is not None:
        chosen: Format = args.format
        return chosen
    suffix = Path(args.out).suffix.lower().lstrip(".")
    for form in FORMATS:
        if suffix == form:
            return form
    raise UsageError(f"give --format csv or xlsx (--out {args.out!r} names neither)")


def _target(out: str) -> Path | None:
    """The file ``--out`` names (None: standard output); ``UsageError`` when its directory
    does not exist, judged before anything is read."""
    if out == "-":
        return None
    path = Path(out).expanduser()
    if path.is_dir():
        raise UsageError(f"--out {out!r} is a directory")
    if not path.parent.is_dir():
        raise UsageError(f"--out {out!r}: directory {str(path.parent)!r} does not exist")
    return path


def write_whole(path: Path, data: bytes) -> None:
    """``data`` into ``path``, whole or not at all: a temporary file beside it, renamed over
    it (a reader never sees half a file; a failure leaves ``path`` as it was)."""
    try:
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    except OSError as exc:
        raise LedgerhubError(f"cannot write {path}: {exc.strerror}") from exc
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise LedgerhubError(f"cannot write {path}: {exc.strerror}") from exc


async def run_export(args: argparse.Namespace) -> int:
    form = _format(args)
    path = _target(args.out)
    if path is None and form == "xlsx" and sys.stdout.isatty():
        raise UsageError("an xlsx workbook is binary: give --out FILE, or redirect --out -")
    columns: Sequence[str] = args.columns
    rows = await args.rows(args)
    data = render(rows, columns, form, sheet=args.report)
    if path is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return 0
    write_whole(path, data)
    print(f"exported {len(rows)} {args.report} rows to {path} ({form})")
    return 0
