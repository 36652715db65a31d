"""``ledgerhub worker``: run projections (their share of them, by lease) until stopped."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from typing import Any

from hub.books import load_books
from hub.cli.context import database_dsn
from hub.config import Settings
from hub.runtime.registry import discover, select
from hub.runtime.settings import RuntimeSettings
from hub.runtime.worker import Worker


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "worker", help="run projection workers (scale out: start as many as you like)"
    )
    parser.add_argument(
        "--projection",
        action="append",
        metavar="NAME",
        help="run only this projection (repeatable; default: every installed one)",
    )
    parser.set_defaults(run=run)


async def run(args: argparse.Namespace) -> int:
    projections = select(discover(names=args.projection), args.projection)
    load_books(Settings.from_env().config_file)  # a config mistake stops us at start
    settings = RuntimeSettings.from_env()
    worker = Worker(await database_dsn(), projections, settings)
    task = asyncio.create_task(worker.run())
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, task.cancel)
    print(
        f"worker {worker.holder}: {len(projections)} projection(s): "
        f"{', '.join(p.name for p in projections) or 'none'}",
        file=sys.stderr,
        flush=True,
    )
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return 0
