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
from pathlib import Path
from typing import Annotated

from pydantic import Field

from hub.config import Config
from hub.config.environment import EnvironmentSettings
from hub.errors import ConfigError, RetriableError
from hub.spi.documents import DocumentSource
from hub.store import EventStore
from hub.sync.sender import Backoff, Sender, TargetHealth
from hub.sync.tenants import open_targets

log = logging.getLogger(__name__)


class SyncLoopSettings(EnvironmentSettings):
    """The sender loop's knobs: ``LEDGERHUB_SYNC_INTERVAL`` (seconds between runs),
    ``LEDGERHUB_SYNC_RETRY_ATTEMPTS``, ``LEDGERHUB_SYNC_RETRY_WAIT`` and
    ``LEDGERHUB_SYNC_BACKOFF_MAX`` (a transient failure's attempts in all, first and longest
    wait in seconds)."""

    sync_interval: Annotated[float, Field(gt=0)] = 10.0
    sync_retry_attempts: Annotated[int, Field(gt=0)] = Backoff().attempts
    sync_retry_wait: Annotated[float, Field(gt=0)] = Backoff().initial
    sync_backoff_max: Annotated[float, Field(gt=0)] = Backoff().maximum

    @property
    def backoff(self) -> Backoff:
        """How a call to a target is retried."""
        return Backoff(self.sync_retry_attempts, self.sync_retry_wait, self.sync_backoff_max)


def interval_from_env() -> float:
    """``LEDGERHUB_SYNC_INTERVAL`` in seconds (default 10); ``ConfigError`` if not positive."""
    return SyncLoopSettings.from_env().sync_interval


def backoff_from_env() -> Backoff:
    """The retry settings of a call to a target (``ConfigError`` names a bad variable)."""
    return SyncLoopSettings.from_env().backoff


async def sync_forever(
    events: EventStore,
    config: Config,
    home: Path,
    interval: float,
    source: DocumentSource,
    health: TargetHealth | None = None,
) -> None:
    """Run the sender (documents from ``source``) for every tenant ``config`` syncs, then wait
    ``interval``; until cancelled. Target faults and recoveries go to ``health`` if given."""
    async with open_targets(config, home) as pairs:
        if not pairs:
            return
        sender = Sender(events, source, backoff_from_env(), health)
        stuck: dict[str, str] = {}
        while True:
            for tenant, target in pairs:
                if health is not None:
                    await health.check_target(tenant, target)
                try:
                    await sender.run(tenant, target, scheduled=True)
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
                except Exception:  # a bug must not end the sender for every tenant: log, go on
                    log.exception("sync %s → %s failed (next round)", tenant, target.name)
                else:
                    if stuck.pop(tenant, None) is not None:
                        log.warning("sync %s → %s: running again", tenant, target.name)
            await asyncio.sleep(interval)
