"""The TOML configuration named by ``LEDGERHUB_CONFIG``: tenants and connections.

A mistake is reported at start as ``FILE:LINE: what is wrong``. Secrets are written as
``env:NAME`` or ``file:PATH`` (a relative path is relative to the config file) and are resolved
when the file is loaded, so a missing secret is found at start, not at the first delivery.
Extend the models here (extra keys are refused, so every accepted key is declared).
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretBytes,
    ValidationError,
    field_validator,
    model_validator,
)

from hub.domain.events import DEFAULT_TENANT
from hub.domain.toml_lines import line_of
from hub.errors import ConfigError

_SECRET_REF = re.compile(r"^(env|file):(.+)$")


class TenantConfig(BaseModel):
    """``[tenants.NAME]``: one business's books."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: str = "UTC"
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    sync: dict[str, Any] | None = None
    ledger: dict[str, Any] | None = None
    """The chart of accounts and bank rules (validated by ``hub.books``)."""
    reconciliation: dict[str, Any] | None = None
    """Payout matching rules (validated by ``projections.reconciliation.settings``)."""

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @property
    def zone(self) -> ZoneInfo:
        """The tenant's time zone, for business dates."""
        return ZoneInfo(self.timezone)


class ConnectionConfig(BaseModel):
    """``[[connections]]``: one account at one spoke; ``id`` is its events' ``source``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9_]+:[A-Za-z0-9_.\-]+$")
    connector: str = Field(pattern=r"^[a-z0-9_]+$")
    tenant: str = DEFAULT_TENANT
    webhook_secret: str | None = Field(default=None, pattern=_SECRET_REF.pattern)
    notification_url: str | None = None
    """The URL the provider signs (Square): set it when the hub sits behind a proxy."""
    ledger_account: str | None = None
    payout_account: str | None = None
    mapping: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Field mapping overrides per kind of fact (validated by ``hub.books``)."""

    _secret: SecretBytes | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _id_names_connector(self) -> ConnectionConfig:
        if self.id.split(":", 1)[0] != self.connector:
            raise ValueError(f"id {self.id!r} must start with its connector, {self.connector!r}:")
        return self

    @property
    def name(self) -> str:
        """The part of ``id`` after the connector: ``acct_demo`` in ``stripe:acct_demo``."""
        return self.id.split(":", 1)[1]

    def secret(self) -> bytes | None:
        """The resolved webhook secret, or None when the connection has none."""
        return None if self._secret is None else self._secret.get_secret_value()


class HubConfig(BaseModel):
    """The whole configuration file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenants: dict[str, TenantConfig] = Field(default_factory=dict)
    connections: list[ConnectionConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> HubConfig:
        seen: set[str] = set()
        for connection in self.connections:
            if connection.id in seen:
                raise ValueError(f"connection {connection.id!r} is declared twice")
            seen.add(connection.id)
            if connection.tenant not in self.tenants and connection.tenant != DEFAULT_TENANT:
                raise ValueError(
                    f"connection {connection.id!r} names tenant {connection.tenant!r}, "
                    "which has no [tenants] table"
                )
        return self

    def connection(self, connection_id: str) -> ConnectionConfig | None:
        """The connection with this id, or None."""
        return next((c for c in self.connections if c.id == connection_id), None)

    def tenant(self, name: str) -> TenantConfig:
        """The tenant's settings (defaults for a tenant the file does not declare)."""
        return self.tenants.get(name) or TenantConfig()


def resolve_secret(ref: str, *, base: Path | None = None) -> bytes:
    """The value of ``env:NAME`` or ``file:PATH``; ``ConfigError`` naming what is missing."""
    match = _SECRET_REF.match(ref)
    if match is None:
        raise ConfigError(f"a secret must be written env:NAME or file:PATH, got {ref[:4]!r}…")
    kind, target = match[1], match[2]
    if kind == "env":
        value = os.environ.get(target)
        if not value:
            raise ConfigError(f"environment variable {target} (a secret) is not set")
        return value.encode()
    path = Path(target).expanduser()
    if base is not None and not path.is_absolute():
        path = base / path
    try:
        data = path.read_bytes().strip()
    except OSError as exc:
        raise ConfigError(f"secret file {path} cannot be read: {exc.strerror}") from exc
    if not data:
        raise ConfigError(f"secret file {path} is empty")
    return data


def load_config(path: Path) -> HubConfig:
    """Read, validate and resolve the secrets of the config file at ``path``."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc.strerror}") from exc
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    try:
        config = HubConfig.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the file"
        line = line_of(text, tuple(first["loc"]))
        raise ConfigError(f"{path}:{line}: {where}: {first['msg']}") from exc
    for index, connection in enumerate(config.connections):
        if connection.webhook_secret is None:
            continue
        try:
            value = resolve_secret(connection.webhook_secret, base=path.parent)
        except ConfigError as exc:
            line = line_of(text, ("connections", index, "webhook_secret"))
            raise ConfigError(f"{path}:{line}: connections.{index}.webhook_secret: {exc}") from exc
        connection._secret = SecretBytes(value)
    from hub.books import books_from_toml  # the books need the connector registry
    from hub.sync.settings import sync_settings

    books_from_toml(path, text, raw)
    for name, tenant in config.tenants.items():
        try:
            sync_settings(name, tenant.sync)
        except ConfigError as exc:
            raise ConfigError(f"{path}:{line_of(text, ('tenants', name, 'sync'))}: {exc}") from exc
    return config


def load_from_env(config_file: Path | None) -> HubConfig:
    """The config at ``config_file`` (``Settings.config_file``), or an empty one when unset."""
    return HubConfig() if config_file is None else load_config(config_file)
