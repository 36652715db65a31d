"""Recomputing only what a batch can have changed, so a batch costs the same however long the log
already is.

``reconcile`` is a pure function of everything stored for a (tenant, currency); recomputing all
of it for every batch made a rebuild quadratic in the log. Its three parts each depend on a
bounded neighbourhood of what changed:

- **Deposits** (``reconcile_deposits``): a payout may only be matched to a line its window
  admits (same amount, or a hinted deposit within the tolerance), and the greedy matching never
  looks beyond the pairs it may make, so its answer for a *closed group* (every line each payout
  may take and every payout each line may go to, transitively) is its answer with every row of
  the currency. ``deposit_groups`` finds the closed groups around what a batch touched (its
  payouts and lines, at their old and new dates, and the partners they were matched to), reading
  only the rows within a margin of those dates and widening the margin until the groups close.
- **Duplicates** (``reconcile_duplicates``): a line is a duplicate of the line before it in its
  run of look-alikes, within ``duplicate_window_days``; a line changed on day D can only change
  the answer for lines dated D … D + window, and those only need the lines from D - window.
- **Orders** (``order_exceptions``): an order's exceptions read its own rows, the payments
  naming it, the refunds naming it or those payments, and their documents' sync status; a
  payment naming no order reads itself and its document.

Exceptions are replaced by id for exactly the payouts, lines, orders and payments recomputed.
One thing is read whole: the processors a (tenant, currency)'s facts name (``processors``
table), whose hints make an unmatched deposit an ``unexplained_deposit``; when a batch names a
new one, every line of that currency may change, so that (tenant, currency) is recomputed whole
(``Reconciliation._recompute``: once per processor and currency, at its first fact).
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from hub.spi.projection import Context
from projections.reconciliation.composition import Composition, Movement
from projections.reconciliation.extract import (
    BankRecord,
    MovementRecord,
    OrderRecord,
    PaymentRecord,
    PayoutRecord,
    Record,
    RefundRecord,
)
from projections.reconciliation.matching import window
from projections.reconciliation.reconcile import (
    UNMATCHABLE,
    StoredLine,
    StoredPayout,
    reconcile_deposits,
    reconcile_duplicates,
)
from projections.reconciliation.rows import ExceptionRow, exception_id
from projections.reconciliation.settings import MatchSettings

Key = tuple[str, str]
"""(source, id) of a payout, line, payment or order."""

PAYOUT_KINDS = ("missing_deposit", "amount_mismatch", "composition_mismatch")
LINE_KINDS = ("unexplained_deposit",)
ORDER_KINDS = ("amount_mismatch", "order_unpaid", "document_missing")
PAYMENT_KINDS = ("payment_without_order", "document_missing")


@dataclass
class Seeds:
    """What a batch touched in one (tenant, currency), for the deposit and duplicate parts."""

    payouts: set[Key] = field(default_factory=set)
    lines: set[Key] = field(default_factory=set)
    payout_days: set[date] = field(default_factory=set)
    """Arrival dates (old and new) of the touched payouts."""
    line_days: set[date] = field(default_factory=set)
    """Dates (old and new) of the touched lines."""


def margin(settings: MatchSettings) -> int:
    """Calendar days that bound any payout window on either side of its arrival date (business
    days, weekends and holidays included), with room to spare."""
    return 2 * (settings.window_before + settings.window_after) + 7 + len(settings.holidays)


def clusters(days: Iterable[date], gap: int) -> list[tuple[date, date]]:
    """``days`` as ranges, a new range wherever two days are more than ``gap`` days apart."""
    found: list[tuple[date, date]] = []
    for day in sorted(set(days)):
        if found and (day - found[-1][1]).days <= gap:
            found[-1] = (found[-1][0], day)
        else:
            found.append((day, day))
    return found


def deposit_groups(
    payouts: Sequence[StoredPayout],
    lines: Sequence[StoredLine],
    seeds: Iterable[tuple[str, Key]],
    settings: MatchSettings,
) -> tuple[set[Key], set[Key]]:
    """The payouts and lines connected to ``seeds`` (``("payout" | "line", key)``) by "may be
    matched to" among the rows given (pure; ``incremental`` checks the rows reach far enough)."""
    parent: dict[tuple[str, Key], tuple[str, Key]] = {}

    def find(node: tuple[str, Key]) -> tuple[str, Key]:
        parent.setdefault(node, node)
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    def union(a: tuple[str, Key], b: tuple[str, Key]) -> None:
        parent[find(a)] = find(b)

    dated = sorted((line.business_date, line.source, line.line_id) for line in lines)
    days = [d for d, _, _ in dated]
    by_key = {(line.source, line.line_id): line for line in lines}
    for payout in payouts:
        node = ("payout", (payout.source, payout.payout_id))
        find(node)
        if payout.status in UNMATCHABLE:
            continue
        first, last = window(payout.arrival_date, settings)
        for _, source, line_id in dated[
            bisect.bisect_left(days, first) : bisect.bisect_right(days, last)
        ]:
            line = by_key[source, line_id]
            if _may_match(payout, line, settings):
                union(node, ("line", (source, line_id)))
    for line in lines:
        find(("line", (line.source, line.line_id)))
    roots = {find(seed) for seed in seeds if seed in parent}
    chosen_payouts = {
        key for kind, key in parent if kind == "payout" and find((kind, key)) in roots
    }
    chosen_lines = {key for kind, key in parent if kind == "line" and find((kind, key)) in roots}
    return chosen_payouts, chosen_lines


def _may_match(payout: StoredPayout, line: StoredLine, settings: MatchSettings) -> bool:
    """Whether ``matching.match`` could pair them (the window is the caller's check)."""
    if line.amount_minor == 0 or line.currency != payout.currency:
        return False
    if line.amount_minor == payout.amount_minor:
        return True
    if (line.amount_minor > 0) != (payout.amount_minor > 0):
        return False
    if not settings.hints_at(payout.processor, line.text):
        return False
    return settings.within_tolerance(payout.amount_minor, line.amount_minor - payout.amount_minor)


_PAYOUTS_BETWEEN = """
SELECT * FROM {t} WHERE tenant = $1 AND currency = $2 AND arrival_date BETWEEN $3 AND $4
"""
_LINES_BETWEEN = """
SELECT * FROM {t} WHERE tenant = $1 AND currency = $2 AND business_date BETWEEN $3 AND $4
"""
# Rows are read by key with ``= ANY`` (an index scan whatever the planner knows of a table a
# rebuild has just filled), the pairs then picked in Python: a join to ``unnest`` was planned as
# a scan of the whole table.
_MOVEMENTS_OF = """
SELECT * FROM {t} WHERE tenant = $1 AND source = ANY($2::text[]) AND payout_id = ANY($3::text[])
"""


async def recompute_deposits(
    ctx: Context,
    tenant: str,
    currency: str,
    seeds: Seeds,
    settings: MatchSettings,
    processors: frozenset[str],
    write: Any,
) -> None:
    """Recompute the closed groups of payouts and lines around ``seeds`` and write them
    (``write(payout_results, line_results, exception_ids, exceptions)``)."""
    t = ctx.tables
    reach = margin(settings)
    days = seeds.payout_days | seeds.line_days
    for lo, hi in clusters(days, 2 * reach):
        while True:
            payout_rows = await ctx.conn.fetch(
                _PAYOUTS_BETWEEN.format(t=t["payouts"]),
                tenant, currency, lo - timedelta(days=reach), hi + timedelta(days=reach),
            )  # fmt: skip
            line_rows = await ctx.conn.fetch(
                _LINES_BETWEEN.format(t=t["bank_lines"]),
                tenant, currency, lo - timedelta(days=reach), hi + timedelta(days=reach),
            )  # fmt: skip
            starts = _seed_nodes(seeds, payout_rows, line_rows)
            payouts = [stored_payout(r) for r in payout_rows]
            lines = [stored_line(r) for r in line_rows]
            chosen_payouts, chosen_lines = deposit_groups(payouts, lines, starts, settings)
            spread = [p.arrival_date for p in payouts if (p.source, p.payout_id) in chosen_payouts]
            spread += [x.business_date for x in lines if (x.source, x.line_id) in chosen_lines]
            wider = (min([lo, *spread]), max([hi, *spread]))
            if wider == (lo, hi):
                break
            lo, hi = wider  # a group reaches past the rows read: read further and group again
        group_payouts = [p for p in payouts if (p.source, p.payout_id) in chosen_payouts]
        group_lines = [x for x in lines if (x.source, x.line_id) in chosen_lines]
        movements = await _movements(ctx, tenant, group_payouts)
        outcome = reconcile_deposits(group_payouts, group_lines, movements, settings, processors)
        stale = [
            exception_id(k, p.source, p.payout_id) for p in group_payouts for k in PAYOUT_KINDS
        ]
        stale += [exception_id(k, x.source, x.line_id) for x in group_lines for k in LINE_KINDS]
        await write(outcome.payouts, outcome.lines, stale, outcome.exceptions)


def _seed_nodes(
    seeds: Seeds, payout_rows: Sequence[Any], line_rows: Sequence[Any]
) -> set[tuple[str, Key]]:
    """The seeds among the rows read, with the partners they were matched to before (a payout
    that moves away frees its line, which another payout may now take)."""
    nodes: set[tuple[str, Key]] = {("payout", key) for key in seeds.payouts}
    nodes |= {("line", key) for key in seeds.lines}
    payout_names = {f"{source}/{payout_id}" for source, payout_id in seeds.payouts}
    for row in line_rows:
        matched = row["matched_payout"]
        if matched is None:
            continue
        if matched in payout_names:
            nodes.add(("line", (row["source"], row["line_id"])))
        if (row["source"], row["line_id"]) in seeds.lines:
            source, _, payout_id = matched.partition("/")
            nodes.add(("payout", (source, payout_id)))
    return nodes


async def _movements(
    ctx: Context, tenant: str, payouts: Sequence[StoredPayout]
) -> dict[Key, list[Movement]]:
    """The balance movements of ``payouts`` (those with no summary of their own)."""
    wanted = [p for p in payouts if p.summary is None]
    found: dict[Key, list[Movement]] = defaultdict(list)
    if not wanted:
        return found
    keys = {(p.source, p.payout_id) for p in wanted}
    rows = await _by_keys(ctx, _MOVEMENTS_OF.format(t=ctx.tables["movements"]), tenant, keys)
    for m in rows:
        if (m["source"], m["payout_id"]) not in keys:
            continue
        found[m["source"], m["payout_id"]].append(
            Movement(m["category"], m["amount_minor"], m["fee_minor"])
        )
    return found


async def recompute_duplicates(
    ctx: Context, tenant: str, currency: str, days: Iterable[date], settings: MatchSettings
) -> tuple[list[tuple[Key, str | None]], list[str], list[ExceptionRow]]:
    """For lines changed on ``days``: every line whose duplicate may have changed, with its
    duplicate (None: not one), the ids of their old ``duplicate_bank_line`` exceptions, and
    the new ones."""
    reach = settings.duplicate_window_days
    results: list[tuple[Key, str | None]] = []
    stale: list[str] = []
    flagged: list[ExceptionRow] = []
    for lo, hi in clusters(days, 2 * reach + 1):
        rows = await ctx.conn.fetch(
            _LINES_BETWEEN.format(t=ctx.tables["bank_lines"]),
            tenant, currency, lo - timedelta(days=reach), hi + timedelta(days=reach),
        )  # fmt: skip
        lines = [stored_line(r) for r in rows]
        duplicates, exceptions = reconcile_duplicates(lines, settings)
        changed = {
            (x.source, x.line_id)
            for x in lines
            if lo <= x.business_date <= hi + timedelta(days=reach)
        }
        for key in sorted(changed):
            results.append((key, duplicates.get(key)))
            stale.append(exception_id("duplicate_bank_line", *key))
        flagged += [e for e in exceptions if (e.source, e.reference) in changed]
    return results, stale, flagged


def stored_payout(row: Any) -> StoredPayout:
    """A ``payouts`` row as ``reconcile`` reads it."""
    summary = None if row["summary"] is None else Composition(*row["summary"])
    return StoredPayout(
        row["source"], row["payout_id"], row["processor"], row["currency"], row["amount_minor"],
        row["arrival_date"], row["payout_status"], summary,
    )  # fmt: skip


def stored_line(row: Any) -> StoredLine:
    """A ``bank_lines`` row as ``reconcile`` reads it."""
    return StoredLine(
        row["source"], row["line_id"], row["account"], row["currency"], row["amount_minor"],
        row["business_date"], row["payee"], row["description"],
    )  # fmt: skip


@dataclass
class OrderScope:
    """What a batch touched on one tenant's order side."""

    orders: set[str] = field(default_factory=set)
    """Order ids: orders stated, and those payments and refunds name (old and new)."""
    payments: set[Key] = field(default_factory=set)
    """Payments stated (one naming no order is its own sale, with its own document)."""
    payment_refs: set[str] = field(default_factory=set)
    """Payment ids refunds name (old and new): their orders are touched too."""
    documents: set[str] = field(default_factory=set)
    """Document keys whose sync status changed."""

    def __bool__(self) -> bool:
        return bool(self.orders or self.payments or self.payment_refs or self.documents)


@dataclass(frozen=True)
class OrderRows:
    """The rows the order part reads for a scope: every order, payment and refund that bears on
    the exceptions of its orders and payments, and the documents the target confirmed."""

    orders: list[Any]
    payments: list[Any]
    refunds: list[Any]
    confirmed: frozenset[str] | None

    def stale(self) -> list[str]:
        """The ids any exception of these orders and payments has."""
        ids = [
            exception_id(k, r["source"], r["order_id"]) for r in self.orders for k in ORDER_KINDS
        ]
        ids += [
            exception_id(k, r["source"], r["payment_id"])
            for r in self.payments
            for k in PAYMENT_KINDS
        ]
        return ids

    def currencies(self) -> list[str]:
        """Every currency these rows are in (each is reconciled in it)."""
        found = {r["currency"] for r in (*self.orders, *self.payments, *self.refunds)}
        found |= {r["settled_currency"] for r in self.payments if r["settled_currency"]}
        return sorted(found)


_ORDERS_BY_DOCUMENT = "SELECT order_id FROM {t} WHERE tenant = $1 AND doc_key = ANY($2::text[])"
_PAYMENTS_NAMED = """
SELECT * FROM {t} WHERE tenant = $1 AND source = ANY($2::text[]) AND payment_id = ANY($3::text[])
"""
_PAYMENTS_BY_DOCUMENT = "SELECT * FROM {t} WHERE tenant = $1 AND doc_key = ANY($2::text[])"
_ORDER_REFS_OF_PAYMENTS = """
SELECT DISTINCT order_ref FROM {t}
WHERE tenant = $1 AND payment_id = ANY($2::text[]) AND order_ref IS NOT NULL
"""
_ORDERS_OF = "SELECT * FROM {t} WHERE tenant = $1 AND order_id = ANY($2::text[])"
_PAYMENTS_FOR = "SELECT * FROM {t} WHERE tenant = $1 AND order_ref = ANY($2::text[])"
_REFUNDS_FOR = """
SELECT * FROM {t} WHERE tenant = $1 AND status = 'succeeded'
  AND (order_ref = ANY($2::text[]) OR payment_ref = ANY($3::text[]))
"""
_CONFIRMED = """
SELECT doc_key FROM {t}
WHERE tenant = $1 AND target = $2 AND status = 'synced' AND doc_key = ANY($3::text[])
"""


async def order_rows(ctx: Context, tenant: str, scope: OrderScope, target: str | None) -> OrderRows:
    """What the order part reads for ``scope`` (``target``: the tenant's sync target, None:
    it syncs nowhere, so no document is expected)."""
    t = ctx.tables
    orders = set(scope.orders)
    documents = sorted(scope.documents)
    if documents:
        found = await ctx.conn.fetch(_ORDERS_BY_DOCUMENT.format(t=t["orders"]), tenant, documents)
        orders |= {r["order_id"] for r in found}
    named = [
        r
        for r in await _by_keys(
            ctx, _PAYMENTS_NAMED.format(t=t["payments"]), tenant, scope.payments
        )
        if (r["source"], r["payment_id"]) in scope.payments
    ]
    if documents:
        named += await ctx.conn.fetch(
            _PAYMENTS_BY_DOCUMENT.format(t=t["payments"]), tenant, documents
        )
    orders |= {r["order_ref"] for r in named if r["order_ref"] is not None}
    if scope.payment_refs:
        found = await ctx.conn.fetch(
            _ORDER_REFS_OF_PAYMENTS.format(t=t["payments"]), tenant, sorted(scope.payment_refs)
        )
        orders |= {r["order_ref"] for r in found}
    order_ids = sorted(orders)
    order_rows = await ctx.conn.fetch(_ORDERS_OF.format(t=t["orders"]), tenant, order_ids)
    paying = await ctx.conn.fetch(_PAYMENTS_FOR.format(t=t["payments"]), tenant, order_ids)
    payments = {(r["source"], r["payment_id"]): r for r in (*named, *paying)}
    refunds = await ctx.conn.fetch(
        _REFUNDS_FOR.format(t=t["refunds"]),
        tenant,
        order_ids,
        sorted({payment_id for _, payment_id in payments}),
    )
    confirmed: frozenset[str] | None = None
    if target is not None:
        keys = sorted(
            {r["doc_key"] for r in (*order_rows, *payments.values()) if r["doc_key"] is not None}
        )
        rows = await ctx.conn.fetch(_CONFIRMED.format(t=t["documents"]), tenant, target, keys)
        confirmed = frozenset(r["doc_key"] for r in rows)
    return OrderRows(list(order_rows), list(payments.values()), list(refunds), confirmed)


_BEFORE = {
    "payouts": ("payout_id", "currency, arrival_date"),
    "bank_lines": ("line_id", "currency, business_date"),
    "movements": ("txn_id", "payout_id"),
    "payments": ("payment_id", "order_ref"),
}
_BEFORE_SQL = """
SELECT source, {id} AS id, {columns} FROM {t}
WHERE tenant = $1 AND source = ANY($2::text[]) AND {id} = ANY($3::text[])
"""
_REFUNDS_BEFORE = """
SELECT source, refund_id, side, order_ref, payment_ref FROM {t}
WHERE tenant = $1 AND source = ANY($2::text[]) AND refund_id = ANY($3::text[])
"""
_PAYOUT_DAYS = """
SELECT source, payout_id, currency, arrival_date FROM {t}
WHERE tenant = $1 AND source = ANY($2::text[]) AND payout_id = ANY($3::text[])
"""


async def _by_keys(ctx: Context, sql: str, tenant: str, keys: Iterable[Key]) -> list[Any]:
    """``sql`` (tenant, sources, ids) for the (source, id) ``keys``; rows of other pairs of
    those sources and ids come back too, for the caller to leave out."""
    pairs = set(keys)
    if not pairs:
        return []
    sources = sorted({source for source, _ in pairs})
    ids = sorted({id_ for _, id_ in pairs})
    return list(await ctx.conn.fetch(sql, tenant, sources, ids))


@dataclass
class Touched:
    """What one tenant's part of a batch stated, and what it replaced (``read_before``)."""

    seen: bool = False
    """Whether the batch had anything for the tenant at all."""
    payouts: dict[Key, tuple[str, date]] = field(default_factory=dict)
    """Payout → (currency, arrival date), new and (after ``read_before``) old."""
    lines: dict[Key, tuple[str, date]] = field(default_factory=dict)
    """Line → (currency, date)."""
    movements: dict[Key, str | None] = field(default_factory=dict)
    """Balance movement → the payout carrying it (None: not paid out yet)."""
    refunds: set[tuple[str, str, str]] = field(default_factory=set)
    processors: set[tuple[str, str]] = field(default_factory=set)
    """(currency, processor) named by the batch's payouts, movements and payments."""
    orders: OrderScope = field(default_factory=OrderScope)
    before: list[tuple[str, Key, tuple[str, date]]] = field(default_factory=list)
    """("payout" | "line", key, (currency, date)) as stored before the batch."""
    payout_ids: set[Key] = field(default_factory=set)
    """Payouts whose balance movements changed (old and new payout)."""

    def add(self, source: str, record: Record) -> None:
        """Note a record of an event from ``source``."""
        match record:
            case PayoutRecord(payout=p):
                self.payouts[source, p.payout_id] = (p.amount.currency, p.arrival_date)
                self.processors.add((p.amount.currency, p.processor))
            case BankRecord(line=line):
                self.lines[source, line.line_id] = (line.amount.currency, line.business_date)
            case MovementRecord(movement=m):
                self.movements[source, m.movement_id] = m.payout_id
                self.processors.add((m.amount.currency, m.processor))
                if m.payout_id:
                    self.payout_ids.add((source, m.payout_id))
            case OrderRecord(sale=sale):
                self.orders.orders.add(sale.order_id)
            case PaymentRecord(payment=pay):
                self.orders.payments.add((source, pay.payment_id))
                if pay.order_ref is not None:
                    self.orders.orders.add(pay.order_ref)
                self.processors.add((pay.gross.currency, pay.processor))
                if pay.settled is not None:
                    self.processors.add((pay.settled.currency, pay.processor))
            case RefundRecord(refund=refund):
                side = "order" if refund.processor is None else "processor"
                self.refunds.add((source, refund.refund_id, side))
                if refund.order_ref is not None:
                    self.orders.orders.add(refund.order_ref)
                if refund.payment_ref is not None:
                    self.orders.payment_refs.add(refund.payment_ref)
            case _:
                pass  # resolutions are joined when read

    async def read_before(self, ctx: Context, tenant: str) -> None:
        """Read what the batch's rows held before it is stored: a changed row must be
        recomputed where it was as well as where it is."""
        t = ctx.tables
        for table, keys in (("payouts", self.payouts), ("bank_lines", self.lines)):
            if not keys:
                continue
            id_column, columns = _BEFORE[table]
            sql = _BEFORE_SQL.format(t=t[table], id=id_column, columns=columns)
            rows = [r for r in await _by_keys(ctx, sql, tenant, keys) if (r[0], r[1]) in keys]
            kind = "payout" if table == "payouts" else "line"
            day = "arrival_date" if table == "payouts" else "business_date"
            self.before += [(kind, (r["source"], r["id"]), (r["currency"], r[day])) for r in rows]
        if self.movements:
            id_column, columns = _BEFORE["movements"]
            sql = _BEFORE_SQL.format(t=t["movements"], id=id_column, columns=columns)
            rows = [
                r
                for r in await _by_keys(ctx, sql, tenant, self.movements)
                if (r[0], r[1]) in self.movements
            ]
            self.payout_ids |= {(r["source"], r["payout_id"]) for r in rows if r["payout_id"]}
        if self.orders.payments:
            id_column, columns = _BEFORE["payments"]
            sql = _BEFORE_SQL.format(t=t["payments"], id=id_column, columns=columns)
            paid = self.orders.payments
            rows = [r for r in await _by_keys(ctx, sql, tenant, paid) if (r[0], r[1]) in paid]
            self.orders.orders |= {r["order_ref"] for r in rows if r["order_ref"] is not None}
        if self.refunds:
            sql = _REFUNDS_BEFORE.format(t=t["refunds"])
            pairs = {(source, refund_id) for source, refund_id, _ in self.refunds}
            rows = [
                r
                for r in await _by_keys(ctx, sql, tenant, pairs)
                if (r["source"], r["refund_id"], r["side"]) in self.refunds
            ]
            self.orders.orders |= {r["order_ref"] for r in rows if r["order_ref"] is not None}
            self.orders.payment_refs |= {
                r["payment_ref"] for r in rows if r["payment_ref"] is not None
            }

    async def seeds(self, ctx: Context, tenant: str) -> dict[str, Seeds]:
        """Per currency, the payouts and lines to recompute around (once the batch is stored)."""
        found: dict[str, Seeds] = defaultdict(Seeds)
        for key, (currency, day) in self.payouts.items():
            found[currency].payouts.add(key)
            found[currency].payout_days.add(day)
        for key, (currency, day) in self.lines.items():
            found[currency].lines.add(key)
            found[currency].line_days.add(day)
        for kind, key, (currency, day) in self.before:
            if kind == "payout":
                found[currency].payouts.add(key)
                found[currency].payout_days.add(day)
            else:
                found[currency].lines.add(key)
                found[currency].line_days.add(day)
        carried = self.payout_ids - set(self.payouts)
        if carried:
            sql = _PAYOUT_DAYS.format(t=ctx.tables["payouts"])
            for r in await _by_keys(ctx, sql, tenant, carried):
                if (r["source"], r["payout_id"]) not in carried:
                    continue
                found[r["currency"]].payouts.add((r["source"], r["payout_id"]))
                found[r["currency"]].payout_days.add(r["arrival_date"])
        return found
