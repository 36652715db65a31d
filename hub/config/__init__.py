"""Configuration: the environment (``environment``) and the TOML file (``file``, with the
books' part in ``books``), each loaded and validated once per process and passed on.

``Settings.from_env()`` reads ``LEDGERHUB_*`` variables; ``load(settings)`` reads the file
``LEDGERHUB_CONFIG`` names into one ``Config`` (tenants, connections, books, each tenant's sync
target and the sections installed projections declare), reporting a mistake as ``FILE:LINE``.
"""

# environment first: hub.store imports APP_ROLE and Settings while the rest of this package loads
from hub.config.environment import APP_ROLE, Settings, redact
from hub.config.file import (
    Config,
    ConnectionConfig,
    TenantConfig,
    load,
    load_config,
    reload,
    resolve_secret,
)

__all__ = [
    "APP_ROLE", "Config", "ConnectionConfig", "Settings", "TenantConfig", "load", "load_config",
    "redact", "reload", "resolve_secret",
]  # fmt: skip
