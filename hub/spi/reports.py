"""``TrialBalanceSource``: where the framework's own commands (the demo, and later the CLI's
reports) read a tenant's trial balance without knowing which projection keeps the books.

A projection says it provides one by implementing the method as a class method, so the class
itself is the source (``hub.spi.registry.trial_balance_source`` finds it among the installed
projections), as ``hub.spi.documents.DocumentSource`` works for accounting documents.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from hub.store.pool import Connection


@runtime_checkable
class TrialBalanceSource(Protocol):
    """A tenant's trial balance, in the shape of ``GET /v1/ledger/trial-balance``."""

    async def trial_balance(
        self, conn: Connection, tenant: str, as_of: date | None = None
    ) -> dict[str, Any]:
        """``{"as_of", "lines": [{"code", "name", "role", "currency", "debit_minor",
        "credit_minor", "balance_minor"}], "balanced"}`` for entries dated on or before
        ``as_of`` (all when None)."""
        ...
