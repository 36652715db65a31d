"""A bank statement's closing balance, end to end: imported once (``bank.balance``), a
``StatementBalance`` fact the ledger does not book, a ``balance`` document of the accounting
projection, a Beancount ``balance`` directive bean-check holds the books to where they agree and
a ``note`` where they do not; Xero and QuickBooks skip the kind (nothing sent, nothing failed,
nothing parked)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
from beancount import loader
from beancount.core import data

from connectors.beancount import BeancountTarget
from hub.spi.target import Target
from hub.store import EventStore
from hub.store.projections import ProjectionStore
from hub.sync.sender import Backoff, Sender
from hub.sync.shadow import compare
from hub.usecases import file_import
from projections.accounting import Accounting
from projections.ledger import Ledger
from tests.accounting.harness import XERO_SECRET_ENV, documents, running, settle, write_config
from tests.accounting.targets import CHART, bean_check, xero_fake
from tests.ledger.harness import Books
from tests.quickbooks.harness import SECRET_ENV, qbo
from tests.quickbooks.harness import write_config as write_quickbooks_config

FAST = Backoff(attempts=3, initial=0.001, maximum=0.01)
BANK = """
[[connections]]
id = "bank:checking"
connector = "bank"
tenant = "default"
ledger_account = "1000"
"""
KEY = "bank:checking/balance:2024-01-31"


def ofx(lines: list[tuple[str, str, str]], closing: str, as_of: str = "20240131") -> bytes:
    """An OFX 1.x statement of ``lines`` (FITID, YYYYMMDD, amount) closing at ``closing``."""
    rows = "".join(
        f"<STMTTRN>\n<TRNTYPE>OTHER\n<DTPOSTED>{day}\n<TRNAMT>{amount}\n<FITID>{fitid}\n"
        f"<NAME>LINE {fitid}\n</STMTTRN>\n"
        for fitid, day, amount in lines
    )
    return (
        "OFXHEADER:100\nDATA:OFXSGML\nVERSION:102\nSECURITY:NONE\nENCODING:USASCII\n"
        "CHARSET:1252\nCOMPRESSION:NONE\nOLDFILEUID:NONE\nNEWFILEUID:NONE\n\n"
        "<OFX>\n<BANKMSGSRSV1>\n<STMTTRNRS>\n<TRNUID>1\n<STMTRS>\n<CURDEF>USD\n"
        "<BANKACCTFROM>\n<BANKID>1\n<ACCTID>42\n<ACCTTYPE>CHECKING\n</BANKACCTFROM>\n"
        f"<BANKTRANLIST>\n{rows}</BANKTRANLIST>\n"
        f"<LEDGERBAL>\n<BALAMT>{closing}\n<DTASOF>{as_of}\n</LEDGERBAL>\n"
        "</STMTRS>\n</STMTTRNRS>\n</BANKMSGSRSV1>\n</OFX>\n"
    ).encode()


JANUARY = [("J1", "20240102", "1000.00"), ("J2", "20240115", "-120.50")]


def _write(path: Path, text: bytes) -> None:
    path.write_bytes(text)


async def imported(store: EventStore, path: Path, text: bytes) -> tuple[int, int]:
    """``ledgerhub import bank`` of ``text`` (written to ``path``): (appended, duplicates)."""
    _write(path, text)
    importer = file_import.importer_for("bank")
    statement = file_import.read_statement(path, importer, account="checking")
    events = file_import.statement_events(statement, tenant="default", source="bank:checking")
    report = await file_import.import_events(store, "bank:checking", events)
    return report.appended, report.duplicates


async def test_a_statement_balance_is_a_balance_document_once(
    dsn: str, store: EventStore, config: Path, books: Books, tmp_path: Path
) -> None:
    write_config(config, "per_payout", extra=BANK)
    statement = ofx(JANUARY, "879.50")
    assert await imported(store, tmp_path / "jan.ofx", statement) == (3, 0)
    assert await imported(store, tmp_path / "again.ofx", statement) == (0, 3)
    async with running(dsn):
        await settle(books.conn, ("ledger", "accounting"))
    docs = await documents(books.conn)
    balance = docs[KEY]
    assert (balance["kind"], balance["business_date"]) == ("balance", date(2024, 1, 31))
    assert (balance["accounts"], balance["currencies"], balance["amounts"]) == (
        ["1000"], ["USD"], [87950]
    )  # fmt: skip
    # the ledger books the lines and nothing of the balance: nothing unmapped either
    unmapped = await books.conn.fetchval(f"SELECT count(*) FROM {Ledger.view('unmapped')}")
    assert unmapped == 0
    journal = await books.conn.fetch(f"SELECT entry_key FROM {Ledger.view('journal')}")
    assert sorted(r["entry_key"] for r in journal) == [
        "bank:checking/line:J1",
        "bank:checking/line:J2",
    ]


async def test_beancount_asserts_an_agreeing_balance_and_notes_a_disagreeing_one(
    dsn: str, store: EventStore, config: Path, books: Books, tmp_path: Path
) -> None:
    write_config(config, "per_payout", extra=BANK)
    await imported(store, tmp_path / "jan.ofx", ofx(JANUARY, "879.50"))
    # February's statement closes 5.00 above what its lines add up to: the bank knows of
    # something the books do not
    february = [("F1", "20240210", "-79.50")]
    await imported(store, tmp_path / "feb.ofx", ofx(february, "805.00", "20240229"))
    async with running(dsn):
        await settle(books.conn, ("ledger", "accounting"))
    path = tmp_path / "books.beancount"
    run = await Sender(store, Accounting, FAST).run("default", BeancountTarget(path, CHART))
    assert run is not None
    bean_check(path)
    entries, errors, _ = loader.load_file(str(path))
    assert errors == []
    (balance,) = [e for e in entries if isinstance(e, data.Balance)]
    assert (balance.date, balance.account) == (date(2024, 2, 1), "Assets:1000-Checking")
    assert balance.amount.number == Decimal("879.50")
    (note,) = [e for e in entries if isinstance(e, data.Note)]
    assert (note.date, note.account) == (date(2024, 3, 1), "Assets:1000-Checking")
    assert note.meta["lh-statement"].number == Decimal("805.00")
    assert note.meta["lh-difference"].number == Decimal("-5.00")
    assert "5.00 USD less" in note.comment


@contextlib.asynccontextmanager
async def _xero(tmp: Path) -> AsyncIterator[Target]:
    async with xero_fake(tmp) as (_, target):
        yield target


@contextlib.asynccontextmanager
async def _quickbooks(tmp: Path) -> AsyncIterator[Target]:
    async with qbo(tmp) as (_, target):
        yield target


@pytest.mark.parametrize("target_name", ["xero", "quickbooks"])
async def test_xero_and_quickbooks_skip_a_balance(
    dsn: str,
    store: EventStore,
    config: Path,
    books: Books,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    target_name: str,
) -> None:
    monkeypatch.setenv(XERO_SECRET_ENV, "secret")
    monkeypatch.setenv(SECRET_ENV, "secret")
    if target_name == "xero":
        write_config(config, "per_payout", target="xero", extra=BANK)
    else:
        write_quickbooks_config(config, "per_payout", extra=BANK)
    await imported(store, tmp_path / "jan.ofx", ofx(JANUARY, "879.50"))
    async with running(dsn):
        await settle(books.conn, ("ledger", "accounting"))
    docs = await documents(books.conn, target=target_name)
    assert docs[KEY]["kind"] == "balance"
    opened = _xero if target_name == "xero" else _quickbooks
    async with opened(tmp_path) as target:
        sender = Sender(store, Accounting, FAST)
        await sender.run("default", target)
        held = {h.idempotency_key for h in await target.held()}
        # what it holds is every document but the balance, which was never sent
        others = {r["idempotency_key"] for key, r in docs.items() if key != KEY}
        assert held == others
        assert await sender.run("default", target) is not None  # again: nothing to do
        # a shadow comparison does not expect the balance there either
        assert await compare(ProjectionStore.over(store), Accounting, "default", target) == []
    runs = await books.conn.fetch("SELECT sent, failed, parked FROM ledgerhub.sync_runs")
    assert [(r["sent"], r["failed"], r["parked"]) for r in runs] == [(len(docs), 0, 0), (0, 0, 0)]
    rows = await books.conn.fetch(
        "SELECT type, data::text AS d FROM ledgerhub.events WHERE type LIKE 'accounting.%'"
    )
    assert {r["type"] for r in rows} == {"accounting.document.synced"}
    outcome = next(orjson.loads(r["d"]) for r in rows if orjson.loads(r["d"])["doc_key"] == KEY)
    assert outcome["target_id"] == "not-sent"
