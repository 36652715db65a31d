"""Which tenants sync where, from ``LEDGERHUB_CONFIG``: the sender's work list."""

from __future__ import annotations

from hub.books import load_books
from hub.config import Settings
from hub.config_file import load_from_env
from hub.sync.target import Target
from hub.sync.targets import target_for
from projections.accounting.documents import sync_settings


def configured_targets(settings: Settings) -> list[tuple[str, Target]]:
    """(tenant, its target) for every tenant whose config has a ``sync`` table, by name."""
    config = load_from_env(settings.config_file)
    books = load_books(settings.config_file)
    found = []
    for tenant in sorted(config.tenants):
        chosen = sync_settings(tenant, config.tenant(tenant).sync)
        if chosen is not None:
            found.append((tenant, target_for(chosen, books.tenant(tenant), settings.home)))
    return found
