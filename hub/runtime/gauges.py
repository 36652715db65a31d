"""The gauges read from the database rather than counted in a process: each projection's lag
and parked count, and each connection's health.

``GET /metrics`` refreshes them at every scrape (``hub.api.metrics``). With OTLP metrics on
(``OTEL_EXPORTER_OTLP_ENDPOINT``) nothing scrapes, so ``serve`` and ``worker`` refresh them on
a timer (``keep_fresh``) instead; otherwise an OTLP-only deployment would report no lag and no
connection health at all.
"""

from __future__ import annotations

import asyncio
import logging

from hub import telemetry
from hub.errors import LedgerhubError
from hub.runtime.health import GAUGE
from hub.store import EventStore
from hub.store.health import HealthStore
from hub.store.projections import ProjectionStore

log = logging.getLogger(__name__)

STATUS_TIMEOUT = 5.0
"""Seconds the reads may take before the gauges are reported as unknown (lag) or left as
they were (health)."""

REFRESH_EVERY = 15.0
"""Seconds between refreshes when OTLP metrics are exported."""


async def refresh(store: EventStore) -> None:
    """Read every projection's lag and parked count, and every connection's health, into the
    gauges."""
    await refresh_projections(ProjectionStore.over(store))
    await refresh_health(HealthStore.over(store))


async def refresh_projections(store: ProjectionStore) -> None:
    """Read every projection's lag and parked count into the gauges (cleared, ``status_up``
    0, when the read fails: no stale lag is reported)."""
    try:
        async with asyncio.timeout(STATUS_TIMEOUT):
            statuses = await store.status()
    except (LedgerhubError, TimeoutError) as exc:
        log.warning("metrics: projection status unavailable: %s", exc)
        telemetry.projections.unknown()
        return
    telemetry.projections.update(
        [
            telemetry.ProjectionSnapshot(s.name, s.lag_events, s.lag_seconds, s.parked)
            for s in statuses
        ]
    )


async def refresh_health(store: HealthStore) -> None:
    """Read every connection's recorded health into the gauge (left as it was when the read
    fails)."""
    try:
        async with asyncio.timeout(STATUS_TIMEOUT):
            GAUGE.update(await store.all())
    except (LedgerhubError, TimeoutError) as exc:
        log.warning("metrics: connection health unavailable: %s", exc)


async def keep_fresh(store: EventStore, every: float = REFRESH_EVERY) -> None:
    """Refresh the gauges every ``every`` seconds while OTLP metrics are exported (returns at
    once when they are not: a scrape refreshes them then)."""
    if not telemetry.TELEMETRY.otlp.metrics:
        return
    while True:
        await refresh(store)
        await asyncio.sleep(every)
