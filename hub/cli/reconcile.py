"""``ledgerhub reconcile payouts|exceptions``: the reconciliation rows, as the HTTP API has them.

Read from whichever installed projection reconciles payouts
(``hub.spi.reports.ReconciliationSource``), with the filters and pages of
``GET /v1/reconciliation/payouts`` and ``/exceptions``: ``--json`` prints one page exactly as
the route answers it (pass its ``next`` as ``--after``), the table shows amounts with their
currency's decimals. Without ``--limit`` every row is listed.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from hub.cli import usage
from hub.cli.projections import print_json, print_rows
from hub.cli.reading import (
    PAGE,
    add_tenant,
    amount,
    day,
    every_page,
    reading,
    reconciliation_source,
)

PAYOUT_STATUSES = ("matched", "pending", "missing_deposit", "amount_mismatch")


def _paging(parser: argparse.ArgumentParser, route: str) -> None:
    add_tenant(parser)
    parser.add_argument(
        "--as-of",
        type=day("--as-of"),
        metavar="YYYY-MM-DD",
        help="evaluate statuses on this day (default: today in the tenant's time zone)",
    )
    parser.add_argument(
        "--limit",
        type=usage.at_least(1, "--limit"),
        help=f"one page of at most N rows (1..{PAGE}; default: every row)",
    )
    parser.add_argument(
        "--after", metavar="NEXT", help="the page after this one (a page's next, with --json)"
    )
    parser.add_argument("--json", action="store_true", help=f"JSON, as GET {route} answers")


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "reconcile",
        help="payouts against bank deposits, and the exceptions to act on",
        description="Reconciliation: payouts matched to bank deposits, and the exceptions.",
    )
    actions = parser.add_subparsers(
        dest="action", required=True, metavar="ACTION", parser_class=type(parser)
    )
    payouts = actions.add_parser(
        "payouts",
        help="each payout, its bank deposit, status and composition",
        description="Each payout with the bank line that matched it, its status and difference.",
    )
    _paging(payouts, "/v1/reconciliation/payouts")
    payouts.add_argument("--status", choices=PAYOUT_STATUSES, help="only payouts of this status")
    payouts.add_argument(
        "--from", dest="start", type=day("--from"), metavar="YYYY-MM-DD",
        help="payouts arriving on or after this day",
    )  # fmt: skip
    payouts.add_argument(
        "--to", dest="end", type=day("--to"), metavar="YYYY-MM-DD",
        help="payouts arriving on or before this day",
    )  # fmt: skip
    payouts.set_defaults(run=run_payouts)
    exceptions = actions.add_parser(
        "exceptions",
        help="missing deposits, mismatches, unpaid orders … to act on",
        description="The exceptions an analyst acts on (a missing deposit once its window "
        "has closed).",
    )
    _paging(exceptions, "/v1/reconciliation/exceptions")
    exceptions.add_argument("--kind", type=usage.text("--kind"), help="only this kind")
    state = exceptions.add_mutually_exclusive_group()
    state.add_argument(
        "--open", dest="resolved", action="store_const", const=False, help="only unresolved ones"
    )
    state.add_argument(
        "--resolved", dest="resolved", action="store_const", const=True, help="only resolved ones"
    )
    exceptions.set_defaults(run=run_exceptions)


async def _read(args: argparse.Namespace, name: str, page: Callable[..., Any]) -> dict[str, Any]:
    """One page (``--limit``) or every row, as ``{name: rows, "next"}``."""
    if args.limit is not None and args.limit > PAGE:
        raise usage.UsageError(f"--limit is at most {PAGE}")
    async with reading("reconciliation") as conn:
        if args.limit is not None:
            found: dict[str, Any] = await page(conn, after=args.after, limit=args.limit)
            return found

        async def read(after: str | None) -> dict[str, Any]:
            found: dict[str, Any] = await page(conn, after=after, limit=PAGE)
            return found

        rows = await every_page(read, name, args.after)
    return {name: rows, "next": None}


async def run_payouts(args: argparse.Namespace) -> int:
    source = reconciliation_source()

    def page(conn: Any, *, after: str | None, limit: int) -> Any:
        return source.payouts(
            conn, args.tenant, status=args.status, start=args.start, end=args.end,
            as_of=args.as_of, after=after, limit=limit,
        )  # fmt: skip

    found = await _read(args, "payouts", page)
    if args.json:
        print_json(found)
        return 0
    print_rows(
        "payouts",
        ("source", "payout", "arrival", "status", "amount", "cur", "bank line", "difference"),
        [
            (
                r["source"],
                r["payout_id"],
                r["arrival_date"],
                r["status"],
                amount(r["amount_minor"], r["currency"]),
                r["currency"],
                r["bank_line"],
                amount(r["difference_minor"], r["currency"]),
            )
            for r in found["payouts"]
        ],
    )
    return 0


async def run_exceptions(args: argparse.Namespace) -> int:
    source = reconciliation_source()

    def page(conn: Any, *, after: str | None, limit: int) -> Any:
        return source.exceptions(
            conn, args.tenant, kind=args.kind, resolved=args.resolved, as_of=args.as_of,
            after=after, limit=limit,
        )  # fmt: skip

    found = await _read(args, "exceptions", page)
    if args.json:
        print_json(found)
        return 0
    print_rows(
        "exceptions",
        ("id", "kind", "reference", "amount", "cur", "difference", "resolved", "detail"),
        [
            (
                r["id"],
                r["kind"],
                r["reference"],
                amount(r["amount_minor"], r["currency"]),
                r["currency"],
                amount(r["difference_minor"], r["currency"]),
                "yes" if r["resolved"] else "no",
                r["detail"],
            )
            for r in found["exceptions"]
        ],
    )
    return 0
