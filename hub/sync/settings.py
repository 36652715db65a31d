"""A tenant's ``sync`` settings: which target its documents go to, in which mode, and the
target's own keys. Pure validation of the config table, done once when the config file is
loaded (the loader adds ``FILE:LINE``); a mistake is a ``ConfigError`` naming the key.

The target is looked up among the installed target plugins (``hub.spi.registry.targets``) and
every key besides ``target`` and ``mode`` is validated by that plugin's settings model
(``hub.spi.target.TargetSettings``). Secrets stay ``env:``/``file:`` references until the
plugin's ``open`` resolves them, so a projection worker never holds them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from hub.domain.documents import MODES, Mode
from hub.errors import ConfigError
from hub.spi.registry import targets
from hub.spi.target import TargetSettings

_COMMON_KEYS = ("target", "mode")
"""The keys every sync table has; the rest belong to the target."""


@dataclass(frozen=True)
class SyncSettings:
    """A tenant's ``sync = { target = "beancount", mode = "per_payout", path = "…" }``."""

    target: str
    """The target plugin's name."""
    mode: Mode
    options: TargetSettings
    """The target's own keys, as its plugin's settings model."""


def sync_settings(tenant: str, raw: Mapping[str, Any] | None) -> SyncSettings | None:
    """The tenant's sync settings (None: the tenant syncs nowhere); ``ConfigError`` names a
    wrong key or value, an unknown target with the installed ones."""
    if raw is None:
        return None
    where = f"tenants.{tenant}.sync"
    name, mode = raw.get("target"), raw.get("mode", "per_transaction")
    installed = targets()
    plugin = installed.get(name) if isinstance(name, str) else None
    if plugin is None:
        known = ", ".join(sorted(installed)) or "none"
        raise ConfigError(f"{where}.target: {name!r} is not one of the installed targets ({known})")
    try:
        options = plugin.validate({k: v for k, v in raw.items() if k not in _COMMON_KEYS})
    except ValidationError as exc:
        errors = exc.errors()
    else:
        errors = []
    unknown = sorted(_key(e) for e in errors if e["type"] == "extra_forbidden")
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} for target {name!r}")
    if mode not in MODES:
        raise ConfigError(f"{where}.mode: {mode!r} is not one of {MODES}")
    missing = [_key(e) for e in errors if e["type"] == "missing"]
    if missing:
        raise ConfigError(f"{where}: the {name} target needs {', '.join(missing)}")
    if errors:
        key, message = _key(errors[0]), _message(errors[0])
        raise ConfigError(f"{where}.{key}: {message}" if key else f"{where}: {message}")
    return SyncSettings(plugin.name, mode, options)


def _key(error: ErrorDetails) -> str:
    """The key path an error is about (``api_url``, ``accounts.0.code``)."""
    return ".".join(str(part) for part in error["loc"])


def _message(error: ErrorDetails) -> str:
    """The error's own words (a plugin's ``ValueError`` without pydantic's prefix)."""
    cause = error.get("ctx", {}).get("error")
    return str(cause) if error["type"] == "value_error" and cause is not None else error["msg"]
