"""``ledgerhub events tail``: print events after a position; ``--follow`` waits for new ones."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from typing import Any

import orjson

from hub.cli import usage
from hub.cli.context import open_store
from hub.domain.events import RecordedEvent


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser("events", help="read the event log")
    actions = parser.add_subparsers(
        dest="action", required=True, metavar="ACTION", parser_class=type(parser)
    )
    tail = actions.add_parser("tail", help="print events as JSON lines")
    tail.add_argument(
        "--after",
        type=usage.position,
        default=None,
        help="start after this position (default: the last 10 events)",
    )
    tail.add_argument("--tenant")
    tail.add_argument("--source")
    tail.add_argument("--type")
    tail.add_argument("--follow", "-f", action="store_true", help="keep waiting for new events")
    tail.set_defaults(run=run_tail)


def _line(event: RecordedEvent) -> bytes:
    return orjson.dumps(event.model_dump(mode="json", exclude={"raw", "hash"}))


async def run_tail(args: argparse.Namespace) -> int:
    async with await open_store() as store:
        after = args.after if args.after is not None else max(0, await store.head() - 10)
        filters = {"tenant": args.tenant, "source": args.source, "type": args.type}
        async with contextlib.AsyncExitStack() as stack:
            wake = await stack.enter_async_context(store.notifications()) if args.follow else None
            while True:
                batch = await store.read_after(after, limit=1000, **filters)
                for event in batch:
                    sys.stdout.buffer.write(_line(event) + b"\n")
                    after = event.position
                sys.stdout.flush()
                if batch:
                    continue
                if wake is None:
                    return 0
                with contextlib.suppress(TimeoutError):  # poll as a fallback to NOTIFY
                    await asyncio.wait_for(wake.get(), timeout=5)
