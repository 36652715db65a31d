"""How reconciliation matches: the arrival window, descriptor hints and tolerances.

Per tenant, from ``[tenants.NAME.reconciliation]`` in the ``LEDGERHUB_CONFIG`` file (every key
optional; the defaults below otherwise)::

    [tenants.default.reconciliation]
    window_before = 1              # business days a deposit may land before the arrival date
    window_after = 5               # … and after it
    mismatch_tolerance_bp = 100    # an amount_mismatch pairs amounts within 1 % (basis points)
    duplicate_window_days = 2      # bank lines with the same amount and payee this close: flagged
    payment_terms_days = 30        # an open order not paid this many days after it: order_unpaid
    document_grace_days = 2        # a document not synced this many days after: document_missing
    tieout_grace_days = 5          # a clearing day that does not tie is "off" this many days after
    hints = { stripe = ["STRIPE"], shopify = ["SHOPIFY"] }   # per processor, case-insensitive
    holidays = ["2026-12-25"]      # days that are no business days for the windows (YYYY-MM-DD)
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hub.errors import ConfigError

DEFAULT_HINTS: dict[str, tuple[str, ...]] = {"stripe": ("STRIPE",), "shopify": ("SHOPIFY",)}
"""Words a processor's deposits carry in the bank statement's payee or description."""


class MatchSettings(BaseModel):
    """One tenant's matching rules (see the module docstring for the config keys)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    window_before: int = Field(default=1, ge=0, le=30)
    window_after: int = Field(default=5, ge=0, le=60)
    mismatch_tolerance_bp: int = Field(default=100, ge=0, le=10_000)
    duplicate_window_days: int = Field(default=2, ge=0, le=31)
    payment_terms_days: int = Field(default=30, ge=0, le=365)
    document_grace_days: int = Field(default=2, ge=0, le=365)
    tieout_grace_days: int = Field(default=5, ge=0, le=60)
    hints: dict[str, tuple[str, ...]] = Field(default_factory=lambda: dict(DEFAULT_HINTS))
    holidays: frozenset[date] = frozenset()

    def hinted(self, text: str) -> frozenset[str]:
        """The processors whose hint words ``text`` (payee and description) contains."""
        upper = text.upper()
        return frozenset(
            processor
            for processor, words in self.hints.items()
            if any(word.upper() in upper for word in words)
        )

    def within_tolerance(self, amount_minor: int, difference_minor: int) -> bool:
        """Whether a deposit ``difference_minor`` away from ``amount_minor`` may be a mismatch
        of that payout rather than another deposit (at least one minor unit always is)."""
        limit = max(abs(amount_minor) * self.mismatch_tolerance_bp, 10_000)
        return abs(difference_minor) * 10_000 <= limit


def settings_from_toml(raw: Mapping[str, Any], source: str = "config") -> dict[str, MatchSettings]:
    """Each tenant's settings from a parsed config file; ``ConfigError`` naming the key."""
    found: dict[str, MatchSettings] = {}
    for tenant, section in (raw.get("tenants") or {}).items():
        try:
            found[tenant] = MatchSettings.model_validate(section.get("reconciliation") or {})
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in ("tenants", tenant, "reconciliation", *first["loc"]))
            raise ConfigError(f"{source}: {where}: {first['msg']}") from exc
    return found


def load_settings(path: Path | None) -> dict[str, MatchSettings]:
    """Per-tenant settings from the config file at ``path`` (none configured when None)."""
    if path is None:
        return {}
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    return settings_from_toml(raw, str(path))
