"""``ledgerhub verify``: recompute the hash chain and name the first position where it breaks.

``--signatures`` also re-checks every stored webhook delivery against its connection's secret
(from ``LEDGERHUB_CONFIG``).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from hub.cli.context import open_store
from hub.cli.progress import progress
from hub.config import Settings, load
from hub.usecases.signatures import SignatureReport, verify_signatures
from hub.usecases.verify import verify_chain


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "verify", help="check the event log's hash chain and positions"
    )
    parser.add_argument(
        "--signatures",
        action="store_true",
        help="also re-verify each stored webhook delivery with its connection's secret",
    )
    parser.set_defaults(run=run)


async def run(args: argparse.Namespace) -> int:
    config = load(Settings.from_env()) if args.signatures else None
    async with await open_store() as store:
        with progress("verifying") as update:
            report = await verify_chain(store, on_progress=update)
        signatures = None
        if report.ok and config is not None:
            with progress("verifying signatures") as update:
                signatures = await verify_signatures(store, config, on_progress=update)
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
    return 0 if signatures is None else _report_signatures(signatures)


def _report_signatures(report: SignatureReport) -> int:
    """Print the re-verification's outcome; 1 if any stored delivery does not verify."""
    problems = report.failures + report.unverifiable
    if problems:
        first = problems[0]
        print(
            f"ledgerhub: delivery at position {first.position} ({first.source}) does not verify: "
            f"{first.reason} ({len(problems)} of {report.checked} deliveries fail)",
            file=sys.stderr,
        )
        return 1
    print(f"signatures verify: {report.checked} webhook deliveries")
    return 0
