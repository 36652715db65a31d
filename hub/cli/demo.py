"""``ledgerhub demo``: migrate, ingest sample deliveries (twice), verify, and show the log."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console
from rich.table import Table

from hub.app.demo import run_demo
from hub.cli.context import database_dsn
from hub.config import Settings, redact
from hub.store import EventStore
from hub.store.schema import migrate


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "demo", help="run the hub end to end on sample data (embedded PostgreSQL by default)"
    )
    parser.set_defaults(run=run)


async def run(args: argparse.Namespace) -> int:
    console = Console()
    settings = Settings.from_env()
    dsn = await database_dsn()
    where = redact(dsn) if settings.dsn else f"embedded PostgreSQL in {settings.home / 'pg'}"
    console.print(f"database: {where}")
    for migration in await migrate(dsn):
        console.print(f"applied migration {migration.version:04d}_{migration.name}")
    async with await EventStore.open(dsn) as store:
        report = await run_demo(store)
        recent = await store.read_after(max(0, report.head - 7), limit=7)
    table = Table(title="latest events in the log")
    for column in ("position", "source", "type", "external_id"):
        table.add_column(column, overflow="fold")
    for event in recent:
        table.add_row(str(event.position), event.source, event.type, event.external_id)
    console.print(table)
    console.print(
        f"delivered {report.appended + report.duplicates} events "
        f"({report.appended} appended, {report.duplicates} duplicates ignored); "
        f"log head is {report.head}"
    )
    if not report.chain.ok:
        console.print(f"[red]chain broken at {report.chain.broken_at}: {report.chain.reason}")
        return 1
    console.print(f"hash chain verifies over {report.chain.checked} events")
    return 0
