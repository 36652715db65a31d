"""``Document``: what an accounting target should hold for one document key.

The accounting projection computes documents from the books; a target (``hub.spi.target``)
stores them, keyed by ``idempotency_key``; the sender compares ``content_hash`` with what the
target confirmed to send only what is new or changed.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

import orjson

Mode = Literal["per_transaction", "per_payout", "daily"]
"""How a tenant's books become documents (see ``projections.accounting.documents``)."""
MODES: tuple[Mode, ...] = ("per_transaction", "per_payout", "daily")
BALANCE = "balance"
"""The kind of a document that states a bank statement's balance rather than moving money: a
target that can assert balances does (Beancount's ``balance``); the others skip it, sending
nothing (Xero, QuickBooks)."""


@dataclass(frozen=True)
class Document:
    """What one target should hold for one document key."""

    tenant: str
    target: str
    key: str
    kind: str
    business_date: date
    description: str
    postings: tuple[tuple[str, str, int], ...]
    """Summed per (account, currency), zero lines dropped, sorted: balanced per currency. A
    ``balance`` document (``BALANCE``) is the exception: its one line is a bank account's
    statement balance at the end of ``business_date`` (zero included), not a movement."""
    revision: str = ""
    """Set only on a copy that replaces a voided one (``replacing``): the new copy needs an
    idempotency key of its own."""
    customer: str | None = None
    """The customer of a sale (a target may name its contact after it)."""
    order: str | None = None
    """The order a sale is, or a payment pays (a target may apply the payment to the sale's
    invoice)."""

    @property
    def content_hash(self) -> str:
        """sha256 of what the target stores; changes exactly when the content does (the
        customer and order count only when set, so other documents hash as before)."""
        body: list[Any] = [self.kind, self.business_date.isoformat(), self.description,
                           self.postings]  # fmt: skip
        if self.customer is not None or self.order is not None:
            body.append({"customer": self.customer, "order": self.order})
        return hashlib.sha256(orjson.dumps(body)).hexdigest()

    @property
    def idempotency_key(self) -> str:
        """The key sent to the target: stable for this tenant, target and document key."""
        seed = f"{self.tenant}\x00{self.target}\x00{self.key}"
        if self.revision:
            seed += f"\x00{self.revision}"
        digest = hashlib.sha256(seed.encode())
        return f"lh-{digest.hexdigest()[:40]}"

    def replacing(self, target_id: str) -> Document:
        """This document as the copy that replaces the target's ``target_id`` (a target that
        cannot change it in place voids that one and creates this). Its revision, and so its
        idempotency key, follows from the copy it replaces, never from its content: a call
        repeated after a crash, with the content changed since, meets the copy the first call
        made; content that changes back never meets a voided copy's key."""
        return dataclasses.replace(self, revision=target_id)

    def encode(self) -> bytes:
        """The document as JSON (``decode`` reads it back equal)."""
        return orjson.dumps({f.name: getattr(self, f.name) for f in dataclasses.fields(self)})

    @classmethod
    def decode(cls, data: bytes | str) -> Document:
        """The document ``encode`` wrote."""
        fields = orjson.loads(data)
        fields["business_date"] = date.fromisoformat(fields["business_date"])
        fields["postings"] = tuple((a, c, int(m)) for a, c, m in fields["postings"])
        return cls(**fields)
