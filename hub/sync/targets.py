"""The target a tenant's sync settings name, built for that tenant."""

from __future__ import annotations

from pathlib import Path

from hub.books import TenantBooks
from hub.errors import ConfigError
from hub.sync.beancount import BeancountTarget
from hub.sync.target import Target
from projections.accounting.documents import SyncSettings


def target_for(settings: SyncSettings, books: TenantBooks, home: Path) -> Target:
    """The tenant's target: Beancount writes ``settings.path`` (relative paths under
    ``home``), by default ``home/sync/<tenant>.beancount``."""
    if settings.target == "beancount":
        path = Path(settings.path) if settings.path else Path("sync") / f"{books.name}.beancount"
        return BeancountTarget(path if path.is_absolute() else home / path, books.accounts)
    if settings.target == "xero":
        raise ConfigError(
            f"tenant {books.name!r}: the xero target (hub.sync.xero.XeroTarget) cannot be "
            "configured from the config file yet; use beancount"
        )
    raise ConfigError(f"no target named {settings.target!r}")
