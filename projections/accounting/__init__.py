"""``accounting``: per tenant and target, the documents an accounting system should hold.

Each event is mapped and booked with the ledger's own rules (``projections.ledger.booked_facts``,
then ``projections.ledger.links`` with what the log holds about the orders it names, in tables of
this projection's own, so a payment for an order not yet in the log is unapplied here as in the
ledger, and an event about an order re-books its payments and refunds) for the tenants whose
config has ``sync = { target = …, mode = … }``; each booked fact is a row of
``parts`` (keyed by its fact key, replaced by a later event about the same object), and every
document a batch touches is recomputed from its parts (``projections.accounting.documents``) into
``documents``, with its content hash and idempotency key. A bank statement's closing balance,
which the ledger does not book, is a ``balance`` document of its own
(``projections.accounting.balances``). This projection never calls a target:
``hub.sync.sender`` pushes what is new or changed, so a rebuild recomputes documents and sends
nothing by itself. The sender reads the documents through ``Accounting.documents`` and
``Accounting.last_positions`` (``projections.accounting.queries``): the class is the
``hub.spi.documents.DocumentSource`` the registry finds.

The sync settings and books come from the configuration the runtime hands the projection, read
at start and again when a rebuild starts: after changing the mode or a mapping, ``ledgerhub
rebuild accounting``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar

from hub.domain.documents import Document
from hub.domain.events import RecordedEvent
from hub.domain.facts import Fact
from hub.errors import Unmappable
from hub.spi.config import BooksConfig, SyncSettings
from hub.spi.projection import Connection, Context, Projection
from projections.accounting import queries
from projections.accounting.balances import balance_parts
from projections.accounting.documents import Part, combine, part_of
from projections.ledger import booked_facts
from projections.ledger.links import LINKS, ORDERS, Links
from projections.ledger.posting import Booking, Unbookable

_PARTS = (
    "tenant text NOT NULL, target text NOT NULL, part_key text NOT NULL, doc_key text NOT NULL, "
    "kind text NOT NULL, business_date date NOT NULL, description text NOT NULL, "
    "accounts text[] NOT NULL, currencies text[] NOT NULL, amounts bigint[] NOT NULL, "
    "positions bigint[] NOT NULL, position bigint NOT NULL, customer text, order_ref text, "
    "PRIMARY KEY (tenant, target, part_key), "
    # true because part_key alone is unique; declared for its index, which finds a
    # document's parts without reading every part of the tenant
    "UNIQUE (tenant, target, doc_key, part_key)"
)
_DOCUMENTS = (
    "tenant text NOT NULL, target text NOT NULL, doc_key text NOT NULL, kind text NOT NULL, "
    "business_date date NOT NULL, description text NOT NULL, accounts text[] NOT NULL, "
    "currencies text[] NOT NULL, amounts bigint[] NOT NULL, content_hash text NOT NULL, "
    "idempotency_key text NOT NULL, positions bigint[] NOT NULL, customer text, order_ref text, "
    "PRIMARY KEY (tenant, target, doc_key), "
    # a ``balance`` document's one line states a balance: it moves nothing, so it balances nothing
    "CHECK (kind = 'balance' OR ledgerhub.postings_balanced(currencies, amounts))"
)
# Each statement names one (tenant, target) and a list of keys (``= ANY``): an index scan
# whatever the planner knows of a table a rebuild has just filled (a join to ``unnest`` was
# planned as a scan of the whole table, which made every batch slower than the one before).
_OLD_GROUPS = """
SELECT DISTINCT doc_key FROM {t} WHERE tenant = $1 AND target = $2 AND part_key = ANY($3::text[])
"""
# A batch's rows for one part are folded into one (the latest, carrying every position); the
# positions an older, already-applied row would have been refused for are left out, exactly
# as applying the rows one by one would.
# Rows are written as one array of the table's own row type (asyncpg encodes it, arrays in
# it included): one statement a batch, 20% less time a row than the same upsert per row
# through executemany (measured on documents, PostgreSQL 15). A batch names each key once.
_UPSERT_PART = """
INSERT INTO {t} AS p SELECT * FROM unnest($1::{t}[])
ON CONFLICT (tenant, target, part_key) DO UPDATE SET
    doc_key = excluded.doc_key, kind = excluded.kind, business_date = excluded.business_date,
    description = excluded.description, accounts = excluded.accounts,
    currencies = excluded.currencies, amounts = excluded.amounts, position = excluded.position,
    customer = excluded.customer, order_ref = excluded.order_ref,
    positions = ARRAY(
        SELECT DISTINCT x FROM unnest(
            p.positions
            || ARRAY(SELECT y FROM unnest(excluded.positions) AS y WHERE y >= p.position)
        ) AS x ORDER BY x)
WHERE p.position <= excluded.position
"""
_GROUP_PARTS = """
SELECT * FROM {t} WHERE tenant = $1 AND target = $2 AND doc_key = ANY($3::text[])
"""
_UPSERT_DOCUMENTS = """
INSERT INTO {t} SELECT * FROM unnest($1::{t}[])
ON CONFLICT (tenant, target, doc_key) DO UPDATE SET
    kind = excluded.kind, business_date = excluded.business_date,
    description = excluded.description, accounts = excluded.accounts,
    currencies = excluded.currencies, amounts = excluded.amounts,
    content_hash = excluded.content_hash, positions = excluded.positions,
    customer = excluded.customer, order_ref = excluded.order_ref
"""
_DELETE_DOCUMENTS = """
DELETE FROM {t} WHERE tenant = $1 AND target = $2 AND doc_key = ANY($3::text[])
"""

Group = tuple[str, str, str]
"""(tenant, target, document key)."""


class Accounting(Projection):
    """Parts (one per booked fact) and the documents they sum to, per tenant and target."""

    name: ClassVar[str] = "accounting"
    version: ClassVar[int] = 4
    tables: ClassVar[dict[str, str]] = {
        "parts": _PARTS,
        "documents": _DOCUMENTS,
        # the ledger's memory of orders and what names them (``projections.ledger.links``),
        # so that documents book a payment or refund as the ledger does
        "orders": ORDERS,
        "links": LINKS,
    }

    # the DocumentSource port (hub.spi.documents): what the sender and shadow mode read
    @classmethod
    async def documents(cls, conn: Connection, tenant: str, target: str) -> list[Document]:
        """Every document ``target`` should hold for ``tenant``, invoices first."""
        return await queries.documents(conn, cls.view("documents"), tenant, target)

    @classmethod
    async def last_positions(cls, conn: Connection, tenant: str, target: str) -> dict[str, int]:
        """Document key → the position of the latest event that shaped it."""
        return await queries.last_positions(conn, cls.view("documents"), tenant, target)

    @property
    def books(self) -> BooksConfig:
        """The charts, rules and connection mappings of the configuration in force."""
        return self.config.books

    def settings(self, tenant: str) -> SyncSettings | None:
        """Where and how ``tenant`` syncs (None: nowhere)."""
        return self.config.sync_for(tenant)

    def _settings_of(self) -> Callable[[str], SyncSettings | None]:
        """``settings`` remembered per tenant, for one batch (read per event otherwise, through
        the pydantic ``Config``'s private attributes)."""
        known: dict[str, SyncSettings | None] = {}

        def settings(tenant: str) -> SyncSettings | None:
            if tenant not in known:
                known[tenant] = self.settings(tenant)
            return known[tenant]

        return settings

    def prepare(self, events: Sequence[RecordedEvent]) -> None:
        """Map and book ``events`` ahead (``booked_facts`` remembers it for ``handle``)."""
        books, settings = self.books, self._settings_of()
        for event in events:
            if settings(event.tenant) is not None:
                with contextlib.suppress(Unmappable, Unbookable):
                    booked_facts(books, event)

    async def handle(self, events: Sequence[RecordedEvent], ctx: Context) -> None:
        """Book each event's facts into parts, then recompute every document they touch.

        A fixed number of statements per batch, each touching only the batch's parts and
        documents (found through their indexes), so a batch costs the same however long the
        log already is."""
        booked: list[tuple[RecordedEvent, SyncSettings, list[tuple[str, Fact, Booking]]]] = []
        books, settings = self.books, self._settings_of()
        for event in events:
            chosen = settings(event.tenant)
            if chosen is None:
                continue
            try:
                booked.append((event, chosen, booked_facts(books, event)))
            except (Unmappable, Unbookable):
                continue  # the ledger lists it as unmapped, with the reason
        if not booked:
            return
        # what the log holds about the orders these events name, as the ledger books it
        links = await Links.load(ctx, [(e, [fact for _, fact, _ in b]) for e, _, b in booked])
        latest: dict[tuple[str, str, str], tuple[tuple[Any, ...], list[int]]] = {}
        touched: set[Group] = set()
        for event, chosen, facts in booked:
            try:
                bookings = links.apply(books, event, facts)
            except Unbookable:
                continue
            rows = _part_rows(event, chosen, bookings)
            rows += _balance_rows(books, event, chosen)
            for row in rows:
                key = (row[0], row[1], row[2])
                seen = latest.get(key)
                positions = [event.position] if seen is None else [*seen[1], event.position]
                latest[key] = (row, positions)
                touched.add((row[0], row[1], row[3]))
        await links.save(ctx)
        if not latest:
            return
        parts = ctx.tables["parts"]
        for (tenant, target), keys in _by_book(latest).items():
            old = await ctx.conn.fetch(_OLD_GROUPS.format(t=parts), tenant, target, keys)
            touched.update((tenant, target, r["doc_key"]) for r in old)
        await ctx.conn.execute(
            _UPSERT_PART.format(t=parts),
            [(*row[:10], positions, *row[10:]) for row, positions in latest.values()],
        )
        await _recompute(sorted(touched), ctx)


def _part_rows(
    event: RecordedEvent,
    chosen: SyncSettings,
    bookings: Sequence[tuple[str, str, Fact, Booking]],
) -> list[tuple[Any, ...]]:
    """The ``parts`` rows of what ``event`` books (its own facts and the entries it re-books)."""
    rows: list[tuple[Any, ...]] = []
    for _source, key, fact, booking in bookings:
        head = (event.tenant, chosen.target, key)
        if booking.entry is None:  # books nothing now: an empty part in its own group
            rows.append((*head, key, "none", fact.business_date, "", [], [], [],
                         event.position, None, None))  # fmt: skip
            continue
        part = part_of(chosen.mode, key, fact, booking.entry)
        accounts, currencies, amounts = (list(c) for c in zip(*part.postings, strict=True))
        rows.append((*head, part.group, part.kind, part.business_date, part.description,
                     accounts, currencies, amounts, event.position, part.customer,
                     part.order))  # fmt: skip
    return rows


def _balance_rows(
    books: BooksConfig, event: RecordedEvent, chosen: SyncSettings
) -> list[tuple[Any, ...]]:
    """The ``parts`` rows of the statement balances ``event`` states (each its own document)."""
    rows: list[tuple[Any, ...]] = []
    for key, part in balance_parts(books, event):
        accounts, currencies, amounts = (list(c) for c in zip(*part.postings, strict=True))
        rows.append((event.tenant, chosen.target, key, part.group, part.kind, part.business_date,
                     part.description, accounts, currencies, amounts, event.position, None,
                     None))  # fmt: skip
    return rows


def _by_book(keys: Iterable[tuple[str, str, str]]) -> dict[tuple[str, str], list[str]]:
    """(tenant, target, key) triples as keys per (tenant, target)."""
    found: dict[tuple[str, str], list[str]] = {}
    for tenant, target, key in keys:
        found.setdefault((tenant, target), []).append(key)
    return found


async def _recompute(groups: Sequence[Group], ctx: Context) -> None:
    """Rewrite the documents ``groups`` name from all their parts (one read, two writes)."""
    by_group: dict[Group, list[Any]] = {group: [] for group in groups}
    for (tenant, target), keys in _by_book(groups).items():
        rows = await ctx.conn.fetch(
            _GROUP_PARTS.format(t=ctx.tables["parts"]), tenant, target, keys
        )
        for r in rows:
            by_group[tenant, target, r["doc_key"]].append(r)
    written: list[tuple[Any, ...]] = []
    gone: list[Group] = []
    for group, members in by_group.items():
        row = _document_row(group, members)
        if row is None:
            gone.append(group)
        else:
            written.append(row)
    documents = ctx.tables["documents"]
    for (tenant, target), keys in _by_book(gone).items():
        await ctx.conn.execute(_DELETE_DOCUMENTS.format(t=documents), tenant, target, keys)
    if written:
        await ctx.conn.execute(_UPSERT_DOCUMENTS.format(t=documents), written)


def _document_row(group: Group, rows: Sequence[Any]) -> tuple[Any, ...] | None:
    """The ``documents`` row the parts ``rows`` of ``group`` sum to (None: no document)."""
    tenant, target, key = group
    parts = [
        Part(
            r["doc_key"],
            r["kind"],
            r["business_date"],
            r["description"],
            tuple(zip(r["accounts"], r["currencies"], r["amounts"], strict=True)),
            r["customer"],
            r["order_ref"],
        )
        for r in sorted(rows, key=lambda r: r["part_key"])  # ties in ``combine``: a fixed order
        if r["amounts"]
    ]
    document = combine(tenant, target, key, parts)
    if document is None:
        return None
    positions = sorted({p for r in rows for p in r["positions"]})
    accounts, currencies, amounts = (list(c) for c in zip(*document.postings, strict=True))
    return (
        tenant,
        target,
        key,
        document.kind,
        document.business_date,
        document.description,
        accounts,
        currencies,
        amounts,
        document.content_hash,
        document.idempotency_key,
        positions,
        document.customer,
        document.order,
    )
