"""The sender as a loop beside ``ledgerhub serve``'s workers: a sync run per tenant with a
target every ``LEDGERHUB_SYNC_INTERVAL`` seconds (default 10).

Every process running it takes part; the per-(tenant, target) advisory lock in
``hub.store.sync`` lets one of them send at a time, and another takes over when it dies. A
transient error (the database or the target away) is logged and tried again next round.
"""

from __future__ import annotations

import asyncio
import logging
import os

from hub.config import Settings
from hub.errors import ConfigError, RetriableError
from hub.store import EventStore
from hub.sync.sender import Sender
from hub.sync.tenants import open_targets

log = logging.getLogger(__name__)


def interval_from_env() -> float:
    """``LEDGERHUB_SYNC_INTERVAL`` in seconds (default 10); ``ConfigError`` if not positive."""
    text = os.environ.get("LEDGERHUB_SYNC_INTERVAL", "10")
    try:
        value = float(text)
    except ValueError as exc:
        raise ConfigError(f"LEDGERHUB_SYNC_INTERVAL must be seconds, got {text!r}") from exc
    if value <= 0:
        raise ConfigError(f"LEDGERHUB_SYNC_INTERVAL must be positive, got {text!r}")
    return value


async def sync_forever(events: EventStore, settings: Settings, interval: float) -> None:
    """Run the sender for every configured tenant, then wait ``interval``; until cancelled."""
    async with open_targets(settings) as pairs:
        if not pairs:
            return
        sender = Sender(events)
        while True:
            for tenant, target in pairs:
                try:
                    await sender.run(tenant, target)
                except RetriableError as exc:
                    log.warning("sync %s → %s: %s (next round)", tenant, target.name, exc)
            await asyncio.sleep(interval)
