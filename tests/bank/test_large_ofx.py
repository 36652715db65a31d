"""Large OFX statements: progress while they are read and imported, and errors that still name
the right line thousands of lines in."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.bank.lines import BankFileError
from connectors.bank.ofx import PROGRESS_EVERY, parse_ofx
from hub.cli.progress import stages
from tests.cli.test_cli import ledgerhub

HEADER = (
    "OFXHEADER:100\nDATA:OFXSGML\nVERSION:102\nSECURITY:NONE\nENCODING:USASCII\nCHARSET:1252\n"
    "COMPRESSION:NONE\nOLDFILEUID:NONE\nNEWFILEUID:NONE\n\n"
    "<OFX>\n<BANKMSGSRSV1>\n<STMTTRNRS>\n<TRNUID>1\n<STMTRS>\n<CURDEF>USD\n"
    "<BANKACCTFROM>\n<BANKID>121000358\n<ACCTID>0042\n<ACCTTYPE>CHECKING\n</BANKACCTFROM>\n"
    "<BANKTRANLIST>\n<DTSTART>20240101\n<DTEND>20241231\n"
)
FOOTER = "</BANKTRANLIST>\n</STMTRS>\n</STMTTRNRS>\n</BANKMSGSRSV1>\n</OFX>\n"


def statement(
    n: int, bad: dict[int, tuple[str, str]] | None = None
) -> tuple[bytes, dict[str, int]]:
    """An OFX 1.x statement of ``n`` transactions, one tag a line (``bad``: transaction number
    → (tag, value) written instead of the good one); and the line of each transaction's tags
    (``"<number>/<TAG>"`` → line, from 1)."""
    lines = HEADER.splitlines()
    where: dict[str, int] = {}
    for i in range(n):
        fields = {
            "TRNTYPE": "DEBIT",
            "DTPOSTED": f"2024{i % 12 + 1:02d}{i % 28 + 1:02d}120000[-5:EST]",
            "TRNAMT": f"-{i % 500}.{i % 100:02d}",
            "FITID": f"F{i:08d}",
            "NAME": f"Shop #{i % 97} &amp; Co",
        }
        if bad and i in bad:
            tag, value = bad[i]
            fields[tag] = value
        where[f"{i}/STMTTRN"] = len(lines) + 1
        lines.append("<STMTTRN>")
        for tag, value in fields.items():
            where[f"{i}/{tag}"] = len(lines) + 1
            lines.append(f"<{tag}>{value}")
        lines.append("</STMTTRN>")
    return ("\n".join(lines) + "\n" + FOOTER).encode(), where


def test_progress_counts_the_files_lines_then_its_transactions() -> None:
    n = 3000
    data, _ = statement(n)
    seen: list[tuple[str, int, int | None]] = []
    lines = parse_ofx("big.ofx", data, account="a", report=lambda *r: seen.append(r))
    assert len(lines) == n
    stages_seen = [stage for stage, _, _ in seen]
    assert stages_seen == sorted(stages_seen, key=["reading lines", "checking transactions"].index)
    reading = [(done, total) for stage, done, total in seen if stage == "reading lines"]
    file_lines = data.count(b"\n")
    assert len(reading) >= (n * 7) // PROGRESS_EVERY  # reported along the way, not only at the end
    assert [d for d, _ in reading] == sorted(d for d, _ in reading)
    assert reading[-1] == (file_lines, file_lines)
    assert {t for _, t in reading} == {file_lines}
    checking = [(done, total) for stage, done, total in seen if stage == "checking transactions"]
    assert checking[0] == (0, n)
    assert checking[-1] == (n, n)


@pytest.mark.parametrize(
    ("bad", "tag", "reason"),
    [
        ({4321: ("TRNAMT", "12.3.4")}, "TRNAMT", "is not a decimal amount"),
        ({4999: ("DTPOSTED", "20241340")}, "DTPOSTED", "is not a valid date"),
        ({17: ("TRNAMT", "1.234")}, "TRNAMT", "more than 2 decimal places"),
    ],
)
def test_errors_deep_in_a_large_file_name_their_line(
    bad: dict[int, tuple[str, str]], tag: str, reason: str
) -> None:
    data, where = statement(5000, bad)
    with pytest.raises(BankFileError) as caught:
        parse_ofx("big.ofx", data, account="a")
    (number,) = bad
    assert caught.value.errors[0]["field"] == f"line {where[f'{number}/{tag}']}"
    assert reason in caught.value.errors[0]["message"]


def test_every_line_names_where_its_transaction_starts() -> None:
    data, where = statement(2500)
    lines = parse_ofx("big.ofx", data, account="a")
    assert [line.where for line in lines] == [f"line {where[f'{i}/STMTTRN']}" for i in range(2500)]
    assert lines[7].description == "Shop #7 & Co"


def test_plain_progress_names_each_stage_and_stays_quiet_for_small_work(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with stages("importing small.ofx", minimum=100) as update:
        update("reading lines", 10, 40)
        update("checking transactions", 3, 3)
    assert capsys.readouterr().err == ""
    with stages("importing big.ofx", minimum=100) as update:
        update("reading lines", 0, 500)
        update("reading lines", 500, 500)
        update("appending to the log", 0, 200)
        update("appending to the log", 200, 200)
    assert capsys.readouterr().err.splitlines() == [
        "importing big.ofx: reading lines 0/500",
        "importing big.ofx: reading lines 500/500",
        "importing big.ofx: appending to the log 0/200",
        "importing big.ofx: appending to the log 200/200",
    ]


def test_import_bank_shows_progress_for_a_large_file_only(dsn: str, tmp_path: Path) -> None:
    big, small = tmp_path / "big.ofx", tmp_path / "small.ofx"
    big.write_bytes(statement(2500)[0])
    small.write_bytes(statement(3)[0])
    env = {"LEDGERHUB_DSN": dsn}
    result = ledgerhub("import", "bank", str(big), "--account", "checking", env=env)
    assert result.returncode == 0, result.stderr
    assert "2500 records, 2500 new" in result.stdout
    stages_shown = [line.split(": ", 1)[1].rsplit(" ", 1)[0] for line in result.stderr.splitlines()]
    assert list(dict.fromkeys(stages_shown)) == [
        "reading lines",
        "checking transactions",
        "preparing events",
        "appending to the log",
    ]
    assert result.stderr.splitlines()[-1] == "importing big.ofx: appending to the log 2500/2500"
    quiet = ledgerhub("import", "bank", str(small), "--account", "checking", env=env)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == ""


def test_a_broken_large_file_is_refused_with_its_line_after_the_progress(
    dsn: str, tmp_path: Path
) -> None:
    data, where = statement(2500, {2400: ("TRNAMT", "abc")})
    path = tmp_path / "broken.ofx"
    path.write_bytes(data)
    result = ledgerhub(
        "import", "bank", str(path), "--account", "checking", env={"LEDGERHUB_DSN": dsn}
    )
    assert result.returncode == 1
    reason = result.stderr.splitlines()[-1]  # after the progress lines
    assert reason.startswith(f"ledgerhub: broken.ofx:line {where['2400/TRNAMT']}: TRNAMT 'abc'")
    tail = ledgerhub("events", "tail", "--after", "0", env={"LEDGERHUB_DSN": dsn})
    assert tail.stdout == ""
