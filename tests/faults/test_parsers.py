"""Hypothesis over the parsers: bank statement files and webhook bodies.

Whatever bytes arrive, a parser answers with a result or with its documented error, never with
another exception (which the CLI reports as an internal error and the API as a 500):

- the bank importer (``connector("bank").importer``, as ``ledgerhub import bank`` finds it) reads
  OFX/QFX 1.x (SGML) and 2.x (XML), CSV with a column mapping and Plaid transactions JSON into
  records, or raises ``ImportFileError`` naming the file, the line (or item) and the reason for
  every problem. Files are generated (valid ones, checked against what was written into them),
  then mutated: truncated, cut, spliced with random bytes, written in another encoding, given
  huge numbers and impossible dates; random bytes too.
- every record of a file that parses is one the log can hold: its events validate and append,
  and importing the same file again appends nothing (every line a duplicate).
- each installed connector's webhook verifier (``hub.spi.registry.connectors()``) reads the
  events out of any body and headers, or raises ``InvalidInput``.

Bounded: ``EXAMPLES`` examples per test and a fixed seed (``derandomize``), so a run is
repeatable and the whole module takes well under a minute.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.errors import InvalidInput
from hub.spi.importer import FileImporter, ImportedRecord, ImportFileError, ImportOptions
from hub.spi.registry import connectors
from hub.spi.verifier import DeliveredEvent, WebhookDelivery, WebhookVerifier
from hub.store import EventStore
from hub.usecases.file_import import Statement, import_events, importer_for, statement_events
from tests.bank.test_import import OFX, PLAID

EXAMPLES = 60
"""Examples per test."""

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
        HealthCheck.filter_too_much,
    ],
)

ZONES = [ZoneInfo(z) for z in ("UTC", "America/New_York", "Etc/GMT-14", "Etc/GMT+12")]
"""Tenant time zones, from +14 to -12 hours."""


def bank_importer() -> FileImporter:
    return importer_for("bank")


# --------------------------------------------------------------------------------------------
# What every answer of the bank importer must be


@dataclass
class Parsed:
    """A file the importer read: its records, or the error it refused it with."""

    name: str
    fmt: str
    data: bytes
    records: list[ImportedRecord] = field(default_factory=list)
    error: ImportFileError | None = None


def read(
    name: str,
    data: bytes,
    fmt: str,
    *,
    mapping: Any = None,
    zone: ZoneInfo = ZONES[0],
    select: str | None = None,
) -> Parsed:
    """The importer's answer, checked: records the log can hold, or an ``ImportFileError`` that
    names the file and, for each problem, where it is and why. Any other exception fails."""
    options = ImportOptions(account="fuzz", zone=zone, mapping=mapping, select=select)
    try:
        records = bank_importer().read(name, data, file_format=fmt, options=options)
        for record in records:
            assert record.where
            assert record.occurred_at.tzinfo is not None
        # the use case makes each record an event: one the log cannot hold is refused here
        statement = Statement(name, fmt, hashlib.sha256(data).hexdigest(), records)
        events = statement_events(statement, tenant="default", source="bank:fuzz")
    except ImportFileError as exc:
        check_error(name, data, fmt, exc)
        return Parsed(name, fmt, data, error=exc)
    assert len(events) == len(records)
    again = bank_importer().read(name, data, file_format=fmt, options=options)
    assert [r.external_id for r in again] == [r.external_id for r in records]  # stable ids
    return Parsed(name, fmt, data, records=records)


def check_error(name: str, data: bytes, fmt: str, exc: ImportFileError) -> None:
    assert exc.detail.startswith(f"{name}:")
    assert exc.errors
    lines = len(data.splitlines()) + 1  # "\r" ends a line too
    for problem in exc.errors:
        where, reason = problem["field"], problem["message"]
        assert isinstance(where, str)
        assert where
        assert isinstance(reason, str)
        assert reason
        number = re.fullmatch(r"line (\d+)", where)
        if fmt in ("ofx", "csv"):
            assert number is not None, where
        if number is not None:
            assert 1 <= int(number[1]) <= lines, (where, lines)


async def imports_twice(store: EventStore, parsed: Parsed) -> None:
    """A file that parses goes into the log, and a second import adds nothing."""
    if parsed.error is not None:
        return
    source = f"bank:fuzz-{uuid.uuid4().hex[:12]}"
    statement = Statement(
        parsed.name, parsed.fmt, hashlib.sha256(parsed.data).hexdigest(), parsed.records
    )
    events = statement_events(statement, tenant="default", source=source)
    first = await import_events(store, source, events)
    assert first.lines == len(events)
    assert first.appended == len({e.external_id for e in events})  # a repeated id is one line
    second = await import_events(store, source, events)
    assert (second.appended, second.duplicates) == (0, len(events))


# --------------------------------------------------------------------------------------------
# Values: dates, amounts, text


@st.composite
def instants(draw: st.DrawFn) -> datetime:
    """A posting time, mostly ordinary, sometimes at the ends of what a datetime holds."""
    day = draw(
        st.one_of(
            st.dates(date(2000, 1, 1), date(2030, 12, 31)),
            st.sampled_from([date(1, 1, 1), date(9999, 12, 31), date(1970, 1, 1)]),
        )
    )
    return datetime(
        day.year, day.month, day.day, draw(st.integers(0, 23)), draw(st.integers(0, 59))
    )


OFFSETS = st.sampled_from(["", "[0:GMT]", "[-5:EST]", "[+14]", "[-12:X]", "[5.75:NPT]", "[-3.5]"])


@st.composite
def ofx_dates(draw: st.DrawFn) -> str:
    """DTPOSTED: the OFX forms (date, date and time, milliseconds, offset), and broken ones."""
    when = draw(instants())
    day = f"{when.year:04d}{when.month:02d}{when.day:02d}"
    clock = f"{when.hour:02d}{when.minute:02d}00"
    good = draw(st.sampled_from([day, day + clock, day + clock + ".000"]))
    bad = st.sampled_from(
        ["", "2011200", "20241301", "20240230", "99999999999999", "00000000", "2024-01-05", "x"]
    )
    return draw(st.one_of(st.just(good + draw(OFFSETS)), bad, st.text(max_size=12)))


def decimals(places: int) -> st.SearchStrategy[Decimal]:
    return st.decimals(
        min_value=-(10**9), max_value=10**9, places=places, allow_nan=False, allow_infinity=False
    )


AMOUNT_TEXT = st.one_of(
    decimals(2).map(str),
    st.sampled_from(
        [
            "0",
            "-0.00",
            "1,234.56",
            "(12.00)",
            "1.005",
            "1e3",
            "1E400",
            "-1e999999999",
            "1e-999999999",
            "9" * 40,
            "NaN",
            "sNaN",
            "Infinity",
            "-inf",
            "",
            " ",
            "$12",
            "1.2.3",
            "٣",
            "\uff11\uff12",  # fullwidth digits
        ]
    ),
    st.text(max_size=8),
)
"""Amounts as a bank file writes them, valid or not."""

TEXT = st.text(max_size=40)
WIDE_TEXT = st.one_of(
    TEXT,
    st.text(st.characters(codec="utf-8"), max_size=12),
    st.sampled_from(
        [
            "\x00",
            "a\x00b",
            "<",
            "&amp;",
            "]]>",
            "x" * 600,
            "\ud800".encode("utf-8", "surrogatepass").decode("utf-8", "surrogatepass"),
        ]
    ),
)
"""Free text fields: names, memos, ids; with NUL, markup, lone surrogates, very long."""


# --------------------------------------------------------------------------------------------
# OFX


@dataclass(frozen=True)
class OfxLine:
    trntype: str
    posted: str
    amount: str
    fitid: str | None
    name: str | None
    memo: str | None


VALID_OFX_LINES = st.builds(
    OfxLine,
    trntype=st.sampled_from(["CREDIT", "DEBIT", "FEE", "CHECK", "XFER", "OTHER"]),
    posted=st.dates(date(2000, 1, 1), date(2030, 12, 31)).map(lambda d: d.strftime("%Y%m%d")),
    amount=decimals(2).map(str),
    fitid=st.one_of(st.none(), st.from_regex(r"[A-Za-z0-9]{1,32}", fullmatch=True)),
    name=st.one_of(st.none(), st.from_regex(r"[A-Za-z0-9 .,&<>'\"]{1,32}", fullmatch=True)),
    memo=st.one_of(st.none(), st.from_regex(r"[A-Za-z0-9 .,&<>'\"]{1,32}", fullmatch=True)),
)
"""Lines a bank could write: names with ``&``, ``<`` and ``>`` (written escaped, OFX 2.3)."""

ANY_OFX_LINES = st.builds(
    OfxLine,
    trntype=st.one_of(st.just("DEBIT"), TEXT),
    posted=ofx_dates(),
    amount=AMOUNT_TEXT,
    fitid=st.one_of(st.none(), WIDE_TEXT),
    name=st.one_of(st.none(), WIDE_TEXT),
    memo=st.one_of(st.none(), WIDE_TEXT),
)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def ofx_document(
    lines: list[OfxLine], *, currency: str, version: int, account: str = "1", raw: bool = False
) -> str:
    """A bank statement: 1.x leaves leaf elements open, 2.x closes them; text is escaped (in
    1.x too, as the spec says), unless ``raw`` (1.x only: a careless bank's file)."""

    def leaf(tag: str, value: str | None) -> str:
        if value is None:
            return ""
        if version == 2:
            return f"<{tag}>{_escape(value)}</{tag}>\n"
        return f"<{tag}>{value if raw else _escape(value)}\n"

    transactions = "".join(
        "<STMTTRN>\n"
        + leaf("TRNTYPE", line.trntype)
        + leaf("DTPOSTED", line.posted)
        + leaf("TRNAMT", line.amount)
        + leaf("FITID", line.fitid)
        + leaf("NAME", line.name)
        + leaf("MEMO", line.memo)
        + "</STMTTRN>\n"
        for line in lines
    )
    body = (
        "<OFX>\n<BANKMSGSRSV1>\n<STMTTRNRS>\n<TRNUID>1\n<STMTRS>\n"
        + leaf("CURDEF", currency)
        + "<BANKACCTFROM>\n"
        + leaf("BANKID", "123")
        + leaf("ACCTID", account)
        + leaf("ACCTTYPE", "CHECKING")
        + "</BANKACCTFROM>\n<BANKTRANLIST>\n"
        + transactions
        + "</BANKTRANLIST>\n</STMTRS>\n</STMTTRNRS>\n</BANKMSGSRSV1>\n</OFX>\n"
    )
    if version == 2:
        body = body.replace("<TRNUID>1\n", "<TRNUID>1</TRNUID>\n")
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<?OFX OFXHEADER="200" VERSION="220" SECURITY="NONE" OLDFILEUID="NONE" '
            'NEWFILEUID="NONE"?>\n' + body
        )
    header = (
        "OFXHEADER:100\nDATA:OFXSGML\nVERSION:102\nSECURITY:NONE\nENCODING:USASCII\n"
        "CHARSET:1252\nCOMPRESSION:NONE\nOLDFILEUID:NONE\nNEWFILEUID:NONE\n\n"
    )
    return header + body


def ofx_bytes(text: str, version: int) -> bytes:
    return text.encode("utf-8" if version == 2 else "cp1252", errors="replace")


@FUZZ
@given(
    lines=st.lists(VALID_OFX_LINES, max_size=8),
    version=st.sampled_from([1, 2]),
    currency=st.sampled_from(["USD", "EUR", "JPY", "KWD"]),
    zone=st.sampled_from(ZONES),
)
async def test_a_valid_ofx_statement_imports_what_it_says_once(
    store: EventStore, lines: list[OfxLine], version: int, currency: str, zone: ZoneInfo
) -> None:
    if currency == "JPY":
        lines = [OfxLine(**{**line.__dict__, "amount": str(int(Decimal(line.amount)))})
                 for line in lines]  # fmt: skip
    if currency == "KWD":
        lines = [OfxLine(**{**line.__dict__, "amount": line.amount + "0"}) for line in lines]
    text = ofx_document(lines, currency=currency, version=version)
    parsed = read("statement.ofx", ofx_bytes(text, version), "ofx", zone=zone)
    assert parsed.error is None, parsed.error
    exp = {"JPY": 0, "KWD": 3}.get(currency, 2)
    got = [
        (r.data["amount_minor"], r.data["date"], r.data["fitid"], r.data["description"])
        for r in parsed.records
    ]
    assert got == [
        (
            int(Decimal(line.amount).scaleb(exp)),
            f"{line.posted[:4]}-{line.posted[4:6]}-{line.posted[6:]}",
            line.fitid,
            (line.name or "").strip() or (line.memo or "").strip(),
        )
        for line in lines
    ]
    await imports_twice(store, parsed)


@FUZZ
@given(
    lines=st.lists(ANY_OFX_LINES, min_size=1, max_size=5),
    version=st.sampled_from([1, 2]),
    currency=st.one_of(st.sampled_from(["USD", "JPY", "usd", "", "US", "€€€"]), TEXT),
    zone=st.sampled_from(ZONES),
)
async def test_any_ofx_fields_give_lines_or_an_import_error(
    store: EventStore, lines: list[OfxLine], version: int, currency: str, zone: ZoneInfo
) -> None:
    text = ofx_document(lines, currency=currency, version=version, raw=True)
    await imports_twice(store, read("fields.ofx", ofx_bytes(text, version), "ofx", zone=zone))


# --------------------------------------------------------------------------------------------
# Mutations of any file


ENCODINGS = ["utf-16", "utf-32", "utf-8-sig", "latin-1", "cp1252", "cp500", "shift_jis"]


@st.composite
def mutated(draw: st.DrawFn, base: bytes) -> bytes:
    """``base`` damaged 1-3 times: truncated, cut, spliced, repeated, re-encoded, or swapped
    for random bytes."""
    data = base
    for _ in range(draw(st.integers(1, 3))):
        size = len(data)
        at = draw(st.integers(0, size))
        end = draw(st.integers(at, size))
        kind = draw(
            st.sampled_from(
                ["truncate", "cut", "insert", "replace", "repeat", "encode", "bytes", "flip"]
            )
        )
        if kind == "truncate":
            data = data[:at]
        elif kind == "cut":
            data = data[:at] + data[end:]
        elif kind == "insert":
            data = data[:at] + draw(st.binary(min_size=1, max_size=40)) + data[at:]
        elif kind == "replace":
            data = data[:at] + draw(st.binary(max_size=40)) + data[end:]
        elif kind == "repeat":
            data = data[:end] + data[at:end] * draw(st.integers(1, 50)) + data[end:]
        elif kind == "encode":
            text = data.decode("latin-1")
            data = text.encode(draw(st.sampled_from(ENCODINGS)), errors="replace")
        elif kind == "bytes":
            data = draw(st.binary(max_size=300))
        elif data:
            index = min(at, size - 1)
            flipped = data[index] ^ (1 << draw(st.integers(0, 7)))
            data = data[:index] + bytes([flipped]) + data[index + 1 :]
    return data


OFX_FIXTURES = sorted(OFX.glob("*.ofx"))


@st.composite
def ofx_files(draw: st.DrawFn) -> bytes:
    if draw(st.booleans()):
        return draw(st.sampled_from(OFX_FIXTURES)).read_bytes()
    version = draw(st.sampled_from([1, 2]))
    lines = draw(st.lists(VALID_OFX_LINES, min_size=1, max_size=4))
    return ofx_bytes(ofx_document(lines, currency="USD", version=version), version)


@FUZZ
@given(data=ofx_files().flatmap(mutated), zone=st.sampled_from(ZONES))
async def test_a_damaged_ofx_file_gives_lines_or_an_import_error(
    store: EventStore, data: bytes, zone: ZoneInfo
) -> None:
    await imports_twice(store, read("damaged.qfx", data, "ofx", zone=zone, select=None))


# --------------------------------------------------------------------------------------------
# CSV with a column mapping


@dataclass(frozen=True)
class CsvCase:
    mapping: Any
    header: list[str]
    rows: list[list[str]]
    expected: list[int] | None
    """The amounts in minor units, when every row is valid."""


DATE_FORMATS = ["%Y-%m-%d", "%m/%d/%Y", "%d.%m.%Y", "%Y%m%d"]


@st.composite
def csv_cases(draw: st.DrawFn, *, valid: bool) -> CsvCase:
    from connectors.bank.csv_format import CsvMapping

    style = draw(st.sampled_from(["amount", "debit_credit"]))
    date_format = draw(st.sampled_from(DATE_FORMATS))
    sign = draw(st.sampled_from(["inflow_positive", "outflow_positive"]))
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    encoding = draw(st.sampled_from(["utf-8-sig", "utf-8", "latin-1", "cp1252"]))
    with_id = draw(st.booleans())
    options: dict[str, Any] = {
        "date": "Date",
        "date_format": date_format,
        "description": ["Payee", "Memo"],
        "sign": sign,
        "delimiter": delimiter,
        "encoding": encoding,
        "id": "Ref" if with_id else None,
    }
    if style == "amount":
        options["amount"] = "Amount"
        header = ["Date", "Payee", "Memo", "Amount"]
    else:
        options.update(debit="Out", credit="In")
        header = ["Date", "Payee", "Memo", "Out", "In"]
    if with_id:
        header.append("Ref")
    mapping = CsvMapping.model_validate(options)
    plain = st.from_regex(r"[A-Za-z0-9 .]{0,20}", fullmatch=True)
    rows: list[list[str]] = []
    expected: list[int] = []
    for number in range(draw(st.integers(0, 6))):
        day = draw(st.dates(date(2000, 1, 1), date(2030, 12, 31)))
        amount = draw(decimals(2))
        if valid:
            cells = {
                "Date": day.strftime(date_format),
                "Payee": draw(plain),
                "Memo": draw(plain),
                "Ref": f"R{number}",
            }
        else:
            cells = {
                "Date": draw(st.one_of(st.just(day.strftime(date_format)), TEXT)),
                "Payee": draw(WIDE_TEXT),
                "Memo": draw(WIDE_TEXT),
                "Ref": draw(WIDE_TEXT),
            }
        text = str(amount) if valid else draw(st.one_of(st.just(str(amount)), AMOUNT_TEXT))
        if style == "amount":
            cells["Amount"] = text
            value = amount
        elif amount < 0:
            cells.update(Out=text.lstrip("-") if valid else text, In="")
            value = amount
        else:
            cells.update(Out="", In=text)
            value = amount
        minor = int(value.scaleb(2))
        expected.append(-minor if sign == "outflow_positive" else minor)
        rows.append([cells[column] for column in header])
    return CsvCase(mapping, header, rows, expected if valid else None)


def csv_bytes(case: CsvCase, encoding: str | None = None) -> bytes:
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, delimiter=case.mapping.delimiter, lineterminator="\n")
    writer.writerow(case.header)
    writer.writerows(case.rows)
    return out.getvalue().encode(encoding or case.mapping.encoding, errors="replace")


@FUZZ
@given(case=csv_cases(valid=True), zone=st.sampled_from(ZONES))
async def test_a_valid_csv_statement_imports_what_it_says_once(
    store: EventStore, case: CsvCase, zone: ZoneInfo
) -> None:
    parsed = read("statement.csv", csv_bytes(case), "csv", mapping=case.mapping, zone=zone)
    assert parsed.error is None, parsed.error
    assert [r.data["amount_minor"] for r in parsed.records] == case.expected
    await imports_twice(store, parsed)


@FUZZ
@given(
    case=csv_cases(valid=False),
    encoding=st.one_of(st.none(), st.sampled_from(ENCODINGS)),
    zone=st.sampled_from(ZONES),
)
async def test_any_csv_cells_give_lines_or_an_import_error(
    store: EventStore, case: CsvCase, encoding: str | None, zone: ZoneInfo
) -> None:
    data = csv_bytes(case, encoding)
    await imports_twice(store, read("cells.csv", data, "csv", mapping=case.mapping, zone=zone))


@FUZZ
@given(
    case_and_data=csv_cases(valid=True).flatmap(
        lambda case: st.tuples(st.just(case), mutated(csv_bytes(case)))
    ),
    zone=st.sampled_from(ZONES),
)
async def test_a_damaged_csv_file_gives_lines_or_an_import_error(
    store: EventStore, case_and_data: tuple[CsvCase, bytes], zone: ZoneInfo
) -> None:
    case, data = case_and_data
    await imports_twice(store, read("damaged.csv", data, "csv", mapping=case.mapping, zone=zone))


# --------------------------------------------------------------------------------------------
# Plaid transactions JSON


class Raw(str):
    """A JSON token written as is (a huge number, NaN, an exponent Python would not write)."""


def to_json(value: Any) -> str:
    """JSON text of ``value``, with ``Raw`` tokens and ``Decimal`` numbers written verbatim."""
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{to_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(to_json(v) for v in value) + "]"
    return json.dumps(value)


NUMBER_TOKENS = st.one_of(
    decimals(2),
    st.integers(-(10**6), 10**6),
    st.sampled_from(
        [
            Raw("1e400"),
            Raw("-1E999999999"),
            Raw("1e-999999999"),
            Raw("NaN"),
            Raw("Infinity"),
            Raw("-Infinity"),
            Raw("9" * 30),
            Raw("9" * 5000),
            Raw("0.001"),
            Raw("-0"),
        ]
    ),
)

JSON_LEAVES = st.one_of(
    st.none(), st.booleans(), NUMBER_TOKENS, WIDE_TEXT, st.floats(allow_nan=False)
)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def plaid_transactions(draw: st.DrawFn, *, valid: bool) -> dict[str, Any]:
    day = draw(st.dates(date(2000, 1, 1), date(2030, 12, 31)))
    tx: dict[str, Any] = {
        "transaction_id": draw(st.from_regex(r"[A-Za-z0-9]{10,37}", fullmatch=True)),
        "account_id": "acct-1",
        "amount": draw(decimals(2)),
        "iso_currency_code": "USD",
        "date": day.isoformat(),
        "name": draw(st.from_regex(r"[A-Za-z0-9 .]{1,30}", fullmatch=True)),
        "pending": False,
        "location": {"lat": Raw("40.7128"), "lon": Raw("-74.006"), "city": None},
        "category": ["Travel", "Taxi"],
    }
    if valid:
        return tx
    for key in draw(st.lists(st.sampled_from(sorted(tx)), max_size=4, unique=True)):
        tx[key] = draw(
            st.one_of(
                JSON_VALUES,
                NUMBER_TOKENS,
                st.sampled_from(["0001-01-01", "9999-12-31", "2024-02-30", "20240101", "usd"]),
            )
        )
    if draw(st.booleans()):
        tx[draw(st.text(max_size=8))] = draw(JSON_VALUES)
    return tx


@st.composite
def plaid_documents(draw: st.DrawFn, *, valid: bool) -> Any:
    txs = draw(st.lists(plaid_transactions(valid=valid), max_size=5))
    shape = draw(st.sampled_from(["transactions", "added", "override_accounts"]))
    if shape == "override_accounts":
        for tx in txs:
            tx.pop("account_id", None)
        doc: Any = {"override_accounts": [{"numbers": {"account": "1"}, "transactions": txs}]}
    else:
        doc = {shape: txs, "accounts": [{"account_id": "acct-1"}]}
    if not valid and draw(st.booleans()):
        doc = draw(st.one_of(JSON_VALUES, st.just(doc)))
    return doc


def written_transactions(doc: dict[str, Any]) -> list[dict[str, Any]]:
    if "override_accounts" in doc:
        return list(doc["override_accounts"][0]["transactions"])
    return list(doc["transactions"] if "transactions" in doc else doc["added"])


@FUZZ
@given(doc=plaid_documents(valid=True), zone=st.sampled_from(ZONES))
async def test_a_valid_plaid_file_imports_what_it_says_once(
    store: EventStore, doc: dict[str, Any], zone: ZoneInfo
) -> None:
    parsed = read("transactions.json", to_json(doc).encode(), "plaid", zone=zone)
    assert parsed.error is None, parsed.error
    txs = written_transactions(doc)
    assert [r.data["amount_minor"] for r in parsed.records] == [
        -int(Decimal(tx["amount"]).scaleb(2)) for tx in txs
    ]
    await imports_twice(store, parsed)


@FUZZ
@given(
    doc=plaid_documents(valid=False),
    encoding=st.sampled_from(["utf-8", "utf-8", "utf-16", "latin-1"]),
    zone=st.sampled_from(ZONES),
)
async def test_any_plaid_json_gives_lines_or_an_import_error(
    store: EventStore, doc: Any, encoding: str, zone: ZoneInfo
) -> None:
    data = to_json(doc).encode(encoding, errors="surrogatepass")
    await imports_twice(store, read("any.json", data, "plaid", zone=zone))


@FUZZ
@given(
    data=st.one_of(
        st.just(PLAID.read_bytes()),
        plaid_documents(valid=True).map(lambda doc: to_json(doc).encode()),
    ).flatmap(mutated),
    zone=st.sampled_from(ZONES),
)
async def test_a_damaged_plaid_file_gives_lines_or_an_import_error(
    store: EventStore, data: bytes, zone: ZoneInfo
) -> None:
    await imports_twice(store, read("damaged.json", data, "plaid", zone=zone))


@FUZZ
@given(data=st.binary(max_size=2000), name=st.sampled_from(["x.ofx", "x.csv", "x.json", "x"]))
def test_random_bytes_in_any_format_give_lines_or_an_import_error(data: bytes, name: str) -> None:
    fmt = bank_importer().detect(name, data)
    assert fmt in bank_importer().formats
    read(name, data, fmt)


# --------------------------------------------------------------------------------------------
# Webhook bodies, through every installed connector's verifier


def verifiers() -> dict[str, WebhookVerifier]:
    return {
        name: plugin.verifier
        for name, plugin in sorted(connectors().items())
        if plugin.verifier is not None
    }


FIELDS = [
    "id", "type", "created", "data", "object", "event_id", "created_at", "updated_at",
    "date_modified_gmt", "date_created_gmt", "events", "tenantId", "eventCategory",
    "resourceId", "eventType", "eventDateUtc", "amount", "currency",
]  # fmt: skip
"""The fields the providers' bodies are read by."""

TIMES = st.one_of(
    st.datetimes(timezones=st.sampled_from([UTC, *ZONES])).map(datetime.isoformat),
    st.sampled_from(
        [
            "0001-01-01T00:00:00+14:00",
            "9999-12-31T23:59:59-14:00",
            "2026-01-01T00:00:00Z",
            "2026-01-01T00:00:00",
            "2026-13-01",
            "",
        ]
    ),
)

FIELD_VALUES = st.one_of(
    JSON_VALUES,
    TIMES,
    st.integers(),
    st.sampled_from([10**12, -(10**12), 2**63, 10**30, 1_700_000_000, 0]),
    st.from_regex(r"[a-z_]{1,12}(\.[a-z_]{1,12}){0,3}", fullmatch=True),
)


IDS = st.one_of(st.from_regex(r"[A-Za-z0-9_]{1,30}", fullmatch=True), st.integers(0, 10**6))
TOPICS = st.from_regex(r"[a-z_]{1,12}[./][a-z_]{1,12}", fullmatch=True)
NAIVE_TIMES = st.datetimes().map(lambda t: t.isoformat())
EPOCHS = st.one_of(
    st.integers(0, 2_000_000_000),
    st.sampled_from([10**12, -(10**12), 2**63, -(2**63), 10**30, 253402300800, -62135596801]),
)
"""Unix times: ordinary ones, and ones beyond what a datetime holds."""


@st.composite
def xero_events(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "tenantId": draw(IDS.map(str)),
        "eventCategory": draw(st.sampled_from(["INVOICE", "CONTACT", "Payment.Created", ""])),
        "resourceId": draw(IDS.map(str)),
        "eventType": draw(st.sampled_from(["CREATE", "UPDATE", "", "a/b"])),
        "eventDateUtc": draw(st.one_of(TIMES, NAIVE_TIMES)),
    }


def shaped(provider: str) -> st.SearchStrategy[tuple[dict[str, Any], dict[str, str]]]:
    """A delivery as ``provider`` sends it (body and headers), with extreme values inside."""
    if provider == "stripe":
        body = st.fixed_dictionaries(
            {
                "id": IDS.map(lambda i: f"evt_{i}"),
                "type": TOPICS.map(lambda t: t.replace("/", ".")),
                "created": EPOCHS,
                "data": st.fixed_dictionaries({"object": st.fixed_dictionaries({"id": IDS})}),
            }
        )
        return st.tuples(body, st.just({}))
    if provider == "shopify":
        body = st.fixed_dictionaries(
            {"id": IDS, "updated_at": TIMES, "created_at": st.one_of(TIMES, NAIVE_TIMES)}
        )
        headers = st.fixed_dictionaries(
            {"x-shopify-event-id": IDS.map(str), "x-shopify-topic": TOPICS},
            optional={"x-shopify-triggered-at": st.one_of(TIMES, NAIVE_TIMES)},
        )
        return st.tuples(body, headers)
    if provider == "woocommerce":
        body = st.fixed_dictionaries(
            {"id": IDS, "date_modified_gmt": st.one_of(NAIVE_TIMES, TIMES)},
            optional={"date_created_gmt": st.one_of(NAIVE_TIMES, TIMES)},
        )
        return st.tuples(body, st.fixed_dictionaries({"x-wc-webhook-topic": TOPICS}))
    if provider == "square":
        body = st.fixed_dictionaries(
            {
                "event_id": IDS.map(str),
                "type": TOPICS,
                "created_at": TIMES,
                "data": st.fixed_dictionaries({"id": IDS.map(str)}),
            }
        )
        return st.tuples(body, st.just({}))
    if provider == "xero":
        body = st.fixed_dictionaries({"events": st.lists(xero_events(), max_size=3)})
        return st.tuples(body, st.just({}))
    return st.tuples(st.dictionaries(st.sampled_from(FIELDS), FIELD_VALUES), st.just({}))


HEADER_NAMES = [
    "x-shopify-event-id", "x-shopify-webhook-id", "x-shopify-topic", "x-shopify-triggered-at",
    "x-wc-webhook-topic", "x-wc-webhook-resource", "square-initial-delivery-timestamp",
]  # fmt: skip


@st.composite
def deliveries(draw: st.DrawFn, provider: str) -> tuple[bytes, dict[str, str]]:
    """A ``provider`` delivery, maybe with some fields (or headers) given any JSON value or
    dropped, maybe with its bytes damaged; or random bytes."""
    body, headers = draw(shaped(provider))
    body, headers = dict(body), dict(headers)
    for key in draw(st.lists(st.sampled_from([*body, *FIELDS]), max_size=2, unique=True)):
        if draw(st.booleans()):
            body[key] = draw(FIELD_VALUES)
        else:
            body.pop(key, None)
    if draw(st.integers(0, 4)) == 0:
        name = draw(st.sampled_from(HEADER_NAMES))
        headers[name] = draw(st.one_of(TIMES, TOPICS, TEXT))
    data = to_json(body).encode("utf-8", errors="surrogatepass")
    kind = draw(st.sampled_from(["as sent", "as sent", "as sent", "damaged", "bytes"]))
    if kind == "damaged":
        data = draw(mutated(data))
    elif kind == "bytes":
        data = draw(st.binary(max_size=300))
    return data, headers


def _check_events(provider: str, body: bytes, headers: dict[str, str]) -> None:
    verifier = verifiers()[provider]
    url = "https://hub.example/v1/webhooks/x/y"
    delivery = WebhookDelivery(url=url, headers=headers, body=body)
    try:
        found = verifier.events(delivery)
    except InvalidInput as exc:
        problem = str(exc)
        assert problem
        return
    assert isinstance(found, list)
    for item in found:
        assert isinstance(item, DeliveredEvent)
        assert isinstance(item.external_id, str)
        assert item.external_id
        assert re.fullmatch(r"[a-z0-9_]+(\.[a-z0-9_]+)+", item.type), item.type
        assert isinstance(item.occurred_at, datetime)
        assert item.occurred_at.tzinfo is not None
        assert isinstance(item.data, dict)


@pytest.mark.parametrize("provider", sorted(verifiers()))
@FUZZ
@given(data=st.data())
def test_a_webhook_body_gives_events_or_invalid_input(provider: str, data: st.DataObject) -> None:
    """``events()`` of each installed verifier: the events, or ``InvalidInput``; nothing else
    (the receiver would answer 500 for anything else)."""
    body, headers = data.draw(deliveries(provider), label="delivery")
    _check_events(provider, body, headers)


# --------------------------------------------------------------------------------------------
# Amounts: read exactly, or refused; never rounded, never rewritten


AMOUNTS = st.one_of(
    st.decimals(allow_nan=False, allow_infinity=False),
    st.decimals(places=2, allow_nan=False, allow_infinity=False),
    st.builds(
        lambda digits, power: Decimal(f"{digits}E{power}"),
        st.integers(-(10**40), 10**40),
        st.integers(-(10**9), 10**9),
    ),
)


@FUZZ
@given(
    amount=AMOUNTS,
    currency=st.sampled_from(["USD", "JPY", "KWD"]),
    fmt=st.sampled_from(["ofx", "csv", "plaid"]),
)
def test_an_amount_is_read_exactly_or_refused(amount: Decimal, currency: str, fmt: str) -> None:
    """Whatever the file writes, the line holds exactly that amount, or the line is refused
    naming it: a decimal context must not round ``1.0000000000000000000000000000001`` to 1,
    nor read ``1E-999999999`` as 0, nor spend minutes expanding ``1E999999999``."""
    written = str(amount)
    if fmt == "ofx":
        line = OfxLine("DEBIT", "20240105", written, "F1", "N", None)
        data = ofx_bytes(ofx_document([line], currency=currency, version=2), 2)
        parsed = read("a.ofx", data, "ofx")
    elif fmt == "csv":
        from connectors.bank.csv_format import CsvMapping

        data = f"Date,Description,Amount\n2024-01-05,N,{written}\n".encode()
        parsed = read("a.csv", data, "csv", mapping=CsvMapping(currency=currency))
    else:
        tx = {"amount": Raw(written), "iso_currency_code": currency, "date": "2024-01-05"}
        parsed = read("a.json", to_json({"transactions": [tx]}).encode(), "plaid")
    if parsed.error is not None:
        assert "amount" in str(parsed.error) or "TRNAMT" in str(parsed.error), parsed.error
        return
    (record,) = parsed.records
    minor = record.data["amount_minor"]
    places = {"JPY": 0, "KWD": 3}.get(currency, 2)
    read_back = Decimal(minor).scaleb(-places)
    assert read_back == (-amount if fmt == "plaid" else amount)
    assert abs(minor) < 2**63


# --------------------------------------------------------------------------------------------
# Files that broke the parsers once, kept as examples


def _ofx1(body: str, *, charset: str = "1252") -> bytes:
    header = (
        "OFXHEADER:100\nDATA:OFXSGML\nVERSION:102\nSECURITY:NONE\nENCODING:USASCII\n"
        f"CHARSET:{charset}\nCOMPRESSION:NONE\nOLDFILEUID:NONE\nNEWFILEUID:NONE\n\n"
    )
    return header.encode() + body.encode("latin-1")


def _statement(transaction: str) -> str:
    return (
        "<OFX><BANKMSGSRSV1><STMTTRNRS><STMTRS><CURDEF>USD\n<BANKACCTFROM><ACCTID>1\n"
        f"</BANKACCTFROM><BANKTRANLIST>\n<STMTTRN>\n{transaction}</STMTTRN>\n"
        "</BANKTRANLIST></STMTRS></STMTTRNRS></BANKMSGSRSV1></OFX>\n"
    )


GOOD_TRN = "<TRNTYPE>DEBIT\n<DTPOSTED>20240105\n<TRNAMT>-1.00\n<FITID>F1\n<NAME>N\n"
CSV_HEADER = b"Date,Description,Amount\n"
BREAKERS: list[tuple[str, str, bytes]] = [
    ("ofx", "a huge TRNAMT", _ofx1(_statement(GOOD_TRN.replace("-1.00", "1E999999999")))),
    ("ofx", "a tiny TRNAMT", _ofx1(_statement(GOOD_TRN.replace("-1.00", "1E-999999999")))),
    (
        "ofx",
        "DTPOSTED before year 1 in UTC",
        _ofx1(_statement(GOOD_TRN.replace("20240105", "00010101000000[+14]"))),
    ),
    (
        "ofx",
        "DTPOSTED after 9999 in UTC",
        _ofx1(_statement(GOOD_TRN.replace("20240105", "99991231235959[-12:X]"))),
    ),
    ("ofx", "a NUL in the FITID", _ofx1(_statement(GOOD_TRN.replace("F1", "F\x001")))),
    ("ofx", "a 600-character FITID", _ofx1(_statement(GOOD_TRN.replace("F1", "F" * 600)))),
    (
        "ofx",
        "a non-ASCII byte in a 1.x header",
        _ofx1(_statement(GOOD_TRN)).replace(b"SECURITY:NONE", b"SECURITY:N\xd6NE"),
    ),
    ("ofx", "an unknown 1.x CHARSET", _ofx1(_statement(GOOD_TRN), charset="KLINGON")),
    (
        "ofx",
        "a byte cp1252 does not define",
        _ofx1(_statement(GOOD_TRN.replace("<NAME>N", "<NAME>N\x81"))),
    ),
    (
        "ofx",
        "a 2.x file that is not UTF-8",
        ofx_bytes(
            ofx_document(
                [OfxLine("DEBIT", "20240105", "1.00", "F", "Caf\xe9", None)],
                currency="USD",
                version=2,
            ),
            2,
        ).replace("Café".encode(), b"Caf\xe9"),
    ),
    ("ofx", "more closing tags than opening ones", _ofx1(_statement(GOOD_TRN) + "</OFX></X>")),
    ("csv", "rows shorter than the header", CSV_HEADER + b"2024-01-05,only a date\n2024-01-06\n"),
    (
        "csv",
        "a field beyond the csv module's limit",
        CSV_HEADER + b'2024-01-05,"' + b"x" * 200_000 + b'",1.00\n',
    ),
    ("csv", "a date with no UTC instant east of UTC", CSV_HEADER + b"0001-01-01,early,1.00\n"),
    ("csv", "a huge amount", CSV_HEADER + b"2024-01-05,big,9" + b"9" * 30 + b"\n"),
    ("csv", "a NUL in the description", CSV_HEADER + b"2024-01-05,a\x00b,1.00\n"),
    ("plaid", "a 5,000-digit integer", b'{"transactions": [{"amount": 1' + b"0" * 5000 + b"}]}"),
    (
        "plaid",
        "JSON nested 100,000 deep",
        b'{"transactions": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    ),
    (
        "plaid",
        "NaN as an amount",
        b'{"transactions": [{"amount": NaN, "iso_currency_code": "USD", "date": "2024-01-05"}]}',
    ),
    (
        "plaid",
        "Infinity in a nested field",
        b'{"transactions": [{"amount": 1, '
        b'"iso_currency_code": "USD", "date": "2024-01-05", "location": {"lat": Infinity}}]}',
    ),
    (
        "plaid",
        "an account's numbers not an object",
        b'{"override_accounts": [{"numbers": "12",'
        b' "transactions": []}, {"numbers": [1], "transactions": []}]}',
    ),
    (
        "plaid",
        "a lone surrogate in a name",
        b'{"transactions": [{"amount": 1, '
        b'"iso_currency_code": "USD", "date": "2024-01-05", "name": "\\ud800"}]}',
    ),
    (
        "plaid",
        "a currency that is not ASCII",
        b'{"transactions": [{"amount": 1, '
        b'"iso_currency_code": "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac", "date": "2024-01-05"}]}',
    ),
]


@pytest.mark.parametrize(
    ("fmt", "data"), [(f, d) for f, _, d in BREAKERS], ids=[n for _, n, _ in BREAKERS]
)
@pytest.mark.parametrize("zone", [ZONES[0], ZONES[2]], ids=["UTC", "UTC+14"])
async def test_a_file_that_broke_a_parser_gives_lines_or_an_import_error(
    store: EventStore, fmt: str, data: bytes, zone: ZoneInfo
) -> None:
    from connectors.bank.csv_format import CsvMapping

    mapping = CsvMapping() if fmt == "csv" else None
    await imports_twice(store, read(f"breaker.{fmt}", data, fmt, mapping=mapping, zone=zone))


async def test_nested_numbers_in_a_plaid_transaction_are_kept_as_written(
    store: EventStore,
) -> None:
    """Plaid's ``location`` holds fractions: they are kept as their text, as the amount is."""
    tx = {
        "transaction_id": "t1",
        "amount": Raw("12.5"),
        "iso_currency_code": "USD",
        "date": "2024-01-05",
        "name": "Taxi",
        "location": {"lat": Raw("40.7128"), "lon": Raw("-74.0060"), "store_number": None},
        "counterparties": [{"confidence": Raw("0.95"), "id": Raw("9" * 25)}],
    }
    parsed = read("t.json", to_json({"transactions": [tx]}).encode(), "plaid")
    assert parsed.error is None, parsed.error
    original = parsed.records[0].data["original"]
    assert original["location"] == {"lat": "40.7128", "lon": "-74.0060", "store_number": None}
    assert original["counterparties"] == [{"confidence": "0.95", "id": "9" * 25}]
    await imports_twice(store, parsed)


def test_ofx_text_is_unescaped() -> None:
    """OFX writes ``&``, ``<`` and ``>`` as entities (section 2.3), in 1.x as in 2.x."""
    for version in (1, 2):
        line = OfxLine("DEBIT", "20240105", "-1.00", "F1", "AT&T <Wireless>", "Q&A")
        data = ofx_bytes(ofx_document([line], currency="USD", version=version), version)
        (record,) = read("t.ofx", data, "ofx").records
        assert record.data["description"] == "AT&T <Wireless>"
        assert record.data["memo"] == "Q&A"
        assert record.data["original"]["NAME"] == "AT&T <Wireless>"


def test_a_large_ofx_file_is_read_in_linear_time() -> None:
    """20,000 lines (a busy account's year) in seconds, not minutes: each line's place in the
    file is found from an index built once, not by searching the whole file again."""
    lines = [OfxLine("DEBIT", "20240105", "-1.00", f"F{i}", "N", None) for i in range(20_000)]
    data = ofx_bytes(ofx_document(lines, currency="USD", version=1), 1)
    started = time.monotonic()
    parsed = read("year.ofx", data, "ofx")
    assert len(parsed.records) == 20_000
    last = data.count(b"\n", 0, data.rindex(b"<STMTTRN>")) + 1
    assert parsed.records[-1].where == f"line {last}"
    assert time.monotonic() - started < 20
