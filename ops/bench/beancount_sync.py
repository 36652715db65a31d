"""Beancount sync throughput: the sender pushing N documents to a Beancount ledger file.

    python ops/bench/beancount_sync.py [--sizes 1000,10000] [--dsn postgresql://…]

Without --dsn (or LEDGERHUB_BENCH_DSN) it uses the embedded PostgreSQL under LEDGERHUB_HOME.
A fresh database is created for each size and dropped after. The documents are those of a
shop syncing per transaction (a sale with tax, its payment with the processor fee, a refund now
and then, a weekly payout), over a year, made in memory by a ``DocumentSource`` (the accounting
projection's port), so the figure is the sender and the target alone. For each size:

- first sync: every document is new (``create``), from an empty file: documents/s, the file's
  size and how many times it was written;
- a second sync with nothing changed (reads what the target holds; no call);
- a third sync after 1% of the documents changed (``update``) and 1% went (``void``), in a
  fresh process state (the file is parsed once, as a restarted worker would);
- ``bean-check`` on the file (it must accept it; its time is printed, not counted).

Target (issue 12): ≥ 500 documents/s at 10,000 documents, and the rate at 10,000 not collapsing
against 1,000.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from scratch import scratch_database

from connectors.beancount import BeancountTarget
from hub.config.books import DEFAULT_CHART
from hub.domain.documents import Document
from hub.store import EventStore
from hub.sync.sender import Sender

CHART = {a.code: a for a in DEFAULT_CHART}
TENANT = "default"


def documents(n: int) -> list[Document]:
    """``n`` balanced documents of a year of a shop's activity (USD, integer cents)."""
    docs: list[Document] = []
    start = date(2024, 1, 1)
    week: list[int] = []
    i = 0
    while len(docs) < n:
        day = start + timedelta(days=(i * 365) // max(n, 1))
        net = 1000 + (i * 7919) % 50_000
        tax = net * 8 // 100
        fee = (net + tax) * 29 // 1000 + 30
        order = f"shopify:acme/order:{1000 + i}"
        docs.append(
            Document(
                TENANT,
                "beancount",
                order,
                "invoice",
                day,
                f"Order #{1000 + i}",
                (("1100", "USD", net + tax), ("2100", "USD", -tax), ("4000", "USD", -net)),
                customer=f"cus_{i % 700}",
                order=order,
            )
        )
        docs.append(
            Document(
                TENANT,
                "beancount",
                f"stripe:acct/charge:ch_{i}",
                "payment",
                day,
                f"Payment for order #{1000 + i}",
                (
                    ("1100", "USD", -(net + tax)),
                    ("1200", "USD", net + tax - fee),
                    ("6000", "USD", fee),
                ),
                order=order,
            )
        )
        week.append(net + tax - fee)
        if i % 23 == 22:
            back = net // 2
            docs.append(
                Document(
                    TENANT,
                    "beancount",
                    f"stripe:acct/refund:re_{i}",
                    "refund",
                    day,
                    f'Refund "partial" for order #{1000 + i}',
                    (("1200", "USD", -back), ("4900", "USD", back)),
                )
            )
            week.append(-back)
        if i % 40 == 39:
            total = sum(week)
            week.clear()
            docs.append(
                Document(
                    TENANT,
                    "beancount",
                    f"stripe:acct/payout:po_{i}",
                    "transfer",
                    day,
                    "Stripe payout",
                    (("1000", "USD", total), ("1200", "USD", -total)),
                )
            )
        i += 1
    return docs[:n]


@dataclasses.dataclass
class Source:
    """A ``DocumentSource`` over a list in memory."""

    docs: list[Document]

    async def documents(self, conn: Any, tenant: str, target: str) -> list[Document]:
        return list(self.docs)

    async def last_positions(self, conn: Any, tenant: str, target: str) -> dict[str, int]:
        return {}


class Counted(BeancountTarget):
    """The Beancount target, counting its file writes."""

    writes = 0

    def _write(self, text: str) -> tuple[int, int, int]:
        Counted.writes += 1
        return super()._write(text)


async def timed_run(sender: Sender, target: BeancountTarget) -> tuple[float, Any]:
    started = time.perf_counter()
    run_id = await sender.run(TENANT, target)
    seconds = time.perf_counter() - started
    rows = await sender.projections.fetch("SELECT * FROM ledgerhub.sync_runs WHERE id = $1", run_id)
    return seconds, rows[0]


def bean_check(path: Path) -> float:
    tool = Path(sys.executable).with_name("bean-check")
    started = time.perf_counter()
    result = subprocess.run([str(tool), str(path)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"bean-check refused {path}:\n{result.stdout}{result.stderr}")
    return time.perf_counter() - started


async def one_size(server: str | None, n: int) -> float:
    docs = documents(n)
    async with scratch_database(server, f"beancount_{n}") as dsn:
        store = await EventStore.open(dsn)
        try:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "sync" / "default.beancount"
                source = Source(docs)
                sender = Sender(store, source)
                Counted.writes = 0
                seconds, run = await timed_run(sender, Counted(path, CHART))
                assert run["sent"] == n, dict(run)
                assert run["failed"] == 0, dict(run)
                rate = n / seconds
                print(
                    f"{n:>7,} documents  first sync   {seconds:7.2f} s  {rate:8.0f} documents/s"
                    f"  ({Counted.writes} file write(s), {path.stat().st_size / 1e6:.1f} MB)"
                )

                seconds, run = await timed_run(sender, Counted(path, CHART))
                assert run["sent"] == 0, dict(run)
                print(f"{n:>7,} documents  unchanged    {seconds:7.2f} s  (nothing sent)")

                step = 100
                changed = [
                    dataclasses.replace(d, description=d.description + " (amended)")
                    if k % step == 0
                    else d
                    for k, d in enumerate(docs)
                    if k % step != 1
                ]
                source.docs = changed
                Counted.writes = 0
                seconds, run = await timed_run(sender, Counted(path, CHART))
                moved = run["sent"]
                print(
                    f"{n:>7,} documents  1% changed,  {seconds:7.2f} s  {moved} sent "
                    f"(updates and voids; file parsed once, {Counted.writes} write(s))"
                )
                checked = bean_check(path)
                print(f"{n:>7,} documents  bean-check   {checked:7.2f} s  accepts the file")
        finally:
            await store.close()
    return rate


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--dsn", default=os.environ.get("LEDGERHUB_BENCH_DSN"))
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rates = {n: await one_size(args.dsn, n) for n in sizes}
    if len(rates) > 1:
        small, large = min(rates), max(rates)
        print(f"rate at {large:,} / rate at {small:,}: {rates[large] / rates[small]:.2f}")
    if 10_000 in rates:
        verdict = "ok" if rates[10_000] >= 500 else "BELOW TARGET"
        print(f"target ≥ 500 documents/s at 10,000: {rates[10_000]:.0f} ({verdict})")


if __name__ == "__main__":
    asyncio.run(main())
