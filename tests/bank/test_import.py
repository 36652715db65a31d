"""Bank statement import into a real log: OFX 1.x/2.x, broken files, overlaps, Plaid, CSV."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from connectors.bank.csv_format import CsvMapping, load_mapping
from connectors.bank.lines import BankFileError
from hub.errors import ConfigError
from hub.store import EventStore
from hub.usecases import file_import
from hub.usecases.file_import import import_events, statement_events
from tests.cli.test_cli import ledgerhub, one_line_error

FIXTURES = Path(__file__).parent.parent / "fixtures"
OFX = FIXTURES / "ofx"
PLAID = FIXTURES / "plaid" / "business_account.json"


def read_statement(path: Path, **options: Any) -> file_import.Statement:
    """The hub's import use case with the installed bank connector's importer."""
    return file_import.read_statement(path, file_import.importer_for("bank"), **options)


async def import_file(
    store: EventStore, path: Path, account: str = "checking", **options: object
) -> tuple[int, int]:
    statement = read_statement(path, account=account, **options)
    events = statement_events(statement, tenant="default", source=f"bank:{account}")
    report = await import_events(store, f"bank:{account}", events)
    return report.appended, report.duplicates


@pytest.mark.parametrize(
    ("name", "lines", "first_amount", "currency", "balance"),
    [
        ("checking.ofx", 3, 1, "USD", ("2013-05-25", 10099)),  # OFX 1.x SGML, 10-digit BANKID
        ("bank_medium.ofx", 3, -660, "CAD", ("2009-05-23", 38234)),  # DTPOSTED with [-5:EST]
        ("suncorp.ofx", 1, -1685, "AUD", ("2013-12-15", 123412)),  # OFX 2.x XML
        ("anzcc.ofx", 1, -550, "AUD", ("2017-05-10", -12345)),  # credit card statement
        ("empty_balance.ofx", 1, 12000, "CAD", None),  # no header, empty BALAMT: no balance
    ],
)
async def test_ofx_files_import_every_line_once(
    store: EventStore,
    name: str,
    lines: int,
    first_amount: int,
    currency: str,
    balance: tuple[str, int] | None,
) -> None:
    records = lines + (balance is not None)
    assert await import_file(store, OFX / name) == (records, 0)
    events = await store.read_after(0)
    assert len(events) == records
    closing = [e for e in events if e.type == "bank.balance"]
    assert [(e.data["date"], e.data["amount_minor"]) for e in closing] == (
        [balance] if balance else []
    )
    assert [e.external_id for e in closing] == (
        [f"balance:checking:{balance[0]}"] if balance else []
    )
    first = events[0]
    assert first.type == "bank.line"
    assert first.source == "bank:checking"
    assert (first.data["amount_minor"], first.data["currency"]) == (first_amount, currency)
    assert first.external_id == first.data["fitid"]
    assert first.occurred_at.tzinfo is not None
    assert await import_file(store, OFX / name) == (0, records)  # the same file adds nothing
    assert await store.head() == records


async def test_ofx_business_date_is_the_banks_local_date(store: EventStore) -> None:
    await import_file(store, OFX / "bank_medium.ofx")
    first = (await store.read_after(0))[0]
    # 20090401122017.000[-5:EST] is 17:20 UTC on the 1st, booked on the bank's date
    assert first.data["date"] == "2009-04-01"
    assert first.occurred_at.isoformat() == "2009-04-01T17:20:17+00:00"


@pytest.mark.parametrize(
    ("name", "where", "reason"),
    [
        ("date_missing.ofx", "date_missing.ofx:line 33:", "no DTPOSTED"),
        ("decimal_error.ofx", "decimal_error.ofx:line 36:", "DTPOSTED '201120000000'"),
        ("bank_small.ofx", "bank_small.ofx:line 1:", "no bank or card statement"),
        ("multiple_accounts.ofx", "multiple_accounts.ofx:line 1:", "9100, 9200"),
    ],
)
def test_broken_files_are_rejected_with_line_and_reason_and_nothing_stored(
    dsn: str, name: str, where: str, reason: str
) -> None:
    env = {"LEDGERHUB_DSN": dsn}
    result = ledgerhub("import", "bank", str(OFX / name), "--account", "checking", env=env)
    line = one_line_error(result)
    assert where in line
    assert reason in line
    tail = ledgerhub("events", "tail", "--after", "0", env=env)
    assert tail.returncode == 0
    assert tail.stdout == ""


def test_decimal_error_names_every_broken_line(tmp_path: Path) -> None:
    with pytest.raises(BankFileError) as caught:
        read_statement(OFX / "decimal_error.ofx", account="x")
    fields = [e["field"] for e in caught.value.errors]
    messages = " ".join(e["message"] for e in caught.value.errors)
    assert len(fields) >= 2
    assert "TRNAMT '$120'" in messages


def test_a_file_with_several_accounts_imports_the_chosen_one() -> None:
    # the reference file holds two accounts with balances but no transactions
    chosen = read_statement(OFX / "multiple_accounts.ofx", account="x", select="9200").lines
    assert [(r.type, r.data["amount_minor"]) for r in chosen] == [("bank.balance", 22200)]
    with pytest.raises(BankFileError, match="no statement for account 9999; it has 9100, 9200"):
        read_statement(OFX / "multiple_accounts.ofx", account="x", select="9999")


def _without(text: str, number: int) -> str:
    """The OFX text with its ``number``-th STMTTRN block removed."""
    start = -1
    for _ in range(number + 1):
        start = text.index("<STMTTRN>", start + 1)
    end = text.index("</STMTTRN>", start) + len("</STMTTRN>")
    return text[:start] + text[end:]


async def test_overlapping_statements_import_only_what_is_new(
    store: EventStore, tmp_path: Path
) -> None:
    full = (OFX / "checking.ofx").read_text(encoding="latin-1")
    march = tmp_path / "march.ofx"
    march.write_text(_without(full, 2), encoding="latin-1")  # lines 1, 2
    april = tmp_path / "april.ofx"
    april.write_text(_without(full, 0), encoding="latin-1")  # lines 2, 3
    # each file closes on the same day: one balance, kept from the first
    assert await import_file(store, march) == (3, 0)
    assert await import_file(store, april) == (1, 2)
    assert await import_file(store, OFX / "checking.ofx") == (0, 4)
    assert [e.external_id for e in await store.read_after(0)] == [
        "0000486", "0000487", "balance:checking:2013-05-25", "0000488"
    ]  # fmt: skip


async def test_plaid_file_imports_with_the_sign_turned(store: EventStore) -> None:
    appended, _ = await import_file(store, PLAID, zone=ZoneInfo("America/New_York"))
    assert appended == 36
    events = await store.read_after(0)
    first = events[0]
    # Plaid: -7500 is money in (positive = outflow), so +7,500.00 into the account
    assert (first.data["amount_minor"], first.data["date"]) == (750000, "2026-08-22")
    twilio = next(e for e in events if e.data["description"].startswith("TWILIO"))
    assert twilio.data["amount_minor"] == -152352  # 1523.52 out, read as Decimal
    assert first.occurred_at.utcoffset() is not None
    assert all(e.external_id.startswith("key:") for e in events)
    assert await import_file(store, PLAID, zone=ZoneInfo("America/New_York")) == (0, 36)


async def test_csv_with_debit_credit_and_identical_lines(store: EventStore, tmp_path: Path) -> None:
    mapping_file = tmp_path / "bank.toml"
    mapping_file.write_text(
        '[csv]\ndate = "Posted"\ndate_format = "%m/%d/%Y"\ndescription = ["Payee", "Memo"]\n'
        'debit = "Withdrawal"\ncredit = "Deposit"\ncurrency = "USD"\n'
    )
    mapping = load_mapping(mapping_file)
    week1 = tmp_path / "week1.csv"
    week1.write_text(
        "Posted,Payee,Memo,Withdrawal,Deposit\n"
        "11/02/2026,Coffee Co,,4.50,\n"
        "11/02/2026,Coffee Co,,4.50,\n"
        '11/03/2026,Stripe,PAYOUT,,"1,204.17"\n'
    )
    week2 = tmp_path / "week2.csv"
    week2.write_text(
        "Posted,Payee,Memo,Withdrawal,Deposit\n"
        "11/02/2026,Coffee Co,,4.50,\n"
        "11/02/2026,Coffee Co,,4.50,\n"
        '11/03/2026,Stripe,PAYOUT,,"1,204.17"\n'
        "11/04/2026,Rent,,2000.00,\n"
    )
    assert await import_file(store, week1, mapping=mapping) == (3, 0)  # both coffees count
    assert await import_file(store, week2, mapping=mapping) == (1, 3)
    amounts = [e.data["amount_minor"] for e in await store.read_after(0)]
    assert amounts == [-450, -450, 120417, -200000]


def test_csv_bad_row_names_its_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("Date,Description,Amount\n2026-11-02,ok,1.00\n2026-11-31,bad date,2.00\n")
    with pytest.raises(BankFileError, match=r"bad.csv:line 3: date '2026-11-31'"):
        read_statement(bad, account="x", mapping=CsvMapping())
    fractional = tmp_path / "frac.csv"
    fractional.write_text("Date,Description,Amount\n2026-11-02,ok,1.005\n")
    with pytest.raises(BankFileError, match="more than 2 decimal places"):
        read_statement(fractional, account="x", mapping=CsvMapping())


def test_bad_mapping_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    path.write_text('[csv]\namount = "A"\ndebit = "D"\n')
    with pytest.raises(ConfigError, match="either amount, or debit"):
        load_mapping(path)


def test_import_command_reports_counts(dsn: str) -> None:
    env = {"LEDGERHUB_DSN": dsn}
    first = ledgerhub("import", "bank", str(PLAID), "--account", "gingham", env=env)
    assert first.returncode == 0, first.stderr
    assert "36 records, 36 new, 0 already in the log" in first.stdout
    again = ledgerhub(
        "import", "bank", str(PLAID), "--account", "gingham", "--format", "plaid", env=env
    )
    assert "36 records, 0 new, 36 already in the log" in again.stdout
    assert (
        date(2026, 8, 22).isoformat() in ledgerhub("events", "tail", "--after", "0", env=env).stdout
    )


async def test_plaid_transactions_response_uses_transaction_ids_and_skips_pending(
    store: EventStore, tmp_path: Path
) -> None:
    response = tmp_path / "transactions_get.json"
    response.write_text(
        """{"accounts": [{"account_id": "BxBXxLj1m4HMXBm9WZZmCWVbPjX16EHwv99vp"}],
        "transactions": [
          {"transaction_id": "lPNjeW1nR6CDn5okmGQ6hEpMo4lLNoSrzqDje", "pending": false,
           "account_id": "BxBXxLj1m4HMXBm9WZZmCWVbPjX16EHwv99vp", "amount": 2307.21,
           "iso_currency_code": "USD", "date": "2026-11-02", "name": "Apple Store"},
          {"transaction_id": "pending-1", "pending": true,
           "account_id": "BxBXxLj1m4HMXBm9WZZmCWVbPjX16EHwv99vp", "amount": 12.5,
           "iso_currency_code": "USD", "date": "2026-11-03", "name": "Coffee"},
          {"transaction_id": "refund-1", "pending": false,
           "account_id": "BxBXxLj1m4HMXBm9WZZmCWVbPjX16EHwv99vp", "amount": -0.1,
           "iso_currency_code": "USD", "date": "2026-11-03", "name": "Refund"}
        ]}"""
    )
    assert await import_file(store, response) == (2, 0)
    events = await store.read_after(0)
    assert [(e.external_id, e.data["amount_minor"]) for e in events] == [
        ("lPNjeW1nR6CDn5okmGQ6hEpMo4lLNoSrzqDje", -230721),
        ("refund-1", 10),
    ]


async def test_qfx_is_ofx(store: EventStore, tmp_path: Path) -> None:
    qfx = tmp_path / "statement.qfx"
    qfx.write_bytes((OFX / "suncorp.ofx").read_bytes())
    assert await import_file(store, qfx) == (2, 0)  # its line and its closing balance


def test_the_bank_importer_is_found_through_the_registry() -> None:
    from connectors.bank.importer import BankImporter
    from hub.spi.importer import FileImporter
    from hub.spi.registry import connector

    plugin = connector("bank")
    assert plugin is not None
    assert isinstance(plugin.importer, BankImporter)
    assert isinstance(plugin.importer, FileImporter)
    assert plugin.importer.formats == ("ofx", "csv", "plaid")
    detect = plugin.importer.detect
    assert [detect(n, b"") for n in ("a.OFX", "a.qfx", "a.csv", "a.json")] == [
        "ofx",
        "ofx",
        "csv",
        "plaid",
    ]
    assert detect("export", b"  <?xml version='1.0'?><OFX>") == "ofx"
    assert detect("export", b'{"transactions": []}') == "plaid"
    assert detect("export", b"Date,Description,Amount\n") == "csv"


def test_an_unreadable_file_is_named_with_the_reason(tmp_path: Path) -> None:
    from hub.errors import InvalidInput

    missing = tmp_path / "nope.ofx"
    with pytest.raises(InvalidInput, match=r"^cannot read \S+/nope.ofx: No such file") as caught:
        read_statement(missing, account="x")
    assert "line 0" not in str(caught.value)


def test_an_unknown_format_is_a_usage_error() -> None:
    result = ledgerhub("import", "bank", "x.ofx", "--account", "a", "--format", "xls")
    assert result.returncode == 2
    line = one_line_error(result)
    assert "invalid choice: 'xls' (choose from 'ofx', 'csv', 'plaid')" in line
    helped = ledgerhub("import", "bank", "--help")
    assert helped.returncode == 0
    assert "ofx, csv, plaid" in helped.stdout
