"""Beancount: the accounting target that writes each tenant's documents to a Beancount ledger
file (``bean-check`` and Fava read it as it is); the demo's default.

- ``BeancountPlugin`` (this module): the ``ledgerhub.targets`` entry point ``beancount``.
- ``settings``: ``BeancountSettings``, the keys of the tenant's ``sync`` table (``path``).
- ``target``: ``BeancountTarget``, the file itself: beancount's own entries written by its
  printer, one transaction per document (its keys and content hash as metadata), rewritten
  atomically once per sync run.

::

    [tenants.default]
    sync = { target = "beancount", mode = "per_payout", path = "books/default.beancount" }
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from connectors.beancount.settings import BeancountSettings
from connectors.beancount.target import BeancountTarget, account_name
from hub.spi.target import Target, TargetEnvironment, TargetPlugin, TargetSettings

__all__ = ["BeancountPlugin", "BeancountSettings", "BeancountTarget", "account_name"]


class BeancountPlugin(TargetPlugin):
    """A Beancount ledger file per tenant."""

    name: ClassVar[str] = "beancount"
    settings: ClassVar[type[TargetSettings]] = BeancountSettings

    def open(self, settings: BeancountSettings, env: TargetEnvironment) -> Target:
        """The tenant's ledger file: ``settings.path`` (relative paths under ``env.home``), by
        default ``<home>/sync/<tenant>.beancount``."""
        path = Path(settings.path or Path("sync") / f"{env.books.name}.beancount")
        where = path if path.is_absolute() else env.home / path
        return BeancountTarget(where, env.books.accounts, title=f"{env.books.name} (ledgerhub)")
