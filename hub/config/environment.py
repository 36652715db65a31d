"""Settings from the environment (pydantic-settings), read once per process and passed on.

``EnvironmentSettings`` is the base of every group of ``LEDGERHUB_*`` variables (``Settings``
here; the runtime's, the sender's and the API's knobs beside the code they tune): a field ``x``
is read from ``LEDGERHUB_X``, and a bad value is one ``ConfigError`` naming the variable.
Secrets (a DSN's password) are never logged: use ``redact``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlsplit, urlunsplit

import platformdirs
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from hub.errors import ConfigError

APP_ROLE = "ledgerhub_app"
"""The role the hub runs as: INSERT and SELECT on the log, nothing more (created by migrate)."""


class EnvironmentSettings(BaseSettings):
    """Base of a group of ``LEDGERHUB_*`` variables; an empty variable counts as unset."""

    model_config = SettingsConfigDict(env_prefix="LEDGERHUB_", extra="ignore", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value

    @classmethod
    def variable(cls, field: str) -> str:
        """The environment variable a field is read from."""
        alias = cls.model_fields[field].validation_alias
        return alias if isinstance(alias, str) else f"LEDGERHUB_{field.upper()}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        """The settings from ``environ`` (default: the process environment); ``ConfigError``
        naming the variable and the value when one is wrong."""
        try:
            if environ is None:
                return cls()
            values: dict[str, Any] = {}
            for field, info in cls.model_fields.items():
                text = environ.get(cls.variable(field))
                if text:
                    values[info.validation_alias if isinstance(info.validation_alias, str)
                           else field] = text  # fmt: skip
            return cls.model_validate(values)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = str(first["loc"][0]) if first["loc"] else ""
            named = next(
                (f for f, i in cls.model_fields.items() if field in (f, i.validation_alias)), field
            )
            message = str(first["msg"]).removeprefix("Value error, ")
            if message.startswith("Input should be "):
                message = "must be " + message.removeprefix("Input should be ")
                raise ConfigError(
                    f"{cls.variable(named)} {message}, got {first.get('input')!r}"
                ) from exc
            raise ConfigError(message if "LEDGERHUB_" in message
                              else f"{cls.variable(named)}: {message}") from exc  # fmt: skip


def _default_home() -> Path:
    return Path(platformdirs.user_data_dir("ledgerhub"))


class Settings(EnvironmentSettings):
    """Process-wide settings.

    - ``LEDGERHUB_DSN``: the PostgreSQL server to use (a role that may run migrations); unset
      means the embedded server under ``LEDGERHUB_HOME``.
    - ``LEDGERHUB_HOME``: where the embedded server keeps its data (default: the user data dir).
    - ``LEDGERHUB_CONFIG``: the TOML configuration file (``hub.config.file``).
    """

    dsn: str | None = None
    home: Path = Field(default_factory=_default_home)
    config_file: Path | None = Field(default=None, validation_alias="LEDGERHUB_CONFIG")

    @field_validator("home", mode="before")
    @classmethod
    def _unset_home_is_default(cls, value: object) -> object:
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


def redact(dsn: str) -> str:
    """``dsn`` with any password replaced by ``***``, safe to print or log."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
