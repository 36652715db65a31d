"""``ledgerhub status``: each projection's state, position, lag, parked events, lease holder."""

from __future__ import annotations

import argparse
from typing import Any

from hub.cli.projections import open_projections, print_json, print_rows


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "status", help="projections: state, position, lag, parked events, lease holder"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(run=run)


async def run(args: argparse.Namespace) -> int:
    async with open_projections() as (_, store):
        statuses = await store.status()
    if args.json:
        print_json({"projections": [s.model_dump(mode="json") for s in statuses]})
        return 0
    print_rows(
        "projections",
        ("projection", "state", "position", "head", "lag", "lag_s", "parked", "holder"),
        [
            (
                s.name,
                s.state,
                s.position,
                s.head,
                s.lag_events,
                f"{s.lag_seconds:.1f}",
                s.parked,
                s.holder,
            )
            for s in statuses
        ],
    )
    return 0
