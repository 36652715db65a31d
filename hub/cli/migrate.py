"""``ledgerhub migrate``: create or upgrade the schema (safe to repeat, safe to race)."""

from __future__ import annotations

import argparse
from typing import Any

from hub.cli.context import database_dsn
from hub.store.schema import migrate


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "migrate", help="create or upgrade the database schema"
    )
    parser.set_defaults(run=run)


async def run(args: argparse.Namespace) -> int:
    applied = await migrate(await database_dsn())
    if applied:
        for migration in applied:
            print(f"applied {migration.version:04d}_{migration.name}")
    else:
        print("schema is current")
    return 0
