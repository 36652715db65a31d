"""``ledgerhub verify``: recompute the hash chain and name the first position where it breaks.

``--signatures`` also re-checks every stored webhook delivery against its connection's secret
(from ``LEDGERHUB_CONFIG``). ``--expect-head [POSITION:]HASH`` also checks the log against a head
hash kept elsewhere (as an earlier ``verify`` printed it), e.g. after restoring a backup: a log
whose chain is intact but is not that log (an older backup, another database) fails it.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Any

from hub.cli.context import open_store
from hub.cli.progress import progress
from hub.cli.projections import print_json
from hub.config import Settings, load
from hub.usecases.signatures import SignatureReport, verify_signatures
from hub.usecases.verify import ChainReport, ExpectedHead, verify_chain


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "verify", help="check the event log's hash chain and positions"
    )
    parser.add_argument(
        "--signatures",
        action="store_true",
        help="also re-verify each stored webhook delivery with its connection's secret",
    )
    parser.add_argument(
        "--expect-head",
        metavar="[POSITION:]HASH",
        type=_expected_head,
        help="fail unless the head hash (or the hash at POSITION, for a log that has grown "
        "since) is HASH, as an earlier `ledgerhub verify` printed it",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the outcome as JSON (exit status as without)"
    )
    parser.set_defaults(run=run)


def _expected_head(text: str) -> ExpectedHead:
    try:
        return ExpectedHead.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


async def run(args: argparse.Namespace) -> int:
    config = load(Settings.from_env()) if args.signatures else None
    expected: ExpectedHead | None = args.expect_head
    at = expected.position if expected is not None else None
    async with await open_store() as store:
        with progress("verifying") as update:
            report = await verify_chain(store, on_progress=update, hash_at=at)
        signatures = None
        if report.ok and config is not None:
            with progress("verifying signatures") as update:
                signatures = await verify_signatures(store, config, on_progress=update)
    if args.json:
        return _print_json(report, expected, signatures)
    if not report.ok:
        print(
            f"ledgerhub: chain broken at position {report.broken_at}: {report.reason}",
            file=sys.stderr,
        )
        return 1
    mismatch = expected.check(report) if expected is not None else None
    if mismatch is not None:
        print(f"ledgerhub: the log is not the expected one: {mismatch}", file=sys.stderr)
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


def _print_json(
    report: ChainReport, expected: ExpectedHead | None, signatures: SignatureReport | None
) -> int:
    """The outcome as one JSON document on stdout (``ok`` false: also the one-line reason on
    stderr, exit 1)."""
    mismatch = expected.check(report) if expected is not None and report.ok else None
    failing = [] if signatures is None else signatures.failures + signatures.unverifiable
    reason = None
    if not report.ok:
        reason = f"chain broken at position {report.broken_at}: {report.reason}"
    elif mismatch is not None:
        reason = f"the log is not the expected one: {mismatch}"
    elif failing:
        reason = f"{len(failing)} of {signatures.checked if signatures else 0} deliveries fail"
    print_json(
        {
            "ok": reason is None,
            "checked": report.checked,
            "head_hash": report.head_hash.hex() if report.ok and report.checked else None,
            "broken_at": report.broken_at,
            "reason": report.reason,
            "expected_head": None if expected is None else {"ok": mismatch is None and report.ok,
                                                            "detail": mismatch},
            "signatures": None if signatures is None else {
                "checked": signatures.checked,
                "failures": [dataclasses.asdict(f) for f in signatures.failures],
                "unverifiable": [dataclasses.asdict(f) for f in signatures.unverifiable],
            },
        }
    )  # fmt: skip
    if reason is not None:
        print(f"ledgerhub: {reason}", file=sys.stderr)
        return 1
    return 0
