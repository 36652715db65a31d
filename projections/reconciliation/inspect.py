"""Reconciliation's side of ``hub.spi.console``: ``ReconciliationInspection`` gives the
``Reconciliation`` class the ``ReconciliationInspector`` port (with the payout and exception
pages of ``ReconciliationReports``): one order's chain and payouts against deposits per day,
read through the analysts' views as the HTTP routes read them, and the event a person's
resolution appends (as ``POST /v1/reconciliation/resolutions`` builds it).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from hub.domain.events import NewEvent
from hub.spi.projection import Connection

_PER_DAY = """
WITH payouts AS (
    SELECT arrival_date AS day, currency, sum(amount_minor)::bigint AS total
    FROM ledgerhub_views.reconciliation_payouts
    WHERE tenant = $1 AND ($2::date IS NULL OR arrival_date >= $2)
      AND ($3::date IS NULL OR arrival_date <= $3)
    GROUP BY 1, 2
), deposits AS (
    SELECT business_date AS day, currency, sum(amount_minor)::bigint AS total
    FROM ledgerhub_views.reconciliation_bank_lines
    WHERE tenant = $1 AND amount_minor > 0 AND duplicate_of IS NULL
      AND ($2::date IS NULL OR business_date >= $2) AND ($3::date IS NULL OR business_date <= $3)
    GROUP BY 1, 2
)
SELECT day, currency, coalesce(p.total, 0)::bigint AS payouts_minor,
       coalesce(d.total, 0)::bigint AS deposits_minor
FROM payouts AS p FULL JOIN deposits AS d USING (day, currency)
ORDER BY day, currency
"""

_BY_STATUS = """
SELECT status, currency, count(*)::bigint AS count, sum(amount_minor)::bigint AS amount_minor
FROM ledgerhub_views.reconciliation_payouts_at($2)
WHERE tenant = $1
GROUP BY status, currency
ORDER BY status, currency
"""


class ReconciliationInspection:
    """``hub.spi.console.ReconciliationInspector``'s own methods as class methods."""

    @classmethod
    async def order_chain(
        cls, conn: Connection, tenant: str, order_id: str, *, as_of: date | None = None
    ) -> dict[str, Any] | None:
        """The order's chain as ``GET /v1/reconciliation/orders/{id}`` answers it."""
        from projections.reconciliation import queries  # queries reads this class's views

        return await queries.order_chain(conn, tenant, order_id, as_of=as_of)

    @classmethod
    async def exception_exists(cls, conn: Connection, tenant: str, exception_id: str) -> bool:
        """Whether ``exception_id`` is one of the tenant's exceptions."""
        from projections.reconciliation import queries

        return await queries.exception_exists(conn, tenant, exception_id)

    @classmethod
    async def payout_statuses(
        cls, conn: Connection, tenant: str, *, as_of: date | None = None
    ) -> list[dict[str, Any]]:
        """How many payouts, and how much, are in each status on ``as_of``."""
        rows = await conn.fetch(_BY_STATUS, tenant, as_of)
        return [dict(row) for row in rows]

    @classmethod
    async def payouts_and_deposits(
        cls, conn: Connection, tenant: str, *, start: date | None = None, end: date | None = None
    ) -> list[dict[str, Any]]:
        """Payouts due and bank deposits received, per day and currency."""
        rows = await conn.fetch(_PER_DAY, tenant, start, end)
        return [dict(row) for row in rows]

    @classmethod
    def resolution(
        cls,
        tenant: str,
        exception_id: str,
        reason: str,
        *,
        resolved: bool = True,
        external_id: str,
        meta: Mapping[str, Any],
    ) -> NewEvent:
        """``reconciliation.exception.resolved`` (or ``.reopened``) with ``{"exception_id",
        "reason"}``, which the projection applies (so it survives rebuilds)."""
        from projections.reconciliation.extract import REOPENED, RESOLVED

        return NewEvent(
            tenant=tenant,
            source=cls.resolution_source(),
            external_id=external_id,
            type=RESOLVED if resolved else REOPENED,
            occurred_at=datetime.now(UTC),
            data={"exception_id": exception_id, "reason": reason},
            meta=dict(meta),
        )

    @classmethod
    def resolution_source(cls) -> str:
        """``reconciliation:manual``, as the HTTP route appends it."""
        from projections.reconciliation.routes import RESOLUTION_SOURCE

        return RESOLUTION_SOURCE
