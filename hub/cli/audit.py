"""``ledgerhub audit``: the audit trail of operator actions, newest first (``hub.domain.audit``)."""

from __future__ import annotations

import argparse
from typing import Any

import orjson

from hub.cli import usage
from hub.cli.projections import open_projections, print_json, print_rows
from hub.usecases.audit import trail


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "audit", help="the audit trail: who did which operator action, from where"
    )
    parser.add_argument(
        "--limit",
        type=usage.at_least(1, "--limit"),
        default=50,
        help="at most this many entries, newest first (default 50)",
    )
    parser.add_argument("--tenant", type=usage.text("--tenant"), help="only this tenant's")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(run=run_audit)


async def run_audit(args: argparse.Namespace) -> int:
    async with open_projections() as (_, store):
        entries = await trail(store, limit=args.limit, tenant=args.tenant)
    if args.json:
        print_json({"entries": [entry.as_json() for entry in entries]})
        return 0
    print_rows(
        "audit trail",
        ("position", "at", "tenant", "action", "by", "from", "subject"),
        [
            (
                e.position,
                e.at.isoformat(timespec="seconds"),
                e.tenant,
                e.action,
                e.by,
                e.source_address,
                orjson.dumps(e.subject, option=orjson.OPT_SORT_KEYS).decode(),
            )
            for e in entries
        ],
    )
    return 0
