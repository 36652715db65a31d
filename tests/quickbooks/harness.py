"""The QuickBooks target on the local QuickBooks server, and a config that syncs to it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

from connectors.quickbooks import AiohttpTransport, QuickBooksTarget, Tokens
from hub.config.books import DEFAULT_CHART
from tests.quickbooks.fake_qbo import FakeQuickBooks, chart_accounts, serve

CHART = {a.code: a for a in DEFAULT_CHART}
REALM = "9341452000000001"
SECRET_ENV = "LEDGERHUB_TEST_QBO_CLIENT_SECRET"
"""The environment variable a test config names for the QuickBooks client secret."""
TOKEN_FILE = "qbo-refresh-token"


def new_fake(*, numbered: bool = True, seed: int = 0) -> FakeQuickBooks:
    """A fresh fake company with the default chart (banks and clearing accounts as Bank
    accounts), the refresh token ``r0`` and the app ``client``/``secret``."""
    return FakeQuickBooks(chart_accounts(DEFAULT_CHART, numbered=numbered), "r0", REALM, seed=seed)


@contextlib.asynccontextmanager
async def qbo(
    tmp: Path,
    *,
    chart: bool = True,
    numbered: bool = True,
    call_timeout: float = 5,
    fake: FakeQuickBooks | None = None,
) -> AsyncIterator[tuple[FakeQuickBooks, QuickBooksTarget]]:
    """A fake QuickBooks company and a target on it: with the chart's roles (QuickBooks' own
    entities) unless ``chart`` is false (every document a JournalEntry)."""
    fake = fake or new_fake(numbered=numbered)
    refresh = tmp / TOKEN_FILE
    refresh.write_text(fake.refresh_token)
    async with serve(fake), aiohttp.ClientSession() as session:
        transport = AiohttpTransport(session, timeout=call_timeout)
        tokens = Tokens(
            transport, "client", "secret", refresh, f"{fake.url}/oauth2/v1/tokens/bearer"
        )
        target = QuickBooksTarget(
            transport, tokens, REALM, api=f"{fake.url}/v3", accounts=CHART if chart else None
        )
        yield fake, target


def write_config(path: Path, mode: str, url: str = "http://127.0.0.1:9", extra: str = "") -> None:
    """A config whose default tenant syncs to QuickBooks at ``url`` in ``mode``, the refresh
    token in ``qbo-refresh-token`` beside the file, the secret in ``SECRET_ENV``."""
    path.write_text(
        "[tenants.default]\n[tenants.default.sync]\n"
        f'target = "quickbooks"\nmode = "{mode}"\nrealm_id = "{REALM}"\n'
        f'client_id = "client"\nclient_secret = "env:{SECRET_ENV}"\n'
        f'refresh_token_file = "{TOKEN_FILE}"\n'
        f'api_url = "{url}/v3"\ntoken_url = "{url}/oauth2/v1/tokens/bearer"\ntimeout = 2\n'
        f"{extra}"
    )
