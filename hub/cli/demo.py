"""``ledgerhub demo``: migrate, ingest sample activity (twice), book it, show the trial balance."""

from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table

from hub.cli.context import database_dsn
from hub.cli.output import console as new_console
from hub.config import Settings, redact
from hub.domain.money import to_major
from hub.store.schema import migrate
from hub.usecases.demo import run_demo


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "demo", help="run the hub end to end on sample data (embedded PostgreSQL by default)"
    )
    parser.set_defaults(run=run)


def _amount(minor: int, currency: str) -> str:
    return "" if minor == 0 else str(to_major(minor, currency))


async def run(args: argparse.Namespace) -> int:
    console = new_console(soft_wrap=True)  # paths print whole; tables still fit the terminal
    settings = Settings.from_env()
    dsn = await database_dsn()
    where = redact(dsn) if settings.dsn else f"embedded PostgreSQL in {settings.home / 'pg'}"
    console.print(f"database: {where}")
    for migration in await migrate(dsn):
        console.print(f"applied migration {migration.version:04d}_{migration.name}")
    report = await run_demo(dsn)
    console.print(f"config: {report.config}")
    console.print(
        f"delivered {report.appended + report.duplicates} events "
        f"({report.appended} appended, {report.duplicates} duplicates ignored); "
        f"log head is {report.head}"
    )
    balance = report.trial_balance
    table = Table(title="trial balance (tenant default), booked by the ledger projection")
    for column, justify in (
        ("code", "left"),
        ("account", "left"),
        ("currency", "left"),
        ("debit", "right"),
        ("credit", "right"),
        ("balance", "right"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for line in balance["lines"]:
        currency = line["currency"]
        table.add_row(line["code"], line["name"], currency,
                      _amount(line["debit_minor"], currency),
                      _amount(line["credit_minor"], currency),
                      _amount(line["balance_minor"], currency))  # fmt: skip
    console.print(table)
    console.print("debits equal credits in every currency" if balance["balanced"]
                  else "[red]the trial balance does not balance")  # fmt: skip
    for sync in report.syncs:
        console.print(
            f"sync to {sync.target} at {sync.location}: {sync.sent} documents sent, "
            f"{sync.failed} failed"
        )
        for problem in sync.problems:
            console.print(f"[red]beancount: {problem}")
        if not sync.problems:
            console.print("beancount loads the file without errors (as bean-check does)")
    if not report.chain.ok:
        console.print(f"[red]chain broken at {report.chain.broken_at}: {report.chain.reason}")
        return 1
    console.print(f"hash chain verifies over {report.chain.checked} events")
    clean = all(not s.problems and not s.failed for s in report.syncs)
    return 0 if balance["balanced"] and clean else 1
