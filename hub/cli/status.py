"""``ledgerhub status``: each projection's state, position, lag, parked events, lease holder;
then each checked connection's health (``ledgerhub health`` checks now).

A projection run as several partitions also gets a line per partition in a second table
(``partitions``), with the same columns; ``--json`` lists them under each projection's
``partitions`` (one, partition 0, for a projection that is not partitioned)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from hub.cli.projections import open_projections, print_json, print_rows
from hub.domain.health import ConnectionHealth
from hub.store.health import HealthStore


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "status",
        help="projections (state, position, lag, parked events, lease holder), connection health",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(run=run)


async def run(args: argparse.Namespace) -> int:
    async with open_projections() as (_, store):
        statuses = await store.status()
        health = await HealthStore(store.pool).all()
    if args.json:
        print_json(
            {
                "projections": [s.model_dump(mode="json") for s in statuses],
                "connections": [_health(h) for h in health],
            }
        )
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
    if health:
        if not sys.stdout.isatty():
            print()
        print_rows(
            "connections",
            ("connection", "tenant", "state", "since", "checked_at", "detail"),
            [
                (h.connection, h.tenant, h.state, h.since.isoformat(timespec="seconds"),
                 h.checked_at.isoformat(timespec="seconds"), h.detail)
                for h in health
            ],
        )  # fmt: skip
    return 0


def _health(health: ConnectionHealth) -> dict[str, Any]:
    """A connection's health as ``GET /v1/health/connections`` lists it."""
    return {
        "id": health.connection,
        "tenant": health.tenant,
        "state": health.state,
        "checked_at": health.checked_at.isoformat(),
        "detail": health.detail,
        "since": health.since.isoformat(),
    }
