"""OFX import time: ``ledgerhub import bank FILE`` end to end, and where the time goes.

    python ops/bench/ofx_import.py [--sizes 5000,20000] [--dsn postgresql://…]

Without --dsn (or LEDGERHUB_BENCH_DSN) it uses the embedded PostgreSQL under LEDGERHUB_HOME.
A fresh database is created for each size and dropped after. The statement is an OFX 1.x (SGML)
checking account file of N transactions, each with TRNTYPE, DTPOSTED (with a ``[-5:EST]`` zone),
TRNAMT, FITID, NAME and MEMO, on one line (a 20,000-transaction file is a 20,000-line file, the
shape of the issue's measurement). For each size:

- end to end: the command in a child process (interpreter start, plugin loading, parsing,
  checking, one append of every line, as a user runs it; its progress lines go to a pipe),
  best of 3, each run on a fresh database;
- the phases, in this process: reading and parsing the file (``read_statement``), preparing the
  events (``statement_events``), appending them (``import_events``: one transaction), and a
  second import of the same file (every line a duplicate).

Target (issue 12): a 20,000-line OFX imports in under 5 s end to end, and time grows linearly
(20,000 takes about 4 times as long as 5,000, not 16 times).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scratch import scratch_database

from hub.store import EventStore
from hub.usecases.file_import import import_events, importer_for, read_statement, statement_events

HEADER = (
    "OFXHEADER:100\nDATA:OFXSGML\nVERSION:102\nSECURITY:NONE\nENCODING:USASCII\nCHARSET:1252\n"
    "COMPRESSION:NONE\nOLDFILEUID:NONE\nNEWFILEUID:NONE\n\n"
    "<OFX><SIGNONMSGSRSV1><SONRS><STATUS><CODE>0<SEVERITY>INFO</STATUS>"
    "<DTSERVER>20241231120000<LANGUAGE>ENG</SONRS></SIGNONMSGSRSV1>\n"
    "<BANKMSGSRSV1><STMTTRNRS><TRNUID>1<STATUS><CODE>0<SEVERITY>INFO</STATUS>\n"
    "<STMTRS><CURDEF>USD<BANKACCTFROM><BANKID>121000358<ACCTID>000012345678"
    "<ACCTTYPE>CHECKING</BANKACCTFROM>\n<BANKTRANLIST><DTSTART>20240101<DTEND>20241231\n"
)
FOOTER = (
    "</BANKTRANLIST><LEDGERBAL><BALAMT>1000.00<DTASOF>20241231</LEDGERBAL></STMTRS>"
    "</STMTTRNRS></BANKMSGSRSV1></OFX>\n"
)


def statement(n: int) -> bytes:
    """An OFX 1.x statement of ``n`` transactions, one a line."""
    lines = [HEADER]
    for i in range(n):
        day = f"2024{(i * 12) // n + 1:02d}{i % 28 + 1:02d}"
        cents = (i * 7919) % 250_000
        sign = "-" if i % 5 else ""
        shop = f"SHOP #{i % 500}"
        lines.append(
            f"<STMTTRN><TRNTYPE>{'POS' if sign else 'CREDIT'}<DTPOSTED>{day}122017.000[-5:EST]"
            f"<TRNAMT>{sign}{cents // 100}.{cents % 100:02d}<FITID>2024{i:010d}"
            f"<NAME>{shop}<MEMO>POS MERCHANDISE;{shop}</STMTTRN>\n"
        )
    lines.append(FOOTER)
    return "".join(lines).encode("ascii")


def end_to_end(dsn: str, path: Path, account: str) -> float:
    """``ledgerhub import bank`` in a child process; its wall time."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGERHUB_")}
    env.update(LEDGERHUB_DSN=dsn)
    command = [sys.executable, "-m", "hub", "import", "bank", str(path), "--account", account]
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"import failed: {result.stderr}")
    return seconds


async def phases(dsn: str, path: Path, n: int) -> dict[str, float]:
    timings: dict[str, float] = {}
    importer = importer_for("bank")
    started = time.perf_counter()
    parsed = read_statement(path, importer, account="phases")
    timings["read and parse"] = time.perf_counter() - started
    started = time.perf_counter()
    events = statement_events(parsed, tenant="default", source="bank:phases")
    timings["prepare events"] = time.perf_counter() - started
    async with await EventStore.open(dsn) as store:
        started = time.perf_counter()
        report = await import_events(store, "bank:phases", events)
        timings["append (one transaction)"] = time.perf_counter() - started
        # n transactions and the statement's closing balance (``bank.balance``)
        assert report.appended == len(events) == n + 1, report
        started = time.perf_counter()
        again = await import_events(store, "bank:phases", events)
        timings["append again (all duplicates)"] = time.perf_counter() - started
        assert again.duplicates == len(events), again
    return timings


async def one_size(server: str | None, n: int, folder: Path) -> float:
    path = folder / f"statement_{n}.ofx"
    path.write_bytes(statement(n))
    lines = path.read_bytes().count(b"\n")
    print(f"{n:,} transactions: {path.stat().st_size / 1e6:.1f} MB, {lines:,} lines")
    runs = []
    for attempt in range(3):
        async with scratch_database(server, f"ofx_{n}_{attempt}") as dsn:
            runs.append(end_to_end(dsn, path, "checking"))
    best = min(runs)
    print(f"  end to end (ledgerhub import bank): best {best:.2f} s of "
          f"{', '.join(f'{r:.2f}' for r in runs)} s; {n / best:,.0f} lines/s")  # fmt: skip
    async with scratch_database(server, f"ofx_{n}_phases") as dsn:
        for name, seconds in (await phases(dsn, path, n)).items():
            print(f"  {name:<30} {seconds:6.2f} s")
    return best


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="5000,20000")
    parser.add_argument("--dsn", default=os.environ.get("LEDGERHUB_BENCH_DSN"))
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        best = {n: await one_size(args.dsn, n, Path(tmp)) for n in sizes}
    if len(best) > 1:
        small, large = min(best), max(best)
        growth = best[large] / best[small]
        print(f"time at {large:,} / time at {small:,}: {growth:.2f} (data x{large / small:.0f})")
    if 20_000 in best:
        verdict = "ok" if best[20_000] < 5 else "ABOVE TARGET"
        print(f"target < 5 s for 20,000 lines end to end: {best[20_000]:.2f} s ({verdict})")


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
