"""The target implementations the contract suite runs against, each with its own validator."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from connectors.beancount import BeancountTarget
from connectors.xero.target import AiohttpTransport, Tokens, XeroTarget
from hub.config.books import DEFAULT_CHART
from hub.spi.target import Target
from tests.accounting.fake_xero import FakeXero, serve

CHART = {a.code: a for a in DEFAULT_CHART}


def bean_check(path: Path) -> None:
    """Fail unless ``bean-check`` accepts the ledger file at ``path``."""
    tool = Path(sys.executable).with_name("bean-check")
    result = subprocess.run([str(tool), str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@dataclass
class Subject:
    """A target under test and a check that what it holds is valid for the real system."""

    target: Target
    validate: Callable[[], None]


@contextlib.asynccontextmanager
async def beancount(tmp: Path) -> AsyncIterator[Subject]:
    """A Beancount file target on a fresh file, validated by ``bean-check``."""
    path = tmp / "books" / "default.beancount"
    target = BeancountTarget(path, CHART)
    yield Subject(target, lambda: bean_check(path) if path.exists() else None)


BANKS = {c for c, a in CHART.items() if (a.role or "").startswith(("bank:", "clearing:"))}
"""The chart's accounts that are bank accounts in Xero (banks and processor clearing)."""


@contextlib.asynccontextmanager
async def xero_fake(tmp: Path, *, chart: bool = True) -> AsyncIterator[tuple[FakeXero, XeroTarget]]:
    """A fresh fake Xero (the default chart, its bank and clearing accounts as bank accounts)
    and a target on it: with the chart's roles (Xero's own document types) unless ``chart`` is
    false (every document a ManualJournal)."""
    refresh = tmp / "xero-refresh-token"
    refresh.write_text("first-refresh-token")
    fake = FakeXero(set(CHART), "first-refresh-token", "org-1", bank_accounts=BANKS)
    async with serve(fake), aiohttp.ClientSession() as session:
        transport = AiohttpTransport(session, timeout=5)
        tokens = Tokens(transport, "client", "secret", refresh, f"{fake.url}/connect/token")
        api = f"{fake.url}/api.xro/2.0"
        accounts = CHART if chart else None
        yield fake, XeroTarget(transport, tokens, "org-1", api=api, accounts=accounts)


@contextlib.asynccontextmanager
async def xero(tmp: Path) -> AsyncIterator[Subject]:
    """The Xero target (Xero's document types) against the local Xero-compatible server (each
    body checked against the spec by the server itself)."""
    async with xero_fake(tmp) as (_, target):
        yield Subject(target, lambda: None)


@contextlib.asynccontextmanager
async def xero_journals(tmp: Path) -> AsyncIterator[Subject]:
    """The Xero target without a chart: every document a ManualJournal."""
    async with xero_fake(tmp, chart=False) as (_, target):
        yield Subject(target, lambda: None)


FACTORIES: dict[str, Callable[[Path], contextlib.AbstractAsyncContextManager[Subject]]] = {
    "beancount": beancount,
    "xero": xero,
    "xero-journals": xero_journals,
}
"""Every target implementation: the contract suite is parametrized over these."""
