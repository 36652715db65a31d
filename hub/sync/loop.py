"""The sender as a loop beside the projection workers (``ledgerhub serve`` and ``ledgerhub
worker``): a sync run per tenant with a target every ``LEDGERHUB_SYNC_INTERVAL`` seconds
(default 10). A call that fails for a transient reason is retried within the run
``LEDGERHUB_SYNC_RETRY_ATTEMPTS`` times in all (default 5), waiting an exponential, jittered
``LEDGERHUB_SYNC_RETRY_WAIT`` (default 0.5) up to ``LEDGERHUB_SYNC_BACKOFF_MAX`` seconds (default
30) between them, and at least the target's ``Retry-After``.

Every process running it takes part; the per-(tenant, target) advisory lock in
``hub.store.sync`` lets one of them send at a time, and another takes over when it dies. A
transient error (the database or the target away) is logged and tried again next round; so is
a tenant whose connection needs an operator (``ConfigError``: logged once as an error), without
stopping the other tenants.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from hub.config import Config
from hub.errors import ConfigError, RetriableError
from hub.spi.documents import DocumentSource
from hub.store import EventStore
from hub.sync.sender import Backoff, Sender
from hub.sync.tenants import open_targets

log = logging.getLogger(__name__)


def _positive(name: str, default: float) -> float:
    text = os.environ.get(name, str(default))
    try:
        value = float(text)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, got {text!r}") from exc
    if value <= 0:
        raise ConfigError(f"{name} must be positive, got {text!r}")
    return value


def interval_from_env() -> float:
    """``LEDGERHUB_SYNC_INTERVAL`` in seconds (default 10); ``ConfigError`` if not positive."""
    return _positive("LEDGERHUB_SYNC_INTERVAL", 10)


def backoff_from_env() -> Backoff:
    """The retry settings of a call to a target (``ConfigError`` names a bad variable)."""
    default = Backoff()
    attempts = _positive("LEDGERHUB_SYNC_RETRY_ATTEMPTS", default.attempts)
    if attempts != int(attempts):
        raise ConfigError(f"LEDGERHUB_SYNC_RETRY_ATTEMPTS must be a whole number, got {attempts}")
    return Backoff(
        attempts=int(attempts),
        initial=_positive("LEDGERHUB_SYNC_RETRY_WAIT", default.initial),
        maximum=_positive("LEDGERHUB_SYNC_BACKOFF_MAX", default.maximum),
    )


async def sync_forever(
    events: EventStore, config: Config, home: Path, interval: float, source: DocumentSource
) -> None:
    """Run the sender (documents from ``source``) for every tenant ``config`` syncs, then wait
    ``interval``; until cancelled."""
    async with open_targets(config, home) as pairs:
        if not pairs:
            return
        sender = Sender(events, source, backoff_from_env())
        stuck: dict[str, str] = {}
        while True:
            for tenant, target in pairs:
                try:
                    await sender.run(tenant, target)
                except RetriableError as exc:
                    log.warning("sync %s → %s: %s (next round)", tenant, target.name, exc)
                except ConfigError as exc:
                    # one tenant's broken connection (a refused refresh token, a secret file
                    # gone) must not stop the others; it is tried again every round, so fixing
                    # the file heals it without a restart
                    if stuck.get(tenant) != str(exc):
                        log.error("sync %s → %s stopped: %s (an operator must act; retried "
                                  "every round)", tenant, target.name, exc)  # fmt: skip
                    stuck[tenant] = str(exc)
                else:
                    if stuck.pop(tenant, None) is not None:
                        log.warning("sync %s → %s: running again", tenant, target.name)
            await asyncio.sleep(interval)
