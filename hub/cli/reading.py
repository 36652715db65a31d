"""What the report commands (``ledger``, ``reconcile``, ``export``) share: the projection that
keeps each report (found through ``hub.spi.registry``, never imported), a connection to read its
views with, every page of a paged report, and amounts for people.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date
from typing import Any, cast

import asyncpg

from hub.cli import usage
from hub.cli.projections import open_projections
from hub.domain.events import DEFAULT_TENANT
from hub.domain.money import to_major
from hub.errors import LedgerhubError
from hub.spi.registry import provider, trial_balance_source
from hub.spi.reports import JournalSource, ReconciliationSource, TrialBalanceSource
from hub.store.pool import Connection

PAGE = 1000
"""Rows asked for at a time when a command reads a whole report."""


def journal_source() -> JournalSource:
    """The installed projection that keeps the journal (the ledger)."""
    return cast(JournalSource, provider(JournalSource, "the journal"))


def reconciliation_source() -> ReconciliationSource:
    """The installed projection that reconciles payouts (reconciliation)."""
    return cast(ReconciliationSource, provider(ReconciliationSource, "reconciliation rows"))


def books_source() -> TrialBalanceSource:
    """The installed projection that keeps the trial balance (the ledger)."""
    return trial_balance_source()


@contextlib.asynccontextmanager
async def reading(what: str) -> AsyncIterator[Connection]:
    """A connection to read ``what``'s views with (the hub's role); one ``LedgerhubError``
    line while no worker has built them yet."""
    async with open_projections() as (_, store), store.pool.acquire() as conn:
        try:
            yield conn
        except (asyncpg.UndefinedTableError, asyncpg.UndefinedFunctionError) as exc:
            raise LedgerhubError(
                f"{what} has not been built yet: run `ledgerhub worker` (or `serve`) until it "
                "has caught up"
            ) from exc


async def every_page(
    read: Callable[[str | None], Awaitable[dict[str, Any]]],
    name: str,
    after: str | None = None,
) -> list[dict[str, Any]]:
    """The rows of every page ``read(after)`` answers (``{name: rows, "next"}``), from the
    page after ``after`` (default: the first)."""
    rows: list[dict[str, Any]] = []
    while True:
        page = await read(after)
        rows.extend(page[name])
        after = page["next"]
        if after is None:
            return rows


def add_tenant(parser: argparse.ArgumentParser) -> None:
    """``--tenant`` (default ``default``)."""
    parser.add_argument(
        "--tenant",
        default=DEFAULT_TENANT,
        type=usage.name("--tenant"),
        help="whose books (default: %(default)s)",
    )


def day(what: str) -> Callable[[str], date]:
    """A ``YYYY-MM-DD`` argument (``what`` names it in the message)."""

    def convert(text: str) -> date:
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from None

    convert.__name__ = what
    return convert


def amount(minor: int | None, currency: str) -> str | None:
    """Minor units as a person reads them, with the currency's decimals (``1234`` USD →
    ``12.34``); None stays None."""
    return None if minor is None else f"{to_major(minor, currency):,}"
