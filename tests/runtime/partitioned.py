"""A partitioned test projection (K = 4 by default), loadable by subprocess workers through
``LEDGERHUB_PROJECTIONS=tests.runtime.partitioned:TenantOrder``.

``TenantOrder`` keeps, per tenant, how many of its events it has applied and the last position
(``tenants``), and for every event (``seen``) its tenant, the number it got in its tenant's
sequence, the position its tenant had reached before it, how often it was applied and by which
process. So a test can tell "each event applied exactly once" (``applications``) and "each
tenant's events applied in position order" (``previous`` < ``position`` and ``seq`` growing
with ``position``). Its rows are keyed by tenant, as a partitioned projection's must be.

Replays only count applications (``applications`` grows, nothing else moves). An event whose
``data.poison`` is set fails with ``SkippableError`` unless ``TenantOrder.fixed`` is set.
``LEDGERHUB_TEST_BATCH_SLEEP`` (seconds) slows every batch down, so that work is spread out.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from typing import ClassVar

from hub.domain.events import RecordedEvent
from hub.errors import SkippableError
from hub.spi.projection import Context, Projection


class TenantOrder(Projection):
    """Records the order in which it saw each tenant's events."""

    name: ClassVar[str] = "tenant_order"
    partitions: ClassVar[int] = 4
    tables: ClassVar[dict[str, str]] = {
        "seen": "position bigint PRIMARY KEY, tenant text NOT NULL, seq bigint NOT NULL, "
        "previous bigint NOT NULL, applications int NOT NULL, pid int NOT NULL",
        "tenants": "tenant text PRIMARY KEY, n bigint NOT NULL, last bigint NOT NULL",
    }
    fixed: ClassVar[bool] = False

    async def handle(self, events: Sequence[RecordedEvent], ctx: Context) -> None:
        for event in events:
            if event.data.get("poison") and not self.fixed:
                raise SkippableError(f"poison event {event.external_id}")
        if ctx.mode == "replay":
            await ctx.conn.execute(
                f"UPDATE {ctx.tables['seen']} SET applications = applications + 1 "
                "WHERE position = ANY($1::bigint[])",
                [e.position for e in events],
            )
            return
        for event in events:
            previous = await ctx.conn.fetchval(
                f"SELECT last FROM {ctx.tables['tenants']} WHERE tenant = $1", event.tenant
            )
            seq = await ctx.conn.fetchval(
                f"INSERT INTO {ctx.tables['tenants']} AS t (tenant, n, last) VALUES ($1, 1, $2) "
                "ON CONFLICT (tenant) DO UPDATE SET n = t.n + 1, last = excluded.last "
                "RETURNING n",
                event.tenant,
                event.position,
            )
            await ctx.conn.execute(
                f"INSERT INTO {ctx.tables['seen']} AS s "
                "(position, tenant, seq, previous, applications, pid) "
                "VALUES ($1, $2, $3, $4, 1, $5) ON CONFLICT (position) DO UPDATE "
                "SET applications = s.applications + 1",
                event.position,
                event.tenant,
                seq,
                previous or 0,
                os.getpid(),
            )
        pause = float(os.environ.get("LEDGERHUB_TEST_BATCH_SLEEP", "0"))
        if pause:
            await asyncio.sleep(pause)
