"""Which tenants sync where (``Config.sync_for``): the sender's work list, each tenant's target
opened by its plugin (``hub.spi.registry.targets``), and the secret files those targets keep
(``secret_files``, for ``ledgerhub secrets rotate``)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

from hub.config import Config
from hub.errors import ConfigError
from hub.spi.registry import targets
from hub.spi.sealed import key_from_env
from hub.spi.target import Target, TargetEnvironment
from hub.sync.settings import SyncSettings


@contextlib.asynccontextmanager
async def open_targets(config: Config, home: Path) -> AsyncIterator[list[tuple[str, Target]]]:
    """(tenant, its target) for every tenant whose config has a ``sync`` table, by name (file
    targets keep relative paths under ``home``); the HTTP session the API targets share is
    closed when the block ends."""
    books = config.books
    config_dir = config.path.parent if config.path is not None else None
    key = key_from_env()  # read once here, handed to every tenant's environment
    async with aiohttp.ClientSession() as session:
        found: list[tuple[str, Target]] = []
        for tenant in sorted(config.tenants):
            chosen = config.sync_for(tenant)
            if chosen is None:
                continue
            env = TargetEnvironment(books.tenant(tenant), home, config_dir, session, key)
            found.append((tenant, open_target(chosen, env)))
        yield found


def open_target(chosen: SyncSettings, env: TargetEnvironment) -> Target:
    """The tenant's target, opened by the plugin ``chosen.target`` names; ``ConfigError`` when
    it cannot be (a secret missing, a token file gone)."""
    plugin = targets().get(chosen.target)
    if plugin is None:  # sync_settings checked it; a SyncSettings made in code may not be
        raise ConfigError(f"{env.where}.target: no installed target is named {chosen.target!r}")
    return plugin.open(chosen.options, env)


async def secret_files(config: Config, home: Path) -> list[tuple[str, list[Path] | ConfigError]]:
    """(tenant, the secret files its target keeps: ``TargetEnvironment.sealed_file``) for every
    tenant with a ``sync`` table, by name; the ``ConfigError`` instead when its target cannot be
    opened. Each target is opened only to learn its files (with no key, checking nothing), and
    none is called."""
    books = config.books
    config_dir = config.path.parent if config.path is not None else None
    found: list[tuple[str, list[Path] | ConfigError]] = []
    async with aiohttp.ClientSession() as session:
        for tenant in sorted(config.tenants):
            chosen = config.sync_for(tenant)
            if chosen is None:
                continue
            env = TargetEnvironment(
                books.tenant(tenant), home, config_dir, session, None, check_sealed=False
            )
            try:
                open_target(chosen, env)
            except ConfigError as exc:
                found.append((tenant, exc))
                continue
            found.append((tenant, [file.path for file in env.sealed_files]))
    return found
