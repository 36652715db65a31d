"""The target a tenant's sync settings name, built for that tenant."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from hub.config import resolve_secret
from hub.config.books import TenantBooks
from hub.errors import ConfigError
from hub.spi.target import Target
from hub.sync.beancount import BeancountTarget
from hub.sync.settings import SyncSettings, XeroSettings
from hub.sync.xero import AiohttpTransport, Tokens, XeroTarget


def target_for(
    settings: SyncSettings,
    books: TenantBooks,
    home: Path,
    *,
    session: aiohttp.ClientSession | None = None,
    config_dir: Path | None = None,
) -> Target:
    """The tenant's target.

    Beancount writes ``settings.path`` (relative paths under ``home``), by default
    ``home/sync/<tenant>.beancount``. Xero calls its API through ``session`` (required for it),
    with secrets and the refresh-token file resolved relative to ``config_dir``.
    """
    if settings.target == "beancount":
        path = Path(settings.path) if settings.path else Path("sync") / f"{books.name}.beancount"
        return BeancountTarget(path if path.is_absolute() else home / path, books.accounts)
    if settings.target == "xero" and settings.xero is not None:
        if session is None:
            raise ConfigError("the xero target needs an HTTP session (open it with open_targets)")
        return _xero(settings.xero, books, session, config_dir)
    raise ConfigError(f"no target named {settings.target!r}")


def _xero(
    chosen: XeroSettings, books: TenantBooks, session: aiohttp.ClientSession, base: Path | None
) -> XeroTarget:
    where = f"tenants.{books.name}.sync"
    client_id = chosen.client_id
    if client_id.startswith(("env:", "file:")):
        client_id = _secret(f"{where}.client_id", client_id, base)
    secret = _secret(f"{where}.client_secret", chosen.client_secret, base)
    refresh = Path(chosen.refresh_token_file).expanduser()
    if base is not None and not refresh.is_absolute():
        refresh = base / refresh
    if not refresh.is_file():
        raise ConfigError(f"{where}.refresh_token_file: {refresh} does not exist")
    transport = AiohttpTransport(session, timeout=chosen.timeout)
    tokens = Tokens(transport, client_id, secret, refresh, token_url=chosen.token_url)
    return XeroTarget(
        transport, tokens, chosen.tenant_id, api=chosen.api_url, accounts=books.accounts
    )


def _secret(where: str, ref: str, base: Path | None) -> str:
    try:
        return resolve_secret(ref, base=base).decode()
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
