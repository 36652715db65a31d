"""``ledgerhub status``: each projection's state, position, lag, parked events, lease holder.

A projection run as several partitions also gets a line per partition in a second table
(``partitions``), with the same columns; ``--json`` lists them under each projection's
``partitions`` (one, partition 0, for a projection that is not partitioned)."""

from __future__ import annotations

import argparse
import sys
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
    split = [s for s in statuses if len(s.partitions) > 1]
    if split:
        if not sys.stdout.isatty():
            print()  # a blank line, then the second table's header
        print_rows(
            "partitions",
            (
                "projection", "partition", "state", "position", "lag", "lag_s", "parked",
                "holder",
            ),
            [
                (
                    s.name,
                    f"{p.partition}/{len(s.partitions)}",
                    p.state,
                    p.position,
                    p.lag_events,
                    f"{p.lag_seconds:.1f}",
                    p.parked,
                    p.holder,
                )
                for s in split
                for p in s.partitions
            ],
        )  # fmt: skip
    return 0
