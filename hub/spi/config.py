"""The configuration types a plugin reads (``Projection.config``, ``TargetEnvironment.books``).

Re-exported from ``hub.config`` and ``hub.sync.settings``, where they are defined and loaded;
a plugin imports them from here.
"""

from hub.config.books import Account, BooksConfig, ConnectionBooks, Rule, TenantBooks
from hub.config.file import Config, ConnectionConfig, TenantConfig
from hub.sync.settings import SyncSettings

__all__ = [
    "Account", "BooksConfig", "Config", "ConnectionBooks", "ConnectionConfig", "Rule",
    "SyncSettings", "TenantBooks", "TenantConfig",
]  # fmt: skip
