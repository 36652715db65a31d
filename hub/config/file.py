"""The TOML configuration named by ``LEDGERHUB_CONFIG``, loaded once into one ``Config``.

``Config`` holds the tenants and connections as written (``TenantConfig``,
``ConnectionConfig``), and what is derived from them when the file is loaded, each validated
then: the books (chart of accounts, bank rules, connection mappings: ``hub.config.books``), each
tenant's sync target and mode (validated by the target plugin's own settings model:
``hub.sync.settings``) and the per-tenant sections installed projections declare
(``Projection.config_section``/``config_model``, e.g. ``[tenants.T.reconciliation]``). A
mistake anywhere is one ``ConfigError`` reading ``FILE:LINE: key.path: what is wrong``.

Secrets are written as ``env:NAME`` or ``file:PATH`` (a relative path is relative to the config
file) and webhook secrets and API credentials (``api_key``; Plaid's ``client_id``, ``secret``,
``access_token``) are resolved when the file is loaded, so a missing secret is found at start,
not at the first delivery or pull; a command that uses one connection loads the file with
``secrets=False`` and resolves only that connection's (``ConnectionConfig.resolve``). An
``api_url`` must be https, or http to this machine only. Keys the models do not declare are
refused.
"""

from __future__ import annotations

import functools
import os
import re
import tomllib
from collections.abc import Callable, Collection
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretBytes,
    ValidationError,
    field_validator,
    model_validator,
)

from hub.config.environment import Settings
from hub.domain.events import DEFAULT_TENANT
from hub.domain.toml_lines import line_of
from hub.errors import ConfigError
from hub.spi.target import safe_url

if TYPE_CHECKING:
    from hub.config.books import BooksConfig
    from hub.spi.projection import Projection
    from hub.sync.settings import SyncSettings

Section = TypeVar("Section", bound=BaseModel)

_SECRET_REF = re.compile(r"^(env|file):(.+)$")


class TenantConfig(BaseModel):
    """``[tenants.NAME]``: one business's books."""

    model_config = ConfigDict(extra="allow", frozen=True)
    """Keys besides these are projection sections (``Projection.config_section``), checked by
    ``load_config`` against the installed projections; any other key is refused there."""

    timezone: str = "UTC"
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    sync: dict[str, Any] | None = None
    ledger: dict[str, Any] | None = None
    """The chart of accounts and bank rules (validated by ``hub.config.books``)."""

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


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration_seconds(value: object) -> float:
    """A duration written ``<n>s|m|h|d`` (``15m``, ``1d``) in seconds; ``ValueError`` else."""
    match = _DURATION.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(
            f"a duration is written <n>s, <n>m, <n>h or <n>d (e.g. 15m), got {value!r}"
        )
    seconds = float(match[1]) * _UNIT_SECONDS[match[2]]
    if seconds <= 0:
        raise ValueError(f"a duration must be longer than zero, got {value!r}")
    return seconds


class PullSchedule(BaseModel):
    """A connection's ``pull = { every, since }``: how often workers pull it, and where a
    stream that was never pulled starts (YYYY-MM-DD; without it the connector's default)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    every: Annotated[float, BeforeValidator(duration_seconds)]
    """Seconds between scheduled pulls (written ``15m``, ``1d``, …)."""
    since: date | None = None


class ConnectionHealth(BaseModel):
    """A connection's ``health = { check, stale_after }``: whether workers check it, and how old
    its newest event (a push-only source's last webhook, a bank's newest statement line) may be
    before the check fails (``<n>s|m|h|d``; without it the connector's default)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    check: bool = True
    stale_after: Annotated[float | None, BeforeValidator(duration_seconds)] = None


class HealthSettings(BaseModel):
    """``[health]``: how often workers check each connection (``every``, default 15 minutes;
    ``LEDGERHUB_HEALTH_EVERY`` seconds overrides it) and after how long a connection still
    failing is alerted again (``remind_after``, default 4 hours)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    every: Annotated[float, BeforeValidator(duration_seconds)] = 900.0
    remind_after: Annotated[float, BeforeValidator(duration_seconds)] = 14400.0


class AlertsSettings(BaseModel):
    """``[alerts]``: ``webhook_url``, where alerts are POSTed as Slack-compatible JSON, written
    ``env:NAME`` or ``file:PATH`` (the URL carries a token) and resolved at load; none: alerts
    are log lines only."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    webhook_url: str | None = Field(default=None, pattern=_SECRET_REF.pattern)

    _url: SecretBytes | None = PrivateAttr(default=None)
    _base: Path | None = PrivateAttr(default=None)
    """The config file's folder (a relative ``file:`` is relative to it)."""

    def webhook(self) -> str | None:
        """The resolved webhook URL (None: none configured). One not resolved at load (a
        section built in code, a file loaded without secrets) is resolved now (``ConfigError``
        naming what is missing or wrong)."""
        if self.webhook_url is None:
            return None
        if self._url is None:
            self._url = SecretBytes(_webhook(resolve_secret(self.webhook_url, base=self._base)))
        return self._url.get_secret_value().decode()


def _webhook(value: bytes) -> bytes:
    """``value`` when it is a URL the hub may POST alerts to, else ``ConfigError``."""
    if not safe_url(value.decode(errors="replace")):
        raise ConfigError(
            "the alert webhook must be https://…, or http:// to this machine only (localhost)"
        )
    return value


def _api_url(value: str | None) -> str | None:
    if value is not None and not safe_url(value):
        raise ValueError("api_url must be https://…, or http:// to this machine only (localhost)")
    return value


class ConnectionConfig(BaseModel):
    """``[[connections]]``: one account at one spoke; ``id`` is its events' ``source``."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    id: str = Field(pattern=r"^[a-z0-9_]+:[A-Za-z0-9_.\-]+$")
    connector: str = Field(pattern=r"^[a-z0-9_]+$")
    tenant: str = DEFAULT_TENANT
    webhook_secret: str | None = Field(default=None, pattern=_SECRET_REF.pattern)
    notification_url: str | None = None
    """The URL the provider signs (Square): set it when the hub sits behind a proxy."""
    ledger_account: str | None = None
    payout_account: str | None = None
    mapping: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Field mapping overrides per kind of fact (validated by ``hub.config.books``)."""
    api_key: str | None = Field(default=None, pattern=_SECRET_REF.pattern)
    """The spoke's API key for pulls (a Stripe restricted key), ``env:``/``file:`` only."""
    api_url: Annotated[str | None, BeforeValidator(_api_url)] = None
    """The API's base URL instead of the connector's production one (a local fake)."""
    pull: PullSchedule | None = None
    client_id: str | None = Field(default=None, pattern=_SECRET_REF.pattern)
    """Plaid's client id (``env:``/``file:``)."""
    plaid_secret: str | None = Field(default=None, pattern=_SECRET_REF.pattern, alias="secret")
    """Plaid's secret, written ``secret = "env:…"`` (``env:``/``file:``)."""
    access_token: str | None = Field(default=None, pattern=_SECRET_REF.pattern)
    """Plaid's access token of the Item (``env:``/``file:``)."""
    accounts: dict[str, str] = Field(default_factory=dict)
    """Plaid account_id → the bank account name its lines belong to."""
    health: ConnectionHealth = Field(default_factory=ConnectionHealth)
    """Whether workers check the connection's health, and its staleness limit."""

    _secret: SecretBytes | None = PrivateAttr(default=None)
    _credentials: dict[str, SecretBytes] | None = PrivateAttr(default=None)
    _pending: Callable[[ConnectionConfig], None] | None = PrivateAttr(default=None)
    """What resolves this connection's secrets, until it has (a file loaded lazily)."""

    @model_validator(mode="after")
    def _id_names_connector(self) -> ConnectionConfig:
        if self.id.split(":", 1)[0] != self.connector:
            raise ValueError(f"id {self.id!r} must start with its connector, {self.connector!r}:")
        return self

    @property
    def name(self) -> str:
        """The part of ``id`` after the connector: ``acct_demo`` in ``stripe:acct_demo``."""
        return self.id.split(":", 1)[1]

    def resolve(self) -> None:
        """Resolve the secrets the connection names, if not yet done (``ConfigError`` with
        the file's line naming one that is missing)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            try:
                pending(self)
            except ConfigError:
                self._pending = pending  # asked again, it fails again
                raise

    def secret(self) -> bytes | None:
        """The resolved webhook secret, or None when the connection has none."""
        self.resolve()
        return None if self._secret is None else self._secret.get_secret_value()

    def credential_refs(self) -> dict[str, str]:
        """The API credentials the connection names, by TOML key (``env:…``/``file:…``)."""
        refs = {
            "api_key": self.api_key,
            "client_id": self.client_id,
            "secret": self.plaid_secret,
            "access_token": self.access_token,
        }
        return {key: ref for key, ref in refs.items() if ref is not None}

    def credentials(self) -> dict[str, bytes]:
        """The resolved API credentials by TOML key (resolved at load; a connection built in
        code resolves them now, ``ConfigError`` naming what is missing)."""
        self.resolve()
        if self._credentials is None:
            self._credentials = {
                key: SecretBytes(resolve_secret(ref)) for key, ref in self.credential_refs().items()
            }
        return {key: value.get_secret_value() for key, value in self._credentials.items()}


class Config(BaseModel):
    """The whole configuration: the file as written, and what was derived from it at load."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenants: dict[str, TenantConfig] = Field(default_factory=dict)
    connections: list[ConnectionConfig] = Field(default_factory=list)
    health: HealthSettings = Field(default_factory=HealthSettings)
    alerts: AlertsSettings = Field(default_factory=AlertsSettings)

    _path: Path | None = PrivateAttr(default=None)
    _books: BooksConfig | None = PrivateAttr(default=None)
    _sync: dict[str, SyncSettings] = PrivateAttr(default_factory=dict)
    _sections: dict[tuple[str, str], BaseModel] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> Config:
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

    @property
    def path(self) -> Path | None:
        """The file this was loaded from (None: no file, every default)."""
        return self._path

    @property
    def books(self) -> BooksConfig:
        """Every tenant's chart and rules and every connection's compiled mapping."""
        if self._books is None:  # a Config built in code rather than loaded: the defaults
            from hub.config.books import BooksConfig, mappers

            self._books = BooksConfig(mappers=mappers())
        return self._books

    def sync_for(self, tenant: str) -> SyncSettings | None:
        """Where and how ``tenant``'s documents are synced (None: nowhere)."""
        if tenant in self._sync or self._path is not None:
            return self._sync.get(tenant)
        from hub.sync.settings import sync_settings  # a Config built in code

        return sync_settings(tenant, self.tenant(tenant).sync)

    def section(self, name: str, tenant: str, model: type[Section]) -> Section:
        """The tenant's ``[tenants.T.<name>]`` section as ``model`` (its defaults when the file
        has none). Loaded configs validated it at load; one built in code validates now."""
        found = self._sections.get((name, tenant))
        if isinstance(found, model):
            return found
        raw = (self.tenant(tenant).model_extra or {}).get(name)
        return model.model_validate(raw or {})


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


def _resolve_connection(path: Path, text: str, index: int, connection: ConnectionConfig) -> None:
    """Resolve the secrets ``connection`` (``connections[index]`` of the file at ``path``)
    names; ``ConfigError`` reading ``FILE:LINE: connections.N.KEY: what is missing``."""
    if connection.webhook_secret is not None:
        try:
            value = resolve_secret(connection.webhook_secret, base=path.parent)
        except ConfigError as exc:
            line = line_of(text, ("connections", index, "webhook_secret"))
            raise ConfigError(f"{path}:{line}: connections.{index}.webhook_secret: {exc}") from exc
        connection._secret = SecretBytes(value)
    resolved: dict[str, SecretBytes] = {}
    for key, ref in connection.credential_refs().items():
        try:
            resolved[key] = SecretBytes(resolve_secret(ref, base=path.parent))
        except ConfigError as exc:
            line = line_of(text, ("connections", index, key))
            raise ConfigError(f"{path}:{line}: connections.{index}.{key}: {exc}") from exc
    connection._credentials = resolved


def load_config(
    path: Path, projections: Collection[type[Projection]] | None = None, *, secrets: bool = True
) -> Config:
    """Read and validate the config file at ``path``, its secrets, books, sync targets and the
    sections of ``projections`` (default: every installed one), as one ``Config``.

    With ``secrets=False`` (a command that uses one connection, or none) no secret is read
    now: each connection resolves its own when first asked (``ConnectionConfig.resolve``), so
    another connection's missing secret does not stop the command; ``serve`` and ``worker``
    load with every secret, so a missing one stops them at start."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc.strerror}") from exc
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the file"
        line = line_of(text, tuple(first["loc"]))
        raise ConfigError(f"{path}:{line}: {where}: {first['msg']}") from exc
    config._path = path
    for index, connection in enumerate(config.connections):
        connection._pending = functools.partial(_resolve_connection, path, text, index)
    if secrets:
        for connection in config.connections:
            connection.resolve()
    config.alerts._base = path.parent
    if secrets and config.alerts.webhook_url is not None:
        try:
            url = _webhook(resolve_secret(config.alerts.webhook_url, base=path.parent))
        except ConfigError as exc:
            line = line_of(text, ("alerts", "webhook_url"))
            raise ConfigError(f"{path}:{line}: alerts.webhook_url: {exc}") from exc
        config.alerts._url = SecretBytes(url)
    from hub.config.books import books_from_toml
    from hub.sync.settings import sync_settings

    config._books = books_from_toml(path, text, raw)
    for name, tenant in config.tenants.items():
        try:
            chosen = sync_settings(name, tenant.sync)
        except ConfigError as exc:
            raise ConfigError(f"{path}:{line_of(text, ('tenants', name, 'sync'))}: {exc}") from exc
        if chosen is not None:
            config._sync[name] = chosen
    config._sections.update(_sections(path, text, config, projections))
    return config


def _sections(
    path: Path, text: str, config: Config, projections: Collection[type[Projection]] | None
) -> dict[tuple[str, str], BaseModel]:
    """Each tenant's projection sections, validated by the projection that declares them."""
    if projections is None:
        from hub.spi.registry import discover

        projections = list(discover().values())
    models: dict[str, type[BaseModel]] = {}
    for projection in projections:
        if projection.config_section is not None and projection.config_model is not None:
            models[projection.config_section] = projection.config_model
    found: dict[tuple[str, str], BaseModel] = {}
    for tenant, settings in config.tenants.items():
        for key, value in (settings.model_extra or {}).items():
            where: tuple[str | int, ...] = ("tenants", tenant, key)
            model = models.get(key)
            if model is None:
                known = ", ".join(sorted(models)) or "none installed"
                raise ConfigError(
                    f"{path}:{line_of(text, where)}: {'.'.join(map(str, where))}: unknown key "
                    f"(projection sections: {known})"
                )
            try:
                found[(key, tenant)] = model.model_validate(value)
            except ValidationError as exc:
                first = exc.errors()[0]
                loc = (*where, *first["loc"])
                raise ConfigError(
                    f"{path}:{line_of(text, loc)}: {'.'.join(map(str, loc))}: {first['msg']}"
                ) from exc
    return found


def load(settings: Settings, *, secrets: bool = True) -> Config:
    """The config file ``settings.config_file`` names (``hub.config.Settings``), or an empty
    ``Config`` (every default) when it names none; ``secrets`` as for ``load_config``."""
    path: Path | None = settings.config_file
    return Config() if path is None else load_config(path, secrets=secrets)


def reload(config: Config) -> Config:
    """``config`` read again from its file (for a rebuild after the file changed)."""
    return config if config.path is None else load_config(config.path)
