"""The interface every accounting target implements, and what a call returns.

A target stores documents (``projections.accounting.documents.Document``) keyed by their
idempotency key. ``create`` with a key the target already holds returns what it holds (no second
copy): that is how a send repeated after a crash stays single. A target that cannot change a
document in place sets ``supports_update = False``; the sender then voids and re-creates it.

Errors: ``TargetUnavailable`` (retry later: timeout, 5xx, 429 with ``retry_after``) and
``TargetRejected`` (the document is refused: park it with the message).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol

from projections.accounting.documents import Document


@dataclass(frozen=True)
class Receipt:
    """A target's answer to one call."""

    target_id: str
    """The target's id for the document."""
    request_id: str
    """The id of the call (the target's, when it gives one), for the call log."""
    idempotency_key: str = ""
    """The idempotency key the document was stored under (empty: the document's own)."""


@dataclass(frozen=True)
class HeldDocument:
    """A document as the target holds it, read back (for shadow comparisons and tests)."""

    idempotency_key: str
    target_id: str
    content_hash: str


class Target(Protocol):
    """An accounting system documents are sent to (one instance per tenant)."""

    name: ClassVar[str]
    supports_update: ClassVar[bool]

    async def create(self, document: Document) -> Receipt:
        """Store ``document``; if its idempotency key is already held, return that one."""
        ...

    async def update(self, target_id: str, document: Document) -> Receipt:
        """Replace the document ``target_id`` with ``document`` (only if ``supports_update``)."""
        ...

    async def void(self, target_id: str) -> Receipt:
        """Void (remove from the books) the document ``target_id``; voiding twice is a no-op."""
        ...

    async def held(self) -> list[HeldDocument]:
        """Every live (not voided) document the target holds for this tenant."""
        ...
