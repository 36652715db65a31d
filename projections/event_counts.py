"""``event_counts``: how many events the log holds per tenant, source and type.

A small built-in read model (also the projection the replay benchmark rebuilds). Query it with
``SELECT * FROM ledgerhub_projections.event_counts__counts``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import ClassVar

from hub.domain.events import RecordedEvent
from hub.spi.projection import Context, Projection


class EventCounts(Projection):
    """Counts events per (tenant, source, type), with the last position counted for each."""

    name: ClassVar[str] = "event_counts"
    version: ClassVar[int] = 1
    tables: ClassVar[dict[str, str]] = {
        "counts": (
            "tenant text NOT NULL, source text NOT NULL, type text NOT NULL, "
            "events bigint NOT NULL, last_position bigint NOT NULL, "
            "PRIMARY KEY (tenant, source, type)"
        )
    }

    async def handle(self, events: Sequence[RecordedEvent], ctx: Context) -> None:
        """Add each key's events of this batch, unless its row already counts past them.

        Idempotent: every key's events in a batch lie below its stored ``last_position`` if
        they were counted before (replay), so such a batch adds nothing for that key.
        """
        counts: Counter[tuple[str, str, str]] = Counter()
        first: dict[tuple[str, str, str], int] = {}
        last: dict[tuple[str, str, str], int] = {}
        for event in events:
            key = (event.tenant, event.source, event.type)
            counts[key] += 1
            first.setdefault(key, event.position)
            last[key] = event.position
        keys = list(counts)
        await ctx.conn.execute(
            f"INSERT INTO {ctx.tables['counts']} AS c "
            "(tenant, source, type, events, last_position) "
            "SELECT k.tenant, k.source, k.type, k.n, k.last "
            "FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], "
            "$6::bigint[]) AS k(tenant, source, type, n, first, last) "
            f"LEFT JOIN {ctx.tables['counts']} AS old USING (tenant, source, type) "
            "WHERE old.last_position IS NULL OR old.last_position < k.first "
            "ON CONFLICT (tenant, source, type) DO UPDATE SET "
            "events = c.events + excluded.events, last_position = excluded.last_position",
            [k[0] for k in keys],
            [k[1] for k in keys],
            [k[2] for k in keys],
            [counts[k] for k in keys],
            [first[k] for k in keys],
            [last[k] for k in keys],
        )
