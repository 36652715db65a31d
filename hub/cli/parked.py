"""``ledgerhub parked list|retry|skip``: events projections could not apply.

A retry or a skip is recorded in the audit trail (``hub.domain.audit``) before it is done.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from hub.cli import usage
from hub.cli.projections import open_projections, print_json, print_rows
from hub.domain.audit import MOVABLE_PARKED, AuditAction
from hub.domain.projections import ALL_PARKED, OPEN_PARKED, ParkedEvent
from hub.runtime.operate import follow_parked, worker_for
from hub.store.events import EventStore
from hub.store.parked import Parked
from hub.store.projections import ProjectionStore
from hub.usecases.audit import record_local


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "parked", help="list, retry or skip events projections could not apply"
    )
    actions = parser.add_subparsers(
        dest="action", required=True, metavar="ACTION", parser_class=type(parser)
    )
    listing = actions.add_parser("list", help="list parked events (open ones by default)")
    listing.add_argument("--projection")
    listing.add_argument("--all", action="store_true", help="include resolved and skipped")
    listing.add_argument("--json", action="store_true", help="print JSON (with tracebacks)")
    listing.set_defaults(run=run_list)
    retry = actions.add_parser("retry", help="apply a parked event again (after a fix)")
    retry.add_argument("id", type=usage.identifier)
    retry.add_argument(
        "--timeout",
        type=usage.seconds,
        default=60,
        help="seconds to wait for the outcome (default 60)",
    )
    retry.set_defaults(run=run_retry)
    skip = actions.add_parser("skip", help="give up on a parked event")
    skip.add_argument("id", type=usage.identifier)
    skip.set_defaults(run=run_skip)


def _line(event: ParkedEvent) -> str:
    return (
        f"parked event {event.id} ({event.projection}, position {event.position}): "
        f"{event.status}, {event.attempts} attempt(s)"
    )


async def run_list(args: argparse.Namespace) -> int:
    statuses = ALL_PARKED if args.all else OPEN_PARKED
    async with open_projections() as (_, store):
        events = await Parked(store).find(projection=args.projection, statuses=statuses)
    if args.json:
        print_json({"parked": [e.model_dump(mode="json") for e in events]})
        return 0
    print_rows(
        "parked events",
        ("id", "projection", "position", "type", "status", "attempts", "error", "last_seen"),
        [
            (
                e.id,
                e.projection,
                e.position,
                e.event_type,
                e.status,
                e.attempts,
                f"{e.error_type.rsplit('.', 1)[-1]}: {e.message}"[:80],
                e.last_seen.isoformat(timespec="seconds"),
            )
            for e in events
        ],
    )
    return 0


async def _audit(store: ProjectionStore, parked_id: int, action: AuditAction) -> None:
    """Record ``action`` on the parked event (``NotFound`` if there is none)."""
    event = await Parked(store).get(parked_id)
    tenant = (await store.read_one(event.position)).tenant
    if event.status in MOVABLE_PARKED:  # else the action is refused, unaudited
        subject = {
            "parked_id": parked_id,
            "projection": event.projection,
            "position": event.position,
        }
        await record_local(EventStore(store.pool), action, subject, tenant=tenant)


async def run_retry(args: argparse.Namespace) -> int:
    async with open_projections() as (dsn, store):
        await _audit(store, args.id, AuditAction.PARKED_RETRY)
        event = await Parked(store).request_retry(args.id)
        async with worker_for(dsn, store, event.projection):
            try:
                event = await asyncio.wait_for(follow_parked(store, args.id), args.timeout)
            except TimeoutError:
                print(
                    f"ledgerhub: parked event {args.id} is still queued for retry after "
                    f"{args.timeout:g}s",
                    file=sys.stderr,
                )
                return 1
    if event.status != "resolved":
        print(f"ledgerhub: {_line(event)}: {event.message}", file=sys.stderr)
        return 1
    print(_line(event))
    return 0


async def run_skip(args: argparse.Namespace) -> int:
    async with open_projections() as (_, store):
        await _audit(store, args.id, AuditAction.PARKED_SKIP)
        event = await Parked(store).skip(args.id)
    print(_line(event))
    return 0
