"""Exports (DESIGN "CLI": ``ledgerhub export``; and ``Accept`` CSV or Excel over HTTP): the
journal, trial balance, payouts and exceptions of a month of Stripe activity and its bank
statement, read back with ``csv`` and ``openpyxl``, hold exactly the figures the HTTP JSON has.

The books are built by the real projections on the test's database, the HTTP answers come from
a real server on 127.0.0.1, and the CLI runs as a process of its own.
"""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import openpyxl
import orjson
import pytest

from hub.api.context import HubContext
from hub.domain.money import exponent
from hub.spi.exports import CSV, XLSX, amount_format, heading
from hub.spi.reports import (
    EXCEPTION_FIELDS,
    JOURNAL_FIELDS,
    PAYOUT_FIELDS,
    TRIAL_BALANCE_FIELDS,
    journal_rows,
)
from hub.store import EventStore
from tests.api.conftest import bearer, make_key
from tests.cli.test_cli import ledgerhub
from tests.reconciliation.harness import Recon
from tests.reconciliation.scenarios import statement, stripe_month

LATE = "2030-01-01"
"""Statuses evaluated after every window of the scenario has closed."""

REPORTS: dict[str, tuple[str, Sequence[str], dict[str, str]]] = {
    "journal": ("/v1/ledger/journal", JOURNAL_FIELDS, {}),
    "trial-balance": ("/v1/ledger/trial-balance", TRIAL_BALANCE_FIELDS, {"as_of": LATE}),
    "payouts": ("/v1/reconciliation/payouts", PAYOUT_FIELDS, {"as_of": LATE}),
    "exceptions": ("/v1/reconciliation/exceptions", EXCEPTION_FIELDS, {"as_of": LATE}),
}


async def _json_rows(
    http: aiohttp.ClientSession, url: str, headers: dict[str, str], report: str,
    params: dict[str, str],
) -> list[dict[str, Any]]:  # fmt: skip
    """Every row of a report as the HTTP JSON has it (all pages; the journal flattened to one
    row a posting)."""
    if report == "trial-balance":
        async with http.get(url, headers=headers, params=params) as response:
            assert response.status == 200, await response.text()
            lines: list[dict[str, Any]] = (await response.json())["lines"]
            return lines
    name = {"journal": "entries"}.get(report, report)
    rows: list[dict[str, Any]] = []
    after = None
    while True:
        query = {**params, "limit": "7", **({"after": after} if after else {})}
        async with http.get(url, headers=headers, params=query) as response:
            assert response.status == 200, await response.text()
            page = await response.json()
        rows += page[name]
        after = page["next"]
        if after is None:
            return journal_rows(rows) if report == "journal" else rows


def _as_csv(value: Any) -> str:
    """A JSON value as the CSV writes it."""
    return "" if value is None else str(value)


def assert_csv_matches(text: str, columns: Sequence[str], rows: list[dict[str, Any]]) -> None:
    table = list(csv.DictReader(io.StringIO(text)))
    assert text.splitlines()[0] == ",".join(columns)
    assert table == [{c: _as_csv(row[c]) for c in columns} for row in rows]


def assert_xlsx_matches(data: bytes, columns: Sequence[str], rows: list[dict[str, Any]]) -> None:
    """Header, frozen pane and every cell typed: an amount a number in major units with its
    currency's decimals, a date a date, a count a number, text text."""
    book = openpyxl.load_workbook(io.BytesIO(data))
    sheet = book.active
    assert sheet is not None
    found = list(sheet.iter_rows())
    assert [cell.value for cell in found[0]] == [heading(c) for c in columns]
    assert all(cell.font.b for cell in found[0])
    assert sheet.freeze_panes == "A2"
    assert len(found) == len(rows) + 1
    for cells, row in zip(found[1:], rows, strict=True):
        for cell, column in zip(cells, columns, strict=True):
            expected = row[column]
            if expected is None:
                assert cell.value is None, column
            elif column.endswith("_minor"):
                assert cell.data_type == "n", column
                places = exponent(row["currency"])
                assert Decimal(str(cell.value)).scaleb(places) == expected, column
                assert cell.number_format == amount_format(row["currency"])
            elif column in ("business_date", "arrival_date"):
                assert isinstance(cell.value, datetime), column
                assert cell.value.date() == date.fromisoformat(expected)
                assert cell.number_format == "yyyy-mm-dd"
            else:
                assert cell.value == expected, column


@pytest.fixture
async def month_of_books(store: EventStore, recon: Recon) -> None:
    """A month of Stripe activity and its bank statement, booked and reconciled."""
    month = stripe_month()
    bank = statement(month)
    await recon.run_with_ledger(store, [*month.events, *bank.lines])


async def test_http_answers_csv_and_excel_with_the_json_figures(
    month_of_books: None, hub: HubContext, api: str
) -> None:
    read = bearer(await make_key(hub, "read"))
    seen: dict[str, int] = {}
    async with aiohttp.ClientSession() as http:
        for report, (path, columns, params) in REPORTS.items():
            url = f"{api}{path}"
            rows = await _json_rows(http, url, read, report, params)
            seen[report] = len(rows)
            query = {**params, "limit": "1000"} if report != "trial-balance" else params
            async with http.get(url, headers={**read, "Accept": CSV}, params=query) as response:
                assert response.status == 200
                assert response.content_type == CSV
                assert_csv_matches(await response.text(), columns, rows)
            async with http.get(url, headers={**read, "Accept": XLSX}, params=query) as response:
                assert response.status == 200
                assert response.content_type == XLSX
                assert "attachment" in response.headers["Content-Disposition"]
                assert_xlsx_matches(await response.read(), columns, rows)
    assert all(seen.values()), seen  # every report has rows to compare
    assert seen["journal"] > 7  # more than one page


async def test_the_cli_exports_the_figures_the_http_json_has(
    dsn: str, month_of_books: None, hub: HubContext, api: str, tmp_path: Path
) -> None:
    read = bearer(await make_key(hub, "read"))
    async with aiohttp.ClientSession() as http:
        expected = {
            report: await _json_rows(http, f"{api}{path}", read, report, params)
            for report, (path, _, params) in REPORTS.items()
        }
    env = {"LEDGERHUB_DSN": dsn}
    for report, (_, columns, params) in REPORTS.items():
        dated = ["--as-of", params["as_of"]] if "as_of" in params else []
        for form in ("csv", "xlsx"):
            out = tmp_path / f"{report}.{form}"
            result = ledgerhub("export", report, "--out", str(out), *dated, env=env)
            assert result.returncode == 0, result.stderr
            assert f"exported {len(expected[report])} {report} rows to {out}" in result.stdout
            if form == "csv":
                assert_csv_matches(out.read_text(), columns, expected[report])
            else:
                assert_xlsx_matches(out.read_bytes(), columns, expected[report])
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind  # noqa: ASYNC240


async def test_cli_reports_print_what_the_http_json_has(
    dsn: str, month_of_books: None, hub: HubContext, api: str
) -> None:
    read = bearer(await make_key(hub, "read"))
    async with aiohttp.ClientSession() as http:
        answers = {}
        for path, params in [
            ("/v1/ledger/trial-balance", {"as_of": "2024-03-15"}),
            ("/v1/reconciliation/payouts", {"as_of": LATE, "limit": "1000"}),
            ("/v1/reconciliation/exceptions", {"as_of": LATE, "limit": "1000"}),
            ("/v1/reconciliation/payouts", {"as_of": LATE, "limit": "3", "status": "matched"}),
        ]:
            async with http.get(f"{api}{path}", headers=read, params=params) as response:
                answers[(path, params.get("limit"))] = await response.json()
    env = {"LEDGERHUB_DSN": dsn}
    commands = {
        ("/v1/ledger/trial-balance", None): ["ledger", "trial-balance", "--as-of", "2024-03-15"],
        ("/v1/reconciliation/payouts", "1000"): ["reconcile", "payouts", "--as-of", LATE],
        ("/v1/reconciliation/exceptions", "1000"): ["reconcile", "exceptions", "--as-of", LATE],
        ("/v1/reconciliation/payouts", "3"): [
            "reconcile", "payouts", "--as-of", LATE, "--limit", "3", "--status", "matched",
        ],
    }  # fmt: skip
    for key, args in commands.items():
        result = ledgerhub(*args, "--json", env=env)
        assert result.returncode == 0, result.stderr
        assert orjson.loads(result.stdout) == answers[key], args
    assert answers[("/v1/reconciliation/payouts", "3")]["next"] is not None
    table = ledgerhub("ledger", "trial-balance", env=env)
    assert table.returncode == 0, table.stderr
    assert "balanced: debits equal credits in every currency" in table.stdout


def test_report_commands_end_quietly_when_their_reader_has_gone(
    dsn: str, month_of_books: None
) -> None:
    """``ledgerhub reconcile payouts | head -0``: the reading end is closed before the command
    writes a byte; it ends with exit 0 and nothing on stderr, like every command that prints."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("LEDGERHUB_")}
    outcomes = {}
    for args in (
        ["ledger", "trial-balance"], ["ledger", "trial-balance", "--json"],
        ["reconcile", "payouts", "--as-of", LATE], ["reconcile", "exceptions", "--json"],
        ["export", "journal", "--format", "csv", "--out", "-"],
        ["export", "payouts", "--format", "xlsx", "--out", "-"],
    ):  # fmt: skip
        process = subprocess.Popen(
            [sys.executable, "-m", "hub", *args], env={**base, "LEDGERHUB_DSN": dsn},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        assert process.stdout is not None
        process.stdout.close()
        try:
            _, stderr = process.communicate(timeout=60)
        finally:
            process.kill()
        outcomes[" ".join(args)] = (process.returncode, stderr.decode())
    assert outcomes == {name: (0, "") for name in outcomes}
