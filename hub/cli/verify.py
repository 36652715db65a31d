"""``ledgerhub verify``: recompute the hash chain and name the first position where it breaks."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from hub.app.verify import verify_chain
from hub.cli.context import open_store
from hub.cli.progress import progress


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "verify", help="check the event log's hash chain and positions"
    )
    parser.set_defaults(run=run)


async def run(args: argparse.Namespace) -> int:
    async with await open_store() as store:
        with progress("verifying") as update:
            report = await verify_chain(store, on_progress=update)
    if not report.ok:
        print(
            f"ledgerhub: chain broken at position {report.broken_at}: {report.reason}",
            file=sys.stderr,
        )
        return 1
    if report.checked == 0:
        print("log verifies: 0 events (the log is empty)")
    else:
        print(
            f"log verifies: {report.checked} events, positions 1..{report.checked} contiguous, "
            f"head hash {report.head_hash.hex()}"
        )
    return 0
