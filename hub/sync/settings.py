"""A tenant's ``sync`` settings: which target its documents go to, in which mode, and how to
reach it. Pure validation of the config table (``ConfigError`` names the key); secrets stay
``env:``/``file:`` references until the sender resolves them (``hub.sync.targets``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from hub.domain.documents import MODES, Mode
from hub.errors import ConfigError

TARGETS = ("beancount", "xero")
"""Targets this code can send to."""


XERO_API = "https://api.xero.com/api.xro/2.0"
XERO_TOKEN_URL = "https://identity.xero.com/connect/token"  # noqa: S105 (a URL, not a secret)


@dataclass(frozen=True)
class XeroSettings:
    """A tenant's Xero connection (``[tenants.NAME.sync]`` with ``target = "xero"``).

    Secrets stay references here (``env:NAME`` / ``file:PATH``), resolved only by the sender
    that needs them, so a projection worker never holds them.
    """

    tenant_id: str
    """The Xero organisation (the ``xero-tenant-id`` header)."""
    client_id: str
    """The OAuth2 app's client id, plain or ``env:``/``file:``."""
    client_secret: str
    """``env:NAME`` or ``file:PATH`` (never written in the config itself)."""
    refresh_token_file: str
    """Holds the current refresh token; Xero rotates it and the sender rewrites the file."""
    api_url: str = XERO_API
    token_url: str = XERO_TOKEN_URL
    timeout: float = 30.0
    """Seconds a call may take before it counts as timed out (and is retried)."""


@dataclass(frozen=True)
class SyncSettings:
    """A tenant's ``sync = { target = "beancount", mode = "per_payout", path = "…" }``."""

    target: str
    mode: Mode
    path: str | None = None
    """Where the target keeps the books, for a file target (Beancount)."""
    xero: XeroSettings | None = None
    """The Xero connection, for ``target = "xero"``."""


_COMMON_KEYS = {"target", "mode"}
_TARGET_KEYS = {
    "beancount": {"path"},
    "xero": {"tenant_id", "client_id", "client_secret", "refresh_token_file", "api_url",
             "token_url", "timeout"},
}  # fmt: skip
_XERO_REQUIRED = ("tenant_id", "client_id", "client_secret", "refresh_token_file")


def sync_settings(tenant: str, raw: Mapping[str, Any] | None) -> SyncSettings | None:
    """The tenant's sync settings (None: the tenant syncs nowhere); ``ConfigError`` names a
    wrong key or value."""
    if raw is None:
        return None
    where = f"tenants.{tenant}.sync"
    target, mode = raw.get("target"), raw.get("mode", "per_transaction")
    if target not in TARGETS:
        raise ConfigError(f"{where}.target: {target!r} is not one of {TARGETS}")
    unknown = sorted(set(raw) - _COMMON_KEYS - _TARGET_KEYS[str(target)])
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} for target {target!r}")
    if mode not in MODES:
        raise ConfigError(f"{where}.mode: {mode!r} is not one of {MODES}")
    path = raw.get("path")
    if path is not None and not isinstance(path, str):
        raise ConfigError(f"{where}.path: a file path is a string")
    xero = _xero_settings(where, raw) if target == "xero" else None
    return SyncSettings(str(target), mode, path, xero)


def _safe_url(url: str) -> bool:
    """https, or plain http to this machine only (a local test server): tokens travel there."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return False
    if parts.scheme == "https":
        return bool(host)
    return parts.scheme == "http" and host in ("127.0.0.1", "localhost", "::1")


def _xero_settings(where: str, raw: Mapping[str, Any]) -> XeroSettings:
    missing = [key for key in _XERO_REQUIRED if key not in raw]
    if missing:
        raise ConfigError(f"{where}: the xero target needs {', '.join(missing)}")
    text = {}
    for key in _TARGET_KEYS["xero"] - {"timeout"}:
        value = raw.get(key)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ConfigError(f"{where}.{key}: expected a non-empty string")
        text[key] = value
    secret = str(text["client_secret"])
    if not secret.startswith(("env:", "file:")):
        raise ConfigError(
            f"{where}.client_secret: write env:NAME or file:PATH (a secret is never kept in "
            "the config file)"
        )
    for key in ("api_url", "token_url"):
        url = text[key]
        if url is not None and not _safe_url(url):
            raise ConfigError(
                f"{where}.{key}: expected an https:// URL (http:// only to this machine), "
                f"got {url!r}"
            )
    timeout = raw.get("timeout", 30.0)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise ConfigError(f"{where}.timeout: expected a positive number of seconds")
    return XeroSettings(
        tenant_id=str(text["tenant_id"]),
        client_id=str(text["client_id"]),
        client_secret=secret,
        refresh_token_file=str(text["refresh_token_file"]),
        api_url=str(text["api_url"] or XERO_API),
        token_url=str(text["token_url"] or XERO_TOKEN_URL),
        timeout=float(timeout),
    )
