"""``ledgerhub pull run CONNECTION [--since YYYY-MM-DD]`` and ``ledgerhub pull status [--json]``.

``pull run`` pulls a configured connection now (``hub.usecases.pull``), with a progress bar on a
terminal (plain lines otherwise) when it is a backfill (``--since``, or a connection never
pulled), and prints one line: events appended, already in the log, API calls, and its run id.
A pull that stops early keeps what it committed and exits 1 with the reason on stderr.
``pull status`` lists each pullable connection's streams with their cursors and its last run.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import asyncpg
import orjson

from hub.cli import usage
from hub.cli.context import database_dsn
from hub.cli.progress import progress
from hub.cli.projections import print_json, print_rows
from hub.cli.usage import UsageError
from hub.config import Settings, load
from hub.errors import ConfigError
from hub.spi.registry import connector
from hub.store.pool import create_pool
from hub.store.pulls import PullStore
from hub.store.runs import Run, RunLog
from hub.usecases.pull import pull_connection, pullable


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "pull", help="pull connections' APIs now (backfill), and see their cursors"
    )
    commands = parser.add_subparsers(
        dest="pull_command", required=True, metavar="COMMAND", parser_class=type(parser)
    )
    run_parser = commands.add_parser("run", help="pull one connection now")
    run_parser.add_argument(
        "connection", metavar="CONNECTION", type=usage.text("CONNECTION"), help="its id"
    )
    run_parser.add_argument(
        "--since",
        type=_day,
        metavar="YYYY-MM-DD",
        help="backfill from this day (every stream restarts there; the log drops duplicates)",
    )
    run_parser.add_argument("--json", action="store_true", help="print the report as JSON")
    run_parser.set_defaults(run=run)
    status_parser = commands.add_parser(
        "status", help="each pullable connection's cursors and last run"
    )
    status_parser.add_argument("--json", action="store_true", help="print JSON")
    status_parser.set_defaults(run=status)


@contextlib.asynccontextmanager
async def _pool() -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(await database_dsn(), max_size=3)
    try:
        yield pool
    finally:
        await pool.close()


async def run(args: argparse.Namespace) -> int:
    # one connection's secrets only: another's missing secret is not this pull's business
    config = load(Settings.from_env(), secrets=False)
    try:
        connection = pullable(config, args.connection)
    except ConfigError as exc:
        if config.connection(args.connection) is None:
            raise UsageError(str(exc)) from None
        raise
    connection.resolve()  # a missing secret of its own: said now, with its line
    async with _pool() as pool:
        backfill = args.since is not None or not await PullStore(pool).cursors(connection.id)
        with contextlib.ExitStack() as stack:
            update = (
                stack.enter_context(progress(f"pulling {connection.id}"))
                if backfill and not args.json
                else None
            )
            report = await pull_connection(
                pool, config, connection.id, since=args.since, on_progress=update
            )
    if args.json:
        print_json(
            {
                "connection": report.connection,
                "run": report.run_id,
                "status": "succeeded" if report.ok else "failed",
                "records": report.appended,
                "duplicates": report.duplicates,
                "api_calls": report.api_calls,
                "errors": report.errors,
                "streams": report.streams,
                "error": report.error,
            }
        )
    else:
        print(
            f"pulled {report.connection}: {report.appended} new event(s), {report.duplicates} "
            f"already in the log, {report.api_calls} API call(s) (run {report.run_id})"
        )
    if report.error is not None:
        print(
            f"ledgerhub: pull {report.connection} stopped: {report.error} (what was pulled before "
            "is kept; run it again to resume)",
            file=sys.stderr,
        )
        return 1
    return 0


def _run_json(run: Run | None) -> dict[str, Any] | None:
    return None if run is None else run.model_dump(mode="json")


async def status(args: argparse.Namespace) -> int:
    config = load(Settings.from_env(), secrets=False)  # cursors and runs: no secret needed
    async with _pool() as pool:
        cursors = await PullStore(pool).cursors()
        runs = RunLog(pool)
        names = [
            c.id
            for c in config.connections
            if c.pull is not None or getattr(connector(c.connector), "puller", None) is not None
        ]
        names += sorted({c.connection for c in cursors} - set(names))
        found: list[dict[str, Any]] = []
        for name in names:
            latest = await runs.recent(kind="pull", connection=name, limit=1)
            configured = config.connection(name)
            found.append(
                {
                    "id": name,
                    "tenant": configured.tenant if configured else None,
                    "every_seconds": (
                        configured.pull.every if configured and configured.pull else None
                    ),
                    "streams": [
                        {
                            "stream": c.stream,
                            "cursor": c.state,
                            "updated_at": c.updated_at.isoformat(),
                        }
                        for c in cursors
                        if c.connection == name
                    ],
                    "last_run": _run_json(latest[0] if latest else None),
                }
            )
    if args.json:
        print_json({"connections": found})
        return 0
    rows: list[tuple[Any, ...]] = []
    for item in found:
        run: dict[str, Any] | None = item["last_run"]
        last = (
            "-"
            if run is None
            else f"#{run['id']} {run['status']} {run['records']} new ({run['ended_at'] or '…'})"
        )
        streams: list[dict[str, Any]] = item["streams"] or [
            {"stream": "-", "cursor": None, "updated_at": None}
        ]
        for stream in streams:
            cursor = "-" if stream["cursor"] is None else orjson.dumps(stream["cursor"]).decode()
            rows.append((item["id"], stream["stream"], cursor, stream["updated_at"], last))
    print_rows("pulls", ("connection", "stream", "cursor", "updated_at", "last_run"), rows)
    return 0
