"""``ledger``: a double-entry journal per tenant from the canonical facts.

Each event goes through its connection's mapper (``hub.spi.mapper``) to facts, and each fact is
booked (``projections.ledger.posting``) as one journal entry keyed by ``{source}/{fact key}``:
a later event about the same object (an order updated, a payout paid) replaces the entry, an
older one replayed later changes nothing, and every entry lists the event positions it came from.
An entry's postings are parallel arrays (account, currency, amount: debit positive) and the
table's CHECK (``ledgerhub.postings_balanced``, migration 0008) refuses any row that does not
balance per currency. Events no mapper understands, or that cannot be mapped or booked, are kept
in ``unmapped`` with the reason, never an error.

A payment or refund that names an order is booked with what the log holds about that order
(``projections.ledger.links``: the ``orders`` and ``links`` tables): a payment for an order not
in the log waits in unapplied payments, and a later event about the order re-books it (and the
order's refunds) under its own key, so the live books and a rebuild's are the same.

The chart, rules and mappings come from ``LEDGERHUB_CONFIG`` (``hub.config.books``), read when the
projection starts and again when a rebuild starts: after changing them, ``ledgerhub rebuild
ledger`` (live events keep using the config the rebuild read).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING, Any, ClassVar

from hub.domain.audit import AUDIT_SOURCE
from hub.domain.events import RecordedEvent
from hub.domain.facts import Fact
from hub.errors import Unmappable
from hub.spi.config import BooksConfig
from hub.spi.projection import Connection, Context, Projection
from projections.ledger.inspect import LedgerInspection
from projections.ledger.links import LINKS, ORDERS, Links
from projections.ledger.posting import Booking, Unbookable, book, payee_key
from projections.ledger.reports import JournalReports

if TYPE_CHECKING:
    from hub.spi.http import ApiRoute

SYNC_OUTCOMES = "accounting.document."
"""Event types the sender appends (``hub.sync.sender``); the ledger books nothing for them."""

_JOURNAL = (
    "tenant text NOT NULL, entry_key text NOT NULL, source text NOT NULL, kind text NOT NULL, "
    "business_date date NOT NULL, description text NOT NULL, payee text, "
    "accounts text[] NOT NULL, currencies text[] NOT NULL, amounts bigint[] NOT NULL, "
    "positions bigint[] NOT NULL, position bigint NOT NULL, "
    "PRIMARY KEY (tenant, entry_key), "
    "CHECK (cardinality(accounts) = cardinality(amounts) "
    "AND cardinality(currencies) = cardinality(amounts) AND cardinality(amounts) <> 1), "
    "CHECK (ledgerhub.postings_balanced(currencies, amounts))"
)
_ACCOUNTS = (
    "tenant text NOT NULL, code text NOT NULL, name text NOT NULL, type text NOT NULL, "
    "role text, PRIMARY KEY (tenant, code)"
)
_BANK_LINES = (
    "tenant text NOT NULL, entry_key text NOT NULL, position bigint NOT NULL, "
    "business_date date NOT NULL, currency text NOT NULL, amount bigint NOT NULL, payee text, "
    "payee_key text, status text NOT NULL, account text, rule text, PRIMARY KEY (tenant, entry_key)"
)
_UNMAPPED = (
    "position bigint PRIMARY KEY, tenant text NOT NULL, source text NOT NULL, "
    "type text NOT NULL, reason text NOT NULL"
)

_UPSERT_ENTRY = """
INSERT INTO {t} AS j (tenant, entry_key, source, kind, business_date, description, payee,
                      accounts, currencies, amounts, positions, position)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, ARRAY[$11::bigint], $11)
ON CONFLICT (tenant, entry_key) DO UPDATE SET
    source = excluded.source, kind = excluded.kind, business_date = excluded.business_date,
    description = excluded.description, payee = excluded.payee, accounts = excluded.accounts,
    currencies = excluded.currencies, amounts = excluded.amounts, position = excluded.position,
    positions = ARRAY(SELECT DISTINCT p FROM unnest(j.positions || excluded.positions) AS p
                      ORDER BY p)
WHERE j.position <= excluded.position
"""
_UPSERT_BANK_LINE = """
INSERT INTO {t} AS b (tenant, entry_key, position, business_date, currency, amount, payee,
                      payee_key, status, account, rule)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
ON CONFLICT (tenant, entry_key) DO UPDATE SET
    position = excluded.position, business_date = excluded.business_date,
    currency = excluded.currency, amount = excluded.amount, payee = excluded.payee,
    payee_key = excluded.payee_key, status = excluded.status, account = excluded.account,
    rule = excluded.rule
WHERE b.position <= excluded.position
"""
_UPSERT_ACCOUNT = """
INSERT INTO {t} (tenant, code, name, type, role) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (tenant, code) DO UPDATE SET name = excluded.name, type = excluded.type,
    role = excluded.role
"""
_UPSERT_UNMAPPED = """
INSERT INTO {t} (position, tenant, source, type, reason) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (position) DO UPDATE SET reason = excluded.reason
"""


class Ledger(LedgerInspection, JournalReports, Projection):
    """The journal, chart of accounts, bank-line categorization and unmapped events."""

    name: ClassVar[str] = "ledger"
    version: ClassVar[int] = 2
    tables: ClassVar[dict[str, str]] = {
        "journal": _JOURNAL,
        "accounts": _ACCOUNTS,
        "bank_lines": _BANK_LINES,
        "unmapped": _UNMAPPED,
        "orders": ORDERS,
        "links": LINKS,
    }

    @classmethod
    def routes(cls) -> Sequence[ApiRoute]:
        """``/v1/ledger/...`` (``routes``)."""
        from projections.ledger.routes import ROUTES  # only where the API is served

        return ROUTES

    def __init__(self) -> None:
        self._charted: set[tuple[str, str]] = set()

    @classmethod
    async def trial_balance(
        cls, conn: Connection, tenant: str, as_of: date | None = None
    ) -> dict[str, Any]:
        """The tenant's trial balance (``hub.spi.reports.TrialBalanceSource``)."""
        from projections.ledger import queries  # queries reads this class's views

        return await queries.trial_balance(conn, tenant, as_of)

    @property
    def books(self) -> BooksConfig:
        """The charts, rules and connection mappings of the configuration in force."""
        return self.config.books

    async def handle(self, events: Sequence[RecordedEvent], ctx: Context) -> None:
        """Map and book each event (position order); idempotent by key and position. A
        payment or refund naming an order is booked with what the log holds about the order
        (``projections.ledger.links``), and an event about an order re-books its entries."""
        entries: list[tuple[Any, ...]] = []
        bank_lines: list[tuple[Any, ...]] = []
        unmapped: list[tuple[Any, ...]] = []
        mapped: list[int] = []
        batch: list[tuple[RecordedEvent, list[tuple[str, Fact, Booking]]]] = []
        books = self.books  # once: ``Config.books`` is a private attribute of a pydantic model
        for event in events:
            if event.type.startswith(SYNC_OUTCOMES) or event.source == AUDIT_SOURCE:
                continue  # the sync's own outcomes and operators' audited actions: no books
            await self._chart(event.tenant, ctx)
            try:
                batch.append((event, booked_facts(books, event)))
            except (Unmappable, Unbookable) as exc:
                unmapped.append((event.position, event.tenant, event.source, event.type, str(exc)))
        links = await Links.load(ctx, [(e, [fact for _, fact, _ in b]) for e, b in batch])
        for event, booked in batch:
            try:
                bookings = links.apply(books, event, booked)
            except Unbookable as exc:
                unmapped.append((event.position, event.tenant, event.source, event.type, str(exc)))
                continue
            mapped.append(event.position)
            for source, key, _fact, booking in bookings:
                entries.append(_entry_row(event, key, booking, source))
                if booking.bank is not None:
                    bank_lines.append(_bank_row(event, key, booking))
        await links.save(ctx)
        tables = ctx.tables
        if entries:
            await ctx.conn.executemany(_UPSERT_ENTRY.format(t=tables["journal"]), entries)
        if bank_lines:
            await ctx.conn.executemany(_UPSERT_BANK_LINE.format(t=tables["bank_lines"]), bank_lines)
        if unmapped:
            await ctx.conn.executemany(_UPSERT_UNMAPPED.format(t=tables["unmapped"]), unmapped)
        if mapped:
            await ctx.conn.execute(
                f"DELETE FROM {tables['unmapped']} WHERE position = ANY($1::bigint[])", mapped
            )

    def prepare(self, events: Sequence[RecordedEvent]) -> None:
        """Map and book ``events`` ahead (``booked_facts`` remembers it for ``handle``)."""
        books = self.books
        for event in events:
            if event.type.startswith(SYNC_OUTCOMES) or event.source == AUDIT_SOURCE:
                continue
            with contextlib.suppress(Unmappable, Unbookable):
                booked_facts(books, event)

    async def _chart(self, tenant: str, ctx: Context) -> None:
        marker = (ctx.tables["accounts"], tenant)
        if marker in self._charted:
            return
        accounts = sorted(self.books.tenant(tenant).accounts.values(), key=lambda a: a.code)
        await ctx.conn.executemany(
            _UPSERT_ACCOUNT.format(t=ctx.tables["accounts"]),
            [(tenant, a.code, a.name, a.type, a.role) for a in accounts],
        )
        self._charted.add(marker)


def booked_facts(books: BooksConfig, event: RecordedEvent) -> list[tuple[str, Fact, Booking]]:
    """``event``'s facts and what each books, keyed ``{source}/{fact key}`` (the ledger's rules,
    shared with the accounting sync), leaving out informational facts (a ``BalanceMovement``
    restates money the event's other facts book: no entry, not even an empty one). Raises
    ``Unmappable`` or ``Unbookable``. Remembered per configuration and event
    (``BooksConfig.remember``): the ledger and the accounting sync book the same events."""
    return books.remember(
        ("booked", event.id), lambda: _book(books, event), errors=(Unmappable, Unbookable)
    )


def _book(books: BooksConfig, event: RecordedEvent) -> list[tuple[str, Fact, Booking]]:
    connection = books.connection(event.source)
    if connection is None:
        connector = event.source.split(":", 1)[0]
        raise Unmappable(f"no installed connector maps {connector!r} events")
    mapped = books.map(event)
    if mapped is None:
        raise Unmappable(f"the {connection.connector} mapper does not map {event.type}")
    facts = [fact for fact in mapped if not fact.informational]
    tenant = books.tenant(event.tenant)
    return [(f"{event.source}/{fact.key}", fact, book(fact, tenant, connection)) for fact in facts]


def _entry_row(
    event: RecordedEvent, key: str, booking: Booking, source: str | None = None
) -> tuple[Any, ...]:
    """The journal row of ``key`` as ``event`` books it (``source``: the entry's own, when
    ``event`` re-books another source's entry; default ``event.source``)."""
    source = source or event.source
    entry = booking.entry
    if entry is None:  # books nothing (now): keep the key so an older event cannot revive it
        return (event.tenant, key, source, "none", event.occurred_at.date(), "", None,
                [], [], [], event.position)  # fmt: skip
    return (
        event.tenant,
        key,
        source,
        entry.kind,
        entry.business_date,
        entry.description,
        entry.payee,
        [p.account for p in entry.postings],
        [p.currency for p in entry.postings],
        [p.amount for p in entry.postings],
        event.position,
    )


def _bank_row(event: RecordedEvent, key: str, booking: Booking) -> tuple[Any, ...]:
    note = booking.bank
    assert note is not None
    return (
        event.tenant,
        key,
        event.position,
        note.business_date,
        note.amount.currency,
        note.amount.minor,
        note.payee,
        payee_key(note.payee),
        note.status,
        note.account,
        note.rule,
    )
