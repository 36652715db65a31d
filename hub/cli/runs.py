"""``ledgerhub runs [--kind pull|import|sync] [--limit N] [--before ID] [--json]``: the runs log.

The newest runs first (DESIGN "Runs"; ``hub.store.runs``), of every tenant: one row per pull,
import or sync run with its counts. ``--json`` prints what ``GET /v1/runs`` answers
(``{"runs": [...], "next"}``: pass ``next`` as ``--before`` for the page after); otherwise a
table (tab-separated lines when standard output is not a terminal).
"""

from __future__ import annotations

import argparse
from typing import Any, get_args

from hub.cli import usage
from hub.cli.context import database_dsn
from hub.cli.projections import print_json, print_rows
from hub.store.pool import create_pool
from hub.store.runs import RunKind, RunLog

COLUMNS = (
    "id", "kind", "tenant", "connection", "started_at", "ended_at", "status", "records", "errors",
    "api_calls", "error",
)  # fmt: skip


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "runs", help="the runs log: pulls, imports and sync runs, newest first"
    )
    parser.add_argument("--kind", choices=get_args(RunKind), help="only runs of this kind")
    parser.add_argument(
        "--limit", type=usage.at_least(1, "--limit"), default=50, help="at most N runs (50)"
    )
    parser.add_argument(
        "--before",
        type=usage.at_least(1, "--before"),
        metavar="ID",
        help="only runs older than run ID (a page's next)",
    )
    parser.add_argument("--json", action="store_true", help="JSON, as GET /v1/runs answers")
    parser.set_defaults(run=run)


async def run(args: argparse.Namespace) -> int:
    pool = await create_pool(await database_dsn(), max_size=1)
    try:
        runs = await RunLog(pool).recent(kind=args.kind, limit=args.limit, before=args.before)
    finally:
        await pool.close()
    if args.json:
        print_json(
            {
                "runs": [r.model_dump(mode="json") for r in runs],
                "next": runs[-1].id if len(runs) == args.limit else None,
            }
        )
        return 0
    rows = [tuple(r.model_dump(mode="json")[c] for c in COLUMNS) for r in runs]
    print_rows("runs", COLUMNS, rows)
    return 0
