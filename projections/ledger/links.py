"""What the ledger remembers about orders, so that a payment or refund naming one is booked
against what the log holds (``projections.ledger.posting.Known``).

Two tables of the ledger's own, keyed by tenant:

- ``orders``: every order (``Sale``) the log holds, with the figures a refund is split by;
- ``links``: every payment naming an order, and every refund that names one or the payment it
  returns, with its fact and the order it resolves to (a processor refund naming only its
  payment is resolved through the payment's ``order_ref``).

An event about an order (its sale, a payment or refund of it) re-books every linked entry of
that order with what is now known, at the event's position, under the entry's own key and
source: a payment booked to unapplied payments before its order arrived moves to the
receivable; a processor refund booked with the order side (refunds, sales tax, shipping)
before the shop reported the refund gives that part to the shop's refund, and back. Events
are applied in position order, so a rebuild books exactly what the live ledger booked.

A shop's order payload may list a refund by its total only, again with every later change of
the order: a shop-side refund restated without a split, for the same amount and status, keeps
the fact first remembered (its split if a refund object stated one, and its date).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import TypeAdapter

from hub.domain.events import RecordedEvent
from hub.domain.facts import Fact, Payment, Refund, Sale
from hub.domain.money import Money
from hub.spi.config import BooksConfig
from hub.spi.projection import Context
from projections.ledger.posting import Booking, OrderFigures, Unbookable, book

Side = Literal["payment", "shop_refund", "processor_refund"]

ORDERS = (
    "tenant text NOT NULL, order_id text NOT NULL, currency text NOT NULL, "
    "total bigint NOT NULL, tax bigint NOT NULL, shipping bigint NOT NULL, "
    "position bigint NOT NULL, PRIMARY KEY (tenant, order_id)"
)
LINKS = (
    "tenant text NOT NULL, entry_key text NOT NULL, source text NOT NULL, side text NOT NULL, "
    "order_ref text, payment_id text, payment_ref text, fact jsonb NOT NULL, "
    "position bigint NOT NULL, PRIMARY KEY (tenant, entry_key), "
    # the unique constraints are the indexes the lookups below use
    "UNIQUE (tenant, order_ref, entry_key), UNIQUE (tenant, payment_id, entry_key), "
    "UNIQUE (tenant, payment_ref, entry_key)"
)

_FACT: TypeAdapter[Fact] = TypeAdapter(Fact)
_BOOKED = ("succeeded", "pending")

_SELECT_ORDERS = (
    "SELECT order_id, currency, total, tax, shipping, position FROM {t} "
    "WHERE tenant = $1 AND order_id = ANY($2::text[])"
)
_SELECT_LINKS = (
    "SELECT entry_key, source, side, order_ref, fact::text AS fact, position FROM {t} "
    "WHERE tenant = $1 AND (order_ref = ANY($2::text[]) OR payment_id = ANY($3::text[]) "
    "OR payment_ref = ANY($3::text[]))"
)
# Each as one array of the table's own row type, in its columns' order (one statement a
# batch; a batch names each key once).
_UPSERT_ORDERS = """
INSERT INTO {t} AS o SELECT * FROM unnest($1::{t}[])
ON CONFLICT (tenant, order_id) DO UPDATE SET currency = excluded.currency,
    total = excluded.total, tax = excluded.tax, shipping = excluded.shipping,
    position = excluded.position
WHERE o.position <= excluded.position
"""
_UPSERT_LINKS = """
INSERT INTO {t} AS l SELECT * FROM unnest($1::{t}[])
ON CONFLICT (tenant, entry_key) DO UPDATE SET source = excluded.source, side = excluded.side,
    order_ref = excluded.order_ref, payment_id = excluded.payment_id,
    payment_ref = excluded.payment_ref, fact = excluded.fact, position = excluded.position
WHERE l.position <= excluded.position
"""


@dataclass
class Link:
    """A payment or refund whose booking depends on its order."""

    key: str
    source: str
    side: Side
    fact: Payment | Refund
    order_ref: str | None
    position: int

    @property
    def payment_id(self) -> str | None:
        return self.fact.payment_id if isinstance(self.fact, Payment) else None

    @property
    def payment_ref(self) -> str | None:
        return self.fact.payment_ref if isinstance(self.fact, Refund) else None


def _side(fact: Fact) -> Side | None:
    match fact:
        case Payment() if fact.order_ref is not None:
            return "payment"
        case Refund() if fact.processor is None:
            return "shop_refund" if fact.order_ref is not None else None
        case Refund() if fact.order_ref is not None or fact.payment_ref is not None:
            return "processor_refund"
    return None


@dataclass
class TenantLinks:
    """One tenant's orders and links, as loaded for a batch and changed by it.

    ``links`` is changed only through ``put`` and ``refer``, which keep it indexed by the order
    each link resolves to and by the payment ids its payments and processor refunds name: what
    an event asks of them is found by key, however many links its batch loaded."""

    tenant: str
    orders: dict[str, tuple[OrderFigures, int]] = field(default_factory=dict)
    links: dict[str, Link] = field(default_factory=dict)
    changed_orders: set[str] = field(default_factory=set)
    changed_links: set[str] = field(default_factory=set)
    _of_order: dict[str, set[str]] = field(default_factory=dict)
    """order_ref → the keys of the links resolving to it."""
    _payments: dict[str, set[str]] = field(default_factory=dict)
    """payment_id → the keys of the payment links naming it."""
    _refunds: dict[str, set[str]] = field(default_factory=dict)
    """payment_ref → the keys of the processor refund links naming it."""

    def put(self, link: Link) -> None:
        """Hold ``link`` (replacing the link of its key, which keeps its place)."""
        held = self.links.get(link.key)
        if held is not None:
            self._unindex(held)
        self.links[link.key] = link
        self._index(link)

    def refer(self, link: Link, ref: str | None) -> None:
        """Resolve the held ``link`` to the order ``ref``."""
        self._unindex(link)
        link.order_ref = ref
        self._index(link)

    def _index(self, link: Link) -> None:
        if link.order_ref is not None:
            self._of_order.setdefault(link.order_ref, set()).add(link.key)
        payment_id, payment_ref = link.payment_id, link.payment_ref
        if link.side == "payment" and payment_id is not None:
            self._payments.setdefault(payment_id, set()).add(link.key)
        if link.side == "processor_refund" and payment_ref is not None:
            self._refunds.setdefault(payment_ref, set()).add(link.key)

    def _unindex(self, link: Link) -> None:
        if link.order_ref is not None:
            self._of_order.get(link.order_ref, set()).discard(link.key)
        payment_id, payment_ref = link.payment_id, link.payment_ref
        if link.side == "payment" and payment_id is not None:
            self._payments.get(payment_id, set()).discard(link.key)
        if link.side == "processor_refund" and payment_ref is not None:
            self._refunds.get(payment_ref, set()).discard(link.key)

    # ------------------------------------------------------------------ Known
    def order(self, ref: str) -> OrderFigures | None:
        """The figures of the order ``ref`` names, None when the log does not hold it."""
        found = self.orders.get(ref)
        return None if found is None else found[0]

    def order_of(self, fact: Refund) -> str | None:
        """A refund's own ``order_ref``, else the order its payment names."""
        if fact.order_ref is not None:
            return fact.order_ref
        paying = self._payments.get(fact.payment_ref) if fact.payment_ref is not None else None
        if not paying:
            return None
        # the payment held first, as a walk of ``links`` in order would find it
        first = min(paying, key=self._place) if len(paying) > 1 else next(iter(paying))
        return self.links[first].order_ref

    def _place(self, key: str) -> int:
        return list(self.links).index(key)

    def uncovered(self, key: str, fact: Refund) -> Money:
        """What of the processor refund ``key`` the order's shop-side refunds do not state:
        their total covers the order's processor refunds in key order."""
        currency = fact.amount.currency
        refunds = [
            (link.key, link.side, link.fact)
            for link in self._of(self.order_of(fact))
            if isinstance(link.fact, Refund)
            and link.fact.amount.currency == currency
            and link.fact.status in _BOOKED
        ]
        stated = sum(f.amount.minor for _, side, f in refunds if side == "shop_refund")
        for other, side, f in sorted(refunds, key=lambda found: found[0]):
            if side != "processor_refund":
                continue
            covered = min(stated, f.amount.minor)
            stated -= covered
            if other == key:
                return Money.of(fact.amount.minor - covered, currency)
        return fact.amount

    def _of(self, ref: str | None) -> list[Link]:
        if ref is None:
            return []
        return [self.links[key] for key in self._of_order.get(ref, ())]

    # ------------------------------------------------------------------ changes
    def take(self, event: RecordedEvent, key: str, fact: Fact) -> set[str]:
        """Remember what ``fact`` (entry ``key`` of ``event``) says; the orders it touches."""
        if isinstance(fact, Sale):
            held = self.orders.get(fact.order_id)
            if held is None or held[1] <= event.position:
                self.orders[fact.order_id] = (OrderFigures.of(fact), event.position)
                self.changed_orders.add(fact.order_id)
            return {fact.order_id}
        if not isinstance(fact, Payment | Refund):
            return set()
        held_link = self.links.get(key)
        side = _side(fact) or (held_link.side if held_link is not None else None)
        if side is None or (held_link is not None and held_link.position > event.position):
            return set()  # not about an order, or older than what is held
        # (a held link whose fact no longer names an order is kept, naming none: never re-booked)
        if (
            isinstance(fact, Refund)
            and held_link is not None
            and isinstance(held_link.fact, Refund)
            and fact.processor is None
            and fact.tax is None
            and held_link.fact.amount == fact.amount
            and held_link.fact.status == fact.status
        ):
            fact = held_link.fact  # a listing by total only: the refund as first stated stands
        ref = fact.order_ref if isinstance(fact, Payment) else self.order_of(fact)
        self.put(Link(key, event.source, side, fact, ref, event.position))
        self.changed_links.add(key)
        touched = {r for r in (ref, held_link.order_ref if held_link else None) if r}
        if isinstance(fact, Payment):  # refunds of this payment now know their order
            for other in sorted(self._refunds.get(fact.payment_id, ())):
                link = self.links[other]
                own_ref = link.fact.order_ref if isinstance(link.fact, Refund) else None
                if own_ref is None and link.order_ref != ref:
                    self.refer(link, ref)
                    self.changed_links.add(link.key)
                if ref:
                    touched.add(ref)
        return touched

    def fact(self, key: str, fact: Fact) -> Fact:
        """The fact to book under ``key``: the remembered one (a kept split) when linked."""
        link = self.links.get(key)
        return link.fact if link is not None and _side(fact) is not None else fact

    def linked(self, refs: Iterable[str]) -> list[Link]:
        """Every link of the orders ``refs``, in key order."""
        keys = {key for ref in set(refs) for key in self._of_order.get(ref, ())}
        return [self.links[key] for key in sorted(keys)]


class Links:
    """The orders and links of the tenants of one batch (``load``, then ``apply`` each event
    in position order, then ``save``)."""

    def __init__(self, tenants: dict[str, TenantLinks]) -> None:
        self.tenants = tenants

    @classmethod
    async def load(
        cls, ctx: Context, batch: Sequence[tuple[RecordedEvent, Sequence[Fact]]]
    ) -> Links:
        """What the stored tables hold about the orders and payments ``batch`` names."""
        refs: dict[str, set[str]] = {}
        payments: dict[str, set[str]] = {}
        for event, facts in batch:
            for fact in facts:
                mine = refs.setdefault(event.tenant, set())
                paid = payments.setdefault(event.tenant, set())
                match fact:
                    case Sale():
                        mine.add(fact.order_id)
                    case Payment():
                        paid.add(fact.payment_id)
                        if fact.order_ref is not None:
                            mine.add(fact.order_ref)
                    case Refund():
                        if fact.order_ref is not None:
                            mine.add(fact.order_ref)
                        if fact.payment_ref is not None:
                            paid.add(fact.payment_ref)
        tenants = {tenant: TenantLinks(tenant) for tenant in refs}
        for tenant, state in tenants.items():
            wanted, loaded = set(refs[tenant]), set[str]()
            pids = sorted(payments[tenant])
            while wanted - loaded or pids:  # links found may name orders not asked for yet
                asked = sorted(wanted - loaded)
                loaded |= wanted
                await _fetch(ctx, state, asked, pids)
                pids = []
                wanted |= {link.order_ref for link in state.links.values() if link.order_ref}
        return cls(tenants)

    def apply(
        self, books: BooksConfig, event: RecordedEvent, booked: Sequence[tuple[str, Fact, Booking]]
    ) -> list[tuple[str, str, Fact, Booking]]:
        """``(source, key, fact, booking)`` for ``event``'s own facts (``booked``, what each
        books without knowing the log) and every entry of the orders it touches, booked with
        what is known now. ``Unbookable`` names a missing role."""
        state = self.tenants[event.tenant]
        touched: set[str] = set()
        for key, fact, _ in booked:
            touched |= state.take(event, key, fact)
        tenant = books.tenant(event.tenant)
        connection = books.connection(event.source)
        assert connection is not None  # booked_facts mapped it
        out: list[tuple[str, str, Fact, Booking]] = []
        own = set()
        for key, fact, booking in booked:
            own.add(key)
            if _side(fact) is not None:
                fact = state.fact(key, fact)
                booking = book(fact, tenant, connection, state, key)
            out.append((event.source, key, fact, booking))
        for link in state.linked(touched):
            if link.key in own:
                continue
            other = books.connection(link.source)
            if other is None:
                continue
            try:
                booking = book(link.fact, tenant, other, state, link.key)
                out.append((link.source, link.key, link.fact, booking))
            except Unbookable:
                continue  # its own event was listed as unmapped with the reason
        return out

    async def save(self, ctx: Context) -> None:
        """Write the orders and links the batch changed."""
        orders: list[tuple[Any, ...]] = []
        links: list[tuple[Any, ...]] = []
        for tenant, state in self.tenants.items():
            for ref in sorted(state.changed_orders):
                figures, position = state.orders[ref]
                orders.append((tenant, ref, figures.total.currency, figures.total.minor,
                               figures.tax.minor, figures.shipping.minor, position))  # fmt: skip
            for key in sorted(state.changed_links):
                link = state.links[key]
                links.append((tenant, key, link.source, link.side, link.order_ref,
                              link.payment_id, link.payment_ref, link.fact.model_dump_json(),
                              link.position))  # fmt: skip
        if orders:
            await ctx.conn.execute(_UPSERT_ORDERS.format(t=ctx.tables["orders"]), orders)
        if links:
            await ctx.conn.execute(_UPSERT_LINKS.format(t=ctx.tables["links"]), links)


async def _fetch(ctx: Context, state: TenantLinks, refs: list[str], payments: list[str]) -> None:
    rows = await ctx.conn.fetch(_SELECT_ORDERS.format(t=ctx.tables["orders"]), state.tenant, refs)
    for r in rows:
        figures = OrderFigures(
            Money.of(r["total"], r["currency"]),
            Money.of(r["tax"], r["currency"]),
            Money.of(r["shipping"], r["currency"]),
        )
        state.orders.setdefault(r["order_id"], (figures, r["position"]))
    rows = await ctx.conn.fetch(
        _SELECT_LINKS.format(t=ctx.tables["links"]), state.tenant, refs, payments
    )
    for r in rows:
        fact = _FACT.validate_json(r["fact"])
        assert isinstance(fact, Payment | Refund)
        if r["entry_key"] not in state.links:
            state.put(
                Link(r["entry_key"], r["source"], r["side"], fact, r["order_ref"], r["position"])
            )
