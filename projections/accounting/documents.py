"""The documents a target should hold, built from the ledger's bookings (pure functions).

A booked fact becomes a *part* of one document; the document is the sum of its parts:

- ``per_transaction``: each fact is its own document (a sale → ``invoice``, a payment →
  ``payment``, a fee → ``expense``, a refund → ``credit_note``, a payout → ``transfer``, a
  payroll run → ``journal``; anything else → ``journal``).
- ``per_payout``: processor activity that names its payout (and the payout itself) is one
  ``journal`` per payout; its bank line is the deposit. Facts that name no payout (sales, bank
  lines, payroll, activity not yet paid out) stay one document each.
- ``daily``: every fact of a business day is one ``journal`` for the day.

A document's key is derived from the facts' keys, which come from the events that produced them
(``{source}/{fact key}``), so the same events always give the same key; ``idempotency_key`` is the
key hashed with its tenant and target. ``content_hash`` covers what a target stores (kind, date,
description, postings summed per account and currency), so a rebuild that computes the same
content sends nothing, and a mapping change that alters a document changes its hash.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from hub.domain.documents import BALANCE, Document, Mode
from hub.domain.facts import Fact
from projections.ledger.posting import Entry

_KINDS = {
    "sale": "invoice",
    "payment": "payment",
    "fee": "expense",
    "refund": "credit_note",
    "payout": "transfer",
    "payroll": "journal",
}


@dataclass(frozen=True)
class Part:
    """One booked fact's share of a document."""

    group: str
    """The key of the document it belongs to."""
    kind: str
    business_date: date
    description: str
    postings: tuple[tuple[str, str, int], ...]
    """(account code, currency, amount: debit positive)."""
    customer: str | None = None
    """The customer a sale names (per-transaction documents only)."""
    order: str | None = None
    """The order a sale is, or a payment pays (per-transaction documents only)."""


def _field(fact: Fact, name: str) -> object:
    """``fact``'s field ``name``, None when its kind has no such field (a model's fields are
    its ``__dict__``; ``getattr`` with a default raised and caught an AttributeError for every
    kind without it, in pydantic's ``__getattr__``)."""
    return fact.__dict__.get(name)


def document_key(mode: Mode, fact_key: str, fact: Fact, business_date: date) -> str:
    """The key of the document a fact keyed ``fact_key`` booked on ``business_date`` is part
    of (reconciliation uses it to follow an order to its document)."""
    payout = _field(fact, "payout_id")
    if mode == "daily":
        return f"day/{business_date.isoformat()}"
    if mode == "per_payout" and isinstance(payout, str) and payout:
        return f"payout/{fact_key.split('/', 1)[0]}/{payout}"
    return fact_key


def part_of(mode: Mode, fact_key: str, fact: Fact, entry: Entry) -> Part:
    """The part ``entry`` (booked from ``fact``, keyed ``fact_key``) adds to a document."""
    postings = tuple((p.account, p.currency, p.amount) for p in entry.postings)
    payout = _field(fact, "payout_id")
    group = document_key(mode, fact_key, fact, entry.business_date)
    if mode == "daily":
        return Part(group, "journal", entry.business_date, f"summary of {group[4:]}", postings)
    if mode == "per_payout" and isinstance(payout, str) and payout:
        return Part(group, "journal", entry.business_date, f"payout {payout}", postings)
    kind = _KINDS.get(entry.kind, "journal")
    customer = entry.payee if kind == "invoice" else None
    order = _field(fact, "order_id") if kind == "invoice" else None
    if kind == "payment":
        order = _field(fact, "order_ref")
    return Part(fact_key, kind, entry.business_date, entry.description, postings,
                customer or None, order if isinstance(order, str) and order else None)  # fmt: skip


def combine(tenant: str, target: str, key: str, parts: Iterable[Part]) -> Document | None:
    """The document made of ``parts`` (all of group ``key``); None when they sum to nothing.
    A ``balance`` (a statement balance, ``projections.accounting.balances``) is its one part as
    it is: a balance of zero is still a balance."""
    chosen = sorted(parts, key=lambda p: (p.business_date, p.description))
    if not chosen:
        return None
    if chosen[-1].kind == BALANCE:
        last = chosen[-1]
        return Document(tenant, target, key, last.kind, last.business_date, last.description,
                        last.postings)  # fmt: skip
    sums: dict[tuple[str, str], int] = {}
    for part in chosen:
        for account, currency, amount in part.postings:
            sums[(account, currency)] = sums.get((account, currency), 0) + amount
    postings = tuple(sorted((a, c, v) for (a, c), v in sums.items() if v))
    if not postings:
        return None
    last = chosen[-1]
    return Document(tenant, target, key, last.kind, last.business_date, last.description,
                    postings, customer=last.customer, order=last.order)  # fmt: skip
