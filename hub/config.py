"""Settings from the environment. Secrets (a DSN's password) are never logged: use ``redact``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import platformdirs

from hub.errors import ConfigError

APP_ROLE = "ledgerhub_app"
"""The role the hub runs as: INSERT and SELECT on the log, nothing more (created by migrate)."""


@dataclass(frozen=True)
class Settings:
    """Process-wide settings.

    - ``LEDGERHUB_DSN``: the PostgreSQL server to use (a role that may run migrations); unset
      means the embedded server under ``LEDGERHUB_HOME``.
    - ``LEDGERHUB_HOME``: where the embedded server keeps its data (default: the user data dir).
    - ``LEDGERHUB_CONFIG``: the TOML configuration file (tenants, connections).
    """

    dsn: str | None
    home: Path
    config_file: Path | None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        dsn = env.get("LEDGERHUB_DSN") or None
        if dsn is not None and not dsn.startswith(("postgres://", "postgresql://")):
            raise ConfigError(
                "LEDGERHUB_DSN must be a postgresql:// URL, got one starting "
                f"{dsn.split(':', 1)[0]!r}"
            )
        home = Path(env.get("LEDGERHUB_HOME") or platformdirs.user_data_dir("ledgerhub"))
        config = env.get("LEDGERHUB_CONFIG")
        return cls(dsn=dsn, home=home.expanduser(), config_file=Path(config) if config else None)


def redact(dsn: str) -> str:
    """``dsn`` with any password replaced by ``***``, safe to print or log."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
