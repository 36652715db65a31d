"""``ledgerhub ledger trial-balance [--as-of D] [--tenant T] [--json]``: the books' trial balance.

Read from whichever installed projection keeps the books (``hub.spi.reports.TrialBalanceSource``,
the ledger), as ``GET /v1/ledger/trial-balance`` answers it: ``--json`` prints that document
(amounts in integer minor units), the table shows amounts with their currency's decimals.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from hub.cli.projections import print_json, print_rows
from hub.cli.reading import add_tenant, amount, books_source, day, reading


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "ledger", help="the books: the trial balance", description="Read the books."
    )
    actions = parser.add_subparsers(
        dest="action", required=True, metavar="ACTION", parser_class=type(parser)
    )
    balance = actions.add_parser(
        "trial-balance",
        help="debits, credits and balance per account and currency",
        description="Debits, credits and balance (debits - credits) of each account in each "
        "currency, over the entries dated on or before --as-of (default: all).",
    )
    add_tenant(balance)
    balance.add_argument(
        "--as-of", type=day("--as-of"), metavar="YYYY-MM-DD", help="entries up to this day"
    )
    balance.add_argument(
        "--json", action="store_true", help="JSON, as GET /v1/ledger/trial-balance answers"
    )
    balance.set_defaults(run=run_trial_balance)


async def run_trial_balance(args: argparse.Namespace) -> int:
    source = books_source()
    async with reading("the ledger") as conn:
        found = await source.trial_balance(conn, args.tenant, args.as_of)
    if args.json:
        print_json(found)
        return 0
    print_rows(
        f"trial balance of {args.tenant}" + (f" as of {args.as_of}" if args.as_of else ""),
        ("code", "name", "currency", "debit", "credit", "balance"),
        [
            (
                line["code"],
                line["name"],
                line["currency"],
                amount(line["debit_minor"], line["currency"]),
                amount(line["credit_minor"], line["currency"]),
                amount(line["balance_minor"], line["currency"]),
            )
            for line in found["lines"]
        ],
    )
    verdict = "balanced: debits equal credits in every currency"
    if not found["balanced"]:
        verdict = "NOT balanced: debits and credits differ in some currency"
    print(verdict, file=sys.stdout)
    return 0
