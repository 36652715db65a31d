"""Settings from the environment (pydantic-settings), read once per process and passed on.

Secrets (a DSN's password) are never logged: use ``redact``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import platformdirs
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from hub.errors import ConfigError

APP_ROLE = "ledgerhub_app"
"""The role the hub runs as: INSERT and SELECT on the log, nothing more (created by migrate)."""


def _default_home() -> Path:
    return Path(platformdirs.user_data_dir("ledgerhub"))


class Settings(BaseSettings):
    """Process-wide settings.

    - ``LEDGERHUB_DSN``: the PostgreSQL server to use (a role that may run migrations); unset
      means the embedded server under ``LEDGERHUB_HOME``.
    - ``LEDGERHUB_HOME``: where the embedded server keeps its data (default: the user data dir).
    - ``LEDGERHUB_CONFIG``: the TOML configuration file (``hub.config.file``).
    """

    model_config = SettingsConfigDict(env_prefix="LEDGERHUB_", extra="ignore", frozen=True)

    dsn: str | None = None
    home: Path = Field(default_factory=_default_home)
    config_file: Path | None = Field(default=None, validation_alias="LEDGERHUB_CONFIG")

    @field_validator("dsn", "config_file", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("home", mode="before")
    @classmethod
    def _empty_home_is_default(cls, value: object) -> object:
        return _default_home() if value in ("", None) else value

    @field_validator("dsn")
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("postgres://", "postgresql://")):
            raise ValueError(
                "LEDGERHUB_DSN must be a postgresql:// URL, got one starting "
                f"{value.split(':', 1)[0]!r}"
            )
        return value

    @field_validator("home")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings from ``environ`` (default: the process environment); ``ConfigError``
        with the variable's own message when one is wrong."""
        try:
            if environ is None:
                return cls()
            values = {
                "dsn": environ.get("LEDGERHUB_DSN"),
                "home": environ.get("LEDGERHUB_HOME"),
                "LEDGERHUB_CONFIG": environ.get("LEDGERHUB_CONFIG"),
            }
            return cls.model_validate({k: v for k, v in values.items() if v is not None})
        except ValidationError as exc:
            first = exc.errors()[0]
            raise ConfigError(str(first["msg"]).removeprefix("Value error, ")) from exc


def redact(dsn: str) -> str:
    """``dsn`` with any password replaced by ``***``, safe to print or log."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
