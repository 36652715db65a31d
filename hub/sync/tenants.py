"""Which tenants sync where, from ``LEDGERHUB_CONFIG``: the sender's work list."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import aiohttp

from hub.config import Settings, load
from hub.spi.target import Target
from hub.sync.settings import sync_settings
from hub.sync.targets import target_for


@contextlib.asynccontextmanager
async def open_targets(settings: Settings) -> AsyncIterator[list[tuple[str, Target]]]:
    """(tenant, its target) for every tenant whose config has a ``sync`` table, by name; the
    HTTP session the API targets share is closed when the block ends."""
    config = load(settings)
    books = config.books
    config_dir = settings.config_file.parent if settings.config_file else None
    async with aiohttp.ClientSession() as session:
        found: list[tuple[str, Target]] = []
        for tenant in sorted(config.tenants):
            chosen = sync_settings(tenant, config.tenant(tenant).sync)
            if chosen is None:
                continue
            target = target_for(
                chosen,
                books.tenant(tenant),
                settings.home,
                session=session,
                config_dir=config_dir,
            )
            found.append((tenant, target))
        yield found
