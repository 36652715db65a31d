"""``DocumentSource``: where the sender (and shadow mode) read the documents a target should hold.

The framework sends documents but does not compute them: a projection does (the accounting
projection, ``projections.accounting``), and says so by implementing this port's two methods as
class methods, so the class itself is the source (``hub.spi.registry.document_source`` finds it
among the installed projections)::

    class Accounting(Projection):
        @classmethod
        async def documents(cls, conn, tenant, target): ...

        @classmethod
        async def last_positions(cls, conn, tenant, target): ...

Both read the projection's own views through ``conn`` (a pooled connection, outside any
projection transaction) and answer nothing (``[]``, ``{}``) before the projection first ran.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

from hub.domain.documents import Document

if TYPE_CHECKING:  # the registry imports this module while hub.config (which hub.store needs) loads
    from hub.store.pool import Connection as Connection


@runtime_checkable
class DocumentSource(Protocol):
    """The documents each (tenant, target) should hold, and the events that shaped them."""

    async def documents(self, conn: Connection, tenant: str, target: str) -> list[Document]:
        """Every document ``target`` should hold for ``tenant``, in the order to send them
        (a document another refers to first: invoices before their payments)."""
        ...

    async def last_positions(self, conn: Connection, tenant: str, target: str) -> dict[str, int]:
        """Document key → the position of the latest event that shaped it (a send continues
        that event's trace)."""
        ...
