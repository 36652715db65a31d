"""``ledgerhub demo``: a month of a small shop delivered through the hub's real ways in, then
its trial balance, payouts, exceptions, clearing tie-out and Beancount file (``--serve``: the
hub stays up afterwards, with keys to explore it)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import signal
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from hub.cli import usage
from hub.cli.context import database_dsn
from hub.cli.output import console as new_console
from hub.config import Settings, redact
from hub.domain.money import to_major
from hub.store.schema import migrate
from hub.usecases import demo_month
from hub.usecases.demo import DemoReport, run_demo


def _why(exception: dict[str, Any]) -> str:
    """An exception's reason in a few words."""
    difference = exception.get("difference_minor") or 0
    if exception["kind"] == "missing_deposit":
        return "not on the statement"
    if exception["kind"] == "amount_mismatch":
        shown = _money(abs(difference), exception.get("currency") or "USD")
        return f"deposit {shown} {'short' if difference < 0 else 'over'}"
    return str(exception.get("detail") or "")


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "demo", help="run the hub end to end on a month of sample data (embedded PostgreSQL)"
    )
    parser.add_argument(
        "--serve",
        action="store_true",
        help="keep the server up afterwards and print keys, curl lines and the console URL",
    )
    parser.add_argument(
        "--port", type=usage.port, default=0, help="port for the server (default: any free)"
    )
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")
    parser.set_defaults(run=run)


def _money(minor: int | None, currency: str = "USD", *, blank_zero: bool = True) -> str:
    if minor is None or (blank_zero and minor == 0):
        return ""
    return f"{to_major(minor, currency):,}"


def _table(title: str, *columns: tuple[str, str]) -> Table:
    table = Table(title=title, title_justify="left")
    for name, justify in columns:
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    return table


def _delivered(console: Console, report: DemoReport) -> None:
    table = _table(
        f"What came in: {demo_month.MONTH}, delivered twice",
        ("way in", "left"), ("what", "left"), ("new", "right"), ("again", "right"),
    )  # fmt: skip
    for d in report.delivered:
        table.add_row(d.how, d.what, str(d.appended), str(d.duplicates))
    console.print(table)
    console.print(
        f"{report.appended} events appended; {report.duplicates} redeliveries ignored; "
        f"log head {report.head}"
    )


def _trial_balance(console: Console, report: DemoReport) -> None:
    balance = report.trial_balance
    table = _table(
        f"Trial balance (tenant default, as of {balance.get('as_of')})",
        ("code", "left"), ("account", "left"), ("debit", "right"), ("credit", "right"),
    )  # fmt: skip
    debit = credit = 0
    for line in balance.get("lines", []):
        net = line["balance_minor"]
        if line["debit_minor"] == 0 and line["credit_minor"] == 0:
            continue
        currency = line["currency"]
        debit += max(net, 0)
        credit += max(-net, 0)
        table.add_row(line["code"], line["name"], _money(max(net, 0), currency),
                      _money(max(-net, 0), currency))  # fmt: skip
    table.add_section()
    table.add_row("", "total", _money(debit), _money(credit))
    console.print(table)
    console.print(
        "debits equal credits" if balance.get("balanced") else "[red]the books do not balance"
    )
    _bank_note(console, report)


def _bank_note(console: Console, report: DemoReport) -> None:
    """Checking against the statement: the difference is exactly the open exceptions."""
    books, missing, short = report.bank_reconciliation
    console.print(
        f"Checking {_money(books)} = the statement's closing balance "
        f"{_money(report.statement_balance_minor)}\n  + {_money(missing)} paid out, never "
        f"deposited + {_money(short)} deposited short (exceptions below)"
        + ("" if report.bank_explained else " [red](does not add up)")
    )


def _payouts(console: Console, report: DemoReport) -> None:
    table = _table(
        "Payouts and their bank deposits",
        ("payout", "left"), ("arrives", "left"), ("amount", "right"), ("status", "left"),
        ("bank line", "left"),
    )  # fmt: skip
    for p in sorted(report.payouts, key=lambda p: (p["arrival_date"], p["payout_id"])):
        status = p["status"] if p["status"] == "matched" else f"[yellow]{p['status']}"
        table.add_row(p["payout_id"], p["arrival_date"], _money(p["amount_minor"], p["currency"]),
                      status, p["bank_line"] or "")  # fmt: skip
    console.print(table)


def _exceptions(console: Console, report: DemoReport) -> None:
    table = _table(
        "Exceptions", ("kind", "left"), ("reference", "left"), ("amount", "right"),
        ("difference", "right"), ("why", "left"),
    )  # fmt: skip
    for e in report.exceptions:
        currency = e.get("currency") or "USD"
        table.add_row(e["kind"], e["reference"], _money(e.get("amount_minor"), currency),
                      _money(e.get("difference_minor"), currency),
                      _why(e))  # fmt: skip
    console.print(table)


def _clearing(console: Console, report: DemoReport) -> None:
    days: dict[str, list[dict[str, Any]]] = {}
    for row in report.clearing:
        days.setdefault(row["processor"], []).append(row)
    table = _table(
        "Clearing tie-out: the books against what the processor has not paid out",
        ("processor", "left"), ("days", "right"), ("tied", "right"), ("end balance", "right"),
    )  # fmt: skip
    for processor, rows in sorted(days.items()):
        last = max(rows, key=lambda r: r["business_date"])
        tied = sum(r["status"] == "tied" for r in rows)
        table.add_row(
            processor,
            str(len(rows)),
            str(tied),
            _money(last["ledger_balance_minor"], last["currency"], blank_zero=False),
        )
    console.print(table)


async def _serve(console: Console, report: DemoReport) -> None:
    base, keys = report.url, report.keys
    console.print(f"\nThe hub is serving on {base} (Ctrl-C stops it).")
    console.print(f"console:      {base}/console/")
    console.print(f"read key:     {keys.read}")
    console.print(f"operate key:  {keys.operate}")
    console.print("try:")
    read = f"-H 'Authorization: Bearer {keys.read}'"
    for path in ("/v1/ledger/trial-balance", "/v1/reconciliation/payouts",
                 "/v1/reconciliation/exceptions"):  # fmt: skip
        console.print(f"  curl -s {read} {base}{path}")
    console.print(f"  curl -s -H 'Authorization: Bearer {keys.operate}' {base}/v1/projections")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()


async def run(args: argparse.Namespace) -> int:
    console = new_console(soft_wrap=True)  # paths print whole; tables still fit the terminal
    logging.getLogger("ledgerhub.access").setLevel(logging.WARNING)  # the demo's own requests
    settings = Settings.from_env()
    dsn = await database_dsn()
    where = redact(dsn) if settings.dsn else f"embedded PostgreSQL in {settings.home / 'pg'}"
    migrations = await migrate(dsn)
    if not args.json:
        console.print(f"database: {where}")
        for migration in migrations:
            console.print(f"applied migration {migration.version:04d}_{migration.name}")

    async def then(report: DemoReport) -> None:
        if args.json:
            print(orjson.dumps(_json(report)).decode(), flush=True)
        else:
            _show(console, report)
        if args.serve:
            await _serve(console, report)

    report = await run_demo(dsn, port=args.port, then=then)
    return 0 if report.ok else 1


def _json(report: DemoReport) -> dict[str, Any]:
    """The report as ``--json`` prints it (the read-back API answers as they came)."""
    chain = report.chain
    return {
        "ok": report.ok,
        "config": report.config,
        "url": report.url,
        "statement": report.statement,
        "statement_balance_minor": report.statement_balance_minor,
        "delivered": [dataclasses.asdict(d) for d in report.delivered],
        "appended": report.appended,
        "duplicates": report.duplicates,
        "head": report.head,
        "trial_balance": report.trial_balance,
        "payouts": report.payouts,
        "exceptions": report.exceptions,
        "clearing": report.clearing,
        "unmapped": report.unmapped,
        "syncs": [dataclasses.asdict(s) for s in report.syncs],
        "chain": None if chain is None else {"ok": chain.ok, "checked": chain.checked},
    }


def _show(console: Console, report: DemoReport) -> None:
    console.print(f"config: {report.config}")
    console.print(f"the hub served {report.url} while the month was delivered")
    _delivered(console, report)
    _trial_balance(console, report)
    _payouts(console, report)
    _exceptions(console, report)
    _clearing(console, report)
    for event in report.unmapped:
        console.print(f"[red]not booked: {event['type']} at {event['position']}: {event['reason']}")
    for sync in report.syncs:
        console.print(
            f"sync to {sync.target} at {sync.location}: {sync.sent} documents sent, "
            f"{sync.failed} failed"
        )
        for problem in sync.problems:
            console.print(f"[red]beancount: {problem}")
        if not sync.problems:
            console.print("beancount loads the file without errors (as bean-check does)")
        for balance in sync.statement_balances:
            console.print(f"  statement balance {balance}")
    chain = report.chain
    if chain is not None and not chain.ok:
        console.print(f"[red]chain broken at {chain.broken_at}: {chain.reason}")
    elif chain is not None:
        console.print(f"hash chain verifies over {chain.checked} events")
    if report.ok:
        console.print("everything checks out: every payout matched but the two planted exceptions")
    else:
        console.print("[red]the demo's books do not check out (see above)")
