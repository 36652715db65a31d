"""The ledger's side of ``hub.spi.reports``: ``JournalReports`` gives the ``Ledger`` class the
``JournalSource`` port (the journal, page by page), read through ``projections.ledger.queries``
as the HTTP route ``GET /v1/ledger/journal`` reads it.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from hub.errors import InvalidInput
from hub.spi.projection import Connection


def journal_cursor(text: str | None) -> tuple[date, str] | None:
    """``YYYY-MM-DD|entry key`` (a journal page's ``next``) as a cursor (none when empty);
    ``InvalidInput`` naming ``after`` when malformed."""
    if not text:
        return None
    day, _, key = text.partition("|")
    try:
        if not key:
            raise ValueError(text)
        return date.fromisoformat(day), key
    except ValueError as exc:
        raise InvalidInput(
            f"after {text!r} is not a page cursor",
            errors=[{"field": "after", "message": "use the previous page's next"}],
        ) from exc


class JournalReports:
    """``hub.spi.reports.JournalSource`` as class methods (the class itself is the source)."""

    @classmethod
    async def journal(
        cls,
        conn: Connection,
        tenant: str,
        *,
        start: date | None = None,
        end: date | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> dict[str, Any]:
        """A page ``{"entries", "next"}`` of the tenant's journal (``JournalSource``)."""
        from projections.ledger import queries  # queries reads the Ledger class's views

        entries = await queries.journal(
            conn, tenant, start=start, end=end, after=journal_cursor(after), limit=limit
        )
        following = None
        if len(entries) == limit:
            last = entries[-1]
            following = f"{last['business_date'].isoformat()}|{last['entry_key']}"
        return {"entries": entries, "next": following}
