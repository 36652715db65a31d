"""Reconciliation's side of ``hub.spi.reports``: ``ReconciliationReports`` gives the
``Reconciliation`` class the ``ReconciliationSource`` port (payout and exception pages), read
through ``projections.reconciliation.queries`` exactly as the HTTP routes read them: the routes
call these too, so the CLI, an export and ``GET /v1/reconciliation/…`` answer the same rows and
the same ``next``.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from hub.errors import InvalidInput
from hub.spi.projection import Connection


def _cursor(text: str, parts: int) -> tuple[date, list[str]]:
    """``YYYY-MM-DD|…`` with ``parts`` non-empty texts after the day (a page's ``next``);
    ``InvalidInput`` naming ``after`` when malformed."""
    day, *rest = text.split("|", parts)
    try:
        if len(rest) != parts or not all(rest):
            raise ValueError(text)
        return date.fromisoformat(day), rest
    except ValueError as exc:
        raise InvalidInput(
            f"after {text!r} is not a page cursor",
            errors=[{"field": "after", "message": "use the previous page's next"}],
        ) from exc


def payout_cursor(text: str | None) -> tuple[date, str, str] | None:
    """``YYYY-MM-DD|source|payout id`` (none when empty: the first page)."""
    if not text:
        return None
    day, (source, payout_id) = _cursor(text, 2)
    return day, source, payout_id


def clearing_cursor(text: str | None) -> tuple[date, str, str, str] | None:
    """``YYYY-MM-DD|processor|clearing account|currency`` (none when empty: the first page)."""
    if not text:
        return None
    day, (processor, account, currency) = _cursor(text, 3)
    return day, processor, account, currency


def payout_next(last: dict[str, Any]) -> str:
    """The ``next`` of a full page of payouts ending with ``last``."""
    return f"{last['arrival_date'].isoformat()}|{last['source']}|{last['payout_id']}"


def clearing_next(last: dict[str, Any]) -> str:
    """The ``next`` of a full page of tie-out days ending with ``last``."""
    return "|".join(
        (last["business_date"].isoformat(), last["processor"], last["clearing_account"],
         last["currency"])
    )  # fmt: skip


class ReconciliationReports:
    """``hub.spi.reports.ReconciliationSource`` as class methods (the class is the source)."""

    @classmethod
    async def payouts(
        cls,
        conn: Connection,
        tenant: str,
        *,
        status: str | None = None,
        start: date | None = None,
        end: date | None = None,
        as_of: date | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> dict[str, Any]:
        """A page ``{"payouts", "next"}`` (``ReconciliationSource``)."""
        from projections.reconciliation import queries

        rows = await queries.payouts(
            conn, tenant, status=status, start=start, end=end, as_of=as_of,
            after=payout_cursor(after), limit=limit,
        )  # fmt: skip
        return {"payouts": rows, "next": payout_next(rows[-1]) if len(rows) == limit else None}

    @classmethod
    async def exceptions(
        cls,
        conn: Connection,
        tenant: str,
        *,
        kind: str | None = None,
        resolved: bool | None = None,
        as_of: date | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> dict[str, Any]:
        """A page ``{"exceptions", "next"}`` (``ReconciliationSource``)."""
        from projections.reconciliation import queries

        rows = await queries.exceptions(
            conn, tenant, kind=kind, resolved=resolved, as_of=as_of, after=after or None,
            limit=limit,
        )  # fmt: skip
        return {"exceptions": rows, "next": rows[-1]["id"] if len(rows) == limit else None}
