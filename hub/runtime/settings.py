"""The projection runtime's knobs, from the environment (short values make tests fast)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from hub.errors import ConfigError

_MINIMUM = {"lease_ttl": 0.3, "batch_size": 1, "retry_attempts": 1, "retry_wait": 0}
"""Each knob's least value (others: 0.01)."""


class RuntimeSettings(BaseSettings):
    """How workers run projections (pydantic-settings: ``LEDGERHUB_<FIELD>`` variables).

    - ``LEDGERHUB_LEASE_TTL`` (seconds, default 10): a lease not renewed for this long may be
      taken over. Leases are renewed and free ones sought every third of it, so a dead worker's
      projections are taken over within ``4/3 * TTL`` (13.3 s by default).
    - ``LEDGERHUB_POLL_INTERVAL`` (seconds, default 5): how often an idle projection looks for
      new events when no ``NOTIFY`` woke it.
    - ``LEDGERHUB_NOTIFY`` (``1``/``0``, default 1): listen for ``NOTIFY`` at all.
    - ``LEDGERHUB_BATCH_SIZE`` (default 1000): events per transaction.
    - ``LEDGERHUB_RETRY_ATTEMPTS`` (default 5) and ``LEDGERHUB_RETRY_WAIT`` (seconds, default 0.5,
      doubling up to 30): a handler's ``RetriableError`` is retried this often before the event
      is parked.
    - ``LEDGERHUB_BACKOFF_MAX`` (seconds, default 30): the longest wait after a database error.
    """

    model_config = SettingsConfigDict(env_prefix="LEDGERHUB_", extra="ignore", frozen=True)

    lease_ttl: Annotated[float, Field(ge=0.3)] = 10.0
    poll_interval: Annotated[float, Field(ge=0.01)] = 5.0
    notify: bool = True
    batch_size: Annotated[int, Field(ge=1)] = 1000
    retry_attempts: Annotated[int, Field(ge=1)] = 5
    retry_wait: Annotated[float, Field(ge=0)] = 0.5
    backoff_max: Annotated[float, Field(ge=0.01)] = 30.0

    @field_validator("*", mode="before")
    @classmethod
    def _empty_is_default(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("notify", mode="before")
    @classmethod
    def _flag(cls, value: Any) -> Any:
        if isinstance(value, str):
            return value.strip().lower() not in {"0", "false", "no"}
        return value

    @field_validator("batch_size", "retry_attempts", mode="before")
    @classmethod
    def _whole(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return int(float(value))
            except ValueError:
                return value
        return value

    @property
    def renew_interval(self) -> float:
        """How often leases are renewed and free ones sought."""
        return self.lease_ttl / 3

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RuntimeSettings:
        """The settings from ``environ`` (default: the process environment); ``ConfigError``
        naming the variable when one is not a number or is too small."""
        try:
            if environ is None:
                return cls()
            values = {
                name: environ[f"LEDGERHUB_{name.upper()}"]
                for name in cls.model_fields
                if environ.get(f"LEDGERHUB_{name.upper()}")
            }
            return cls.model_validate(values)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = str(first["loc"][0])
            variable, given = f"LEDGERHUB_{field.upper()}", first.get("input")
            if first["type"].startswith("greater_than"):
                minimum = _MINIMUM.get(field, 0.01)
                raise ConfigError(f"{variable} must be at least {minimum}, got {given!r}") from exc
            raise ConfigError(f"{variable} must be a number, got {given!r}") from exc
