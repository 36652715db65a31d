"""``reconciliation``: payouts ↔ bank deposits, payout composition, duplicate bank lines and
the exceptions an analyst acts on.

It reads canonical facts only (``extract``: each event through its connection's mapper): payouts
(with the processor's own statement of their composition, when given), bank lines, orders,
payments, refunds and the processors' balance movements. No processor is named here: a new
processor's connector, whose mapper states those facts, is reconciled like Stripe or Shopify.

The handler stores candidates (payouts, bank lines, balance movements, orders, payments,
refunds, resolutions) keyed by their own ids (a later position replaces an earlier one;
replaying changes nothing), then recomputes every (tenant, currency) the batch touched from
everything stored for it (``reconcile``). So the result does not depend on the order events
reached the log (a deposit may be logged before its payout), and a rebuild writes identical rows.

"Now" is never read while handling: a payout with no deposit is stored ``unmatched`` with the
last day of its window (``window_end``) and the tenant's time zone, and the read side
(``queries``, the ``ledgerhub_views`` views) calls it ``pending`` while that day has not passed
in the tenant's time zone and ``missing_deposit`` after; its ``missing_deposit`` exception row
carries the same day as ``due_date`` and is listed only after it.

Resolutions are events (``reconciliation.exception.resolved`` / ``.reopened`` from a source
``reconciliation:<who>``), so they survive a rebuild; they are kept apart from the exceptions and
joined when read (a resolution may even precede its exception in the log).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import date
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from hub.domain.events import RecordedEvent
from hub.domain.facts import Fact
from hub.domain.money import Money
from hub.spi.config import BooksConfig, SyncSettings
from hub.spi.projection import Context, Projection, View
from projections.accounting.documents import document_key
from projections.reconciliation.composition import Composition, Movement, from_statement
from projections.reconciliation.extract import (
    REOPENED,
    RESOLVED,
    BankRecord,
    MovementRecord,
    OrderRecord,
    PaymentRecord,
    PayoutRecord,
    RefundRecord,
    ResolutionRecord,
    facts_of,
    records,
)
from projections.reconciliation.incremental import (
    OrderRows,
    Touched,
    order_rows,
    recompute_deposits,
    recompute_duplicates,
    stored_line,
    stored_payout,
)
from projections.reconciliation.inspect import ReconciliationInspection
from projections.reconciliation.orders import (
    StoredOrder,
    StoredPayment,
    StoredRefund,
    order_exceptions,
)
from projections.reconciliation.queries import VIEWS
from projections.reconciliation.reconcile import LineResult, Outcome, PayoutResult, reconcile
from projections.reconciliation.reports import ReconciliationReports
from projections.reconciliation.rows import ExceptionRow
from projections.reconciliation.settings import MatchSettings

if TYPE_CHECKING:
    from hub.spi.http import ApiRoute

log = logging.getLogger(__name__)

_COMPOSITION = (
    "gross_minor bigint, refunds_minor bigint, fees_minor bigint, disputes_minor bigint, "
    "adjustments_minor bigint"
)
_PAYOUTS = (
    "tenant text NOT NULL, source text NOT NULL, payout_id text NOT NULL, "
    "processor text NOT NULL, currency text NOT NULL, amount_minor bigint NOT NULL, "
    "arrival_date date NOT NULL, payout_status text NOT NULL, summary bigint[], "
    f"{_COMPOSITION}, match_state text NOT NULL DEFAULT 'unmatched', bank_line text, "
    "difference_minor bigint, window_start date, window_end date, timezone text NOT NULL, "
    "position bigint NOT NULL, PRIMARY KEY (tenant, source, payout_id), "
    # Each UNIQUE below extends a table's key (so it holds trivially) and is declared for its
    # index: the incremental recompute reads rows by date, order or document, never whole.
    "UNIQUE (tenant, currency, arrival_date, source, payout_id)"
)
_BANK_LINES = (
    "tenant text NOT NULL, source text NOT NULL, line_id text NOT NULL, account text, "
    "currency text NOT NULL, amount_minor bigint NOT NULL, business_date date NOT NULL, "
    "payee text, description text, matched_payout text, duplicate_of text, "
    "position bigint NOT NULL, PRIMARY KEY (tenant, source, line_id), "
    "UNIQUE (tenant, currency, business_date, source, line_id)"
)
_MOVEMENTS = (
    "tenant text NOT NULL, source text NOT NULL, txn_id text NOT NULL, "
    "payout_id text, currency text NOT NULL, category text NOT NULL, "
    "amount_minor bigint NOT NULL, fee_minor bigint NOT NULL, net_minor bigint NOT NULL, "
    "business_date date NOT NULL, processor text NOT NULL, position bigint NOT NULL, "
    "PRIMARY KEY (tenant, source, txn_id), UNIQUE (tenant, source, payout_id, txn_id)"
)
_TENANTS = "tenant text PRIMARY KEY, timezone text NOT NULL, tieout_grace_days integer NOT NULL"
_ORDERS = (
    "tenant text NOT NULL, source text NOT NULL, order_id text NOT NULL, number text, "
    "status text NOT NULL, currency text NOT NULL, total_minor bigint NOT NULL, "
    "business_date date NOT NULL, line_count integer NOT NULL, doc_key text, "
    "position bigint NOT NULL, PRIMARY KEY (tenant, source, order_id), "
    "UNIQUE (tenant, order_id, source), UNIQUE (tenant, doc_key, source, order_id)"
)
_PAYMENTS = (
    "tenant text NOT NULL, source text NOT NULL, payment_id text NOT NULL, "
    "processor text NOT NULL, order_ref text, currency text NOT NULL, "
    "gross_minor bigint NOT NULL, fee_minor bigint, business_date date NOT NULL, "
    "balance_transaction text, payout_id text, settled_currency text, settled_minor bigint, "
    "doc_key text, position bigint NOT NULL, "
    "PRIMARY KEY (tenant, source, payment_id), UNIQUE (tenant, order_ref, source, payment_id), "
    "UNIQUE (tenant, payment_id, source), UNIQUE (tenant, doc_key, source, payment_id)"
)
_REFUNDS = (
    "tenant text NOT NULL, source text NOT NULL, refund_id text NOT NULL, side text NOT NULL, "
    "status text NOT NULL, order_ref text, payment_ref text, currency text NOT NULL, "
    "amount_minor bigint NOT NULL, position bigint NOT NULL, "
    "PRIMARY KEY (tenant, source, refund_id, side), "
    "UNIQUE (tenant, order_ref, source, refund_id, side), "
    "UNIQUE (tenant, payment_ref, source, refund_id, side)"
)
_PROCESSORS = (
    "tenant text NOT NULL, currency text NOT NULL, processor text NOT NULL, "
    "PRIMARY KEY (tenant, currency, processor)"
)
_DOCUMENTS = (
    "tenant text NOT NULL, target text NOT NULL, doc_key text NOT NULL, status text NOT NULL, "
    "target_id text, position bigint NOT NULL, PRIMARY KEY (tenant, target, doc_key)"
)
_EXCEPTIONS = (
    "tenant text NOT NULL, id text NOT NULL, kind text NOT NULL, source text NOT NULL, "
    "reference text NOT NULL, currency text NOT NULL, amount_minor bigint NOT NULL, "
    "difference_minor bigint, detail text NOT NULL, due_date date, timezone text NOT NULL, "
    "PRIMARY KEY (tenant, id)"
)
_RESOLUTIONS = (
    "tenant text NOT NULL, exception_id text NOT NULL, resolved boolean NOT NULL, "
    "reason text NOT NULL, resolved_at timestamptz NOT NULL, position bigint NOT NULL, "
    "PRIMARY KEY (tenant, exception_id)"
)

_UPSERT_PAYOUT = """
INSERT INTO {t} AS p (tenant, source, payout_id, processor, currency, amount_minor,
                      arrival_date, payout_status, summary, timezone, position)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
ON CONFLICT (tenant, source, payout_id) DO UPDATE SET
    processor = excluded.processor, currency = excluded.currency,
    amount_minor = excluded.amount_minor, arrival_date = excluded.arrival_date,
    payout_status = excluded.payout_status, summary = excluded.summary,
    timezone = excluded.timezone, position = excluded.position
WHERE p.position <= excluded.position
"""
_UPSERT_LINE = """
INSERT INTO {t} AS b (tenant, source, line_id, account, currency, amount_minor, business_date,
                      payee, description, position)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (tenant, source, line_id) DO UPDATE SET
    account = excluded.account, currency = excluded.currency,
    amount_minor = excluded.amount_minor, business_date = excluded.business_date,
    payee = excluded.payee, description = excluded.description, position = excluded.position
WHERE b.position <= excluded.position
"""
_UPSERT_MOVEMENT = """
INSERT INTO {t} AS m (tenant, source, txn_id, payout_id, currency, category, amount_minor,
                      fee_minor, net_minor, business_date, processor, position)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
ON CONFLICT (tenant, source, txn_id) DO UPDATE SET
    payout_id = coalesce(excluded.payout_id, m.payout_id), currency = excluded.currency,
    category = excluded.category, amount_minor = excluded.amount_minor,
    fee_minor = excluded.fee_minor, net_minor = excluded.net_minor,
    business_date = excluded.business_date, processor = excluded.processor,
    position = excluded.position
WHERE m.position <= excluded.position
"""
_UPSERT_TENANT = """
INSERT INTO {t} (tenant, timezone, tieout_grace_days) VALUES ($1, $2, $3)
ON CONFLICT (tenant) DO UPDATE SET
    timezone = excluded.timezone, tieout_grace_days = excluded.tieout_grace_days
"""
_UPSERT_ORDER = """
INSERT INTO {t} AS o (tenant, source, order_id, number, status, currency, total_minor,
                      business_date, line_count, doc_key, position)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
ON CONFLICT (tenant, source, order_id) DO UPDATE SET
    number = excluded.number, status = excluded.status, currency = excluded.currency,
    total_minor = excluded.total_minor, business_date = excluded.business_date,
    line_count = excluded.line_count, doc_key = excluded.doc_key, position = excluded.position
WHERE o.position <= excluded.position
"""
_UPSERT_PAYMENT = """
INSERT INTO {t} AS p (tenant, source, payment_id, processor, order_ref, currency, gross_minor,
                      fee_minor, business_date, balance_transaction, payout_id,
                      settled_currency, settled_minor, doc_key, position)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
ON CONFLICT (tenant, source, payment_id) DO UPDATE SET
    processor = excluded.processor, order_ref = excluded.order_ref,
    currency = excluded.currency, gross_minor = excluded.gross_minor,
    fee_minor = excluded.fee_minor, business_date = excluded.business_date,
    balance_transaction = excluded.balance_transaction, payout_id = excluded.payout_id,
    settled_currency = excluded.settled_currency, settled_minor = excluded.settled_minor,
    doc_key = excluded.doc_key,
    position = excluded.position
WHERE p.position <= excluded.position
"""
_UPSERT_REFUND = """
INSERT INTO {t} AS r (tenant, source, refund_id, side, status, order_ref, payment_ref, currency,
                      amount_minor, position)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (tenant, source, refund_id, side) DO UPDATE SET
    status = excluded.status, order_ref = excluded.order_ref,
    payment_ref = excluded.payment_ref, currency = excluded.currency,
    amount_minor = excluded.amount_minor, position = excluded.position
WHERE r.position <= excluded.position
"""
_UPSERT_DOCUMENT = """
INSERT INTO {t} AS d (tenant, target, doc_key, status, target_id, position)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (tenant, target, doc_key) DO UPDATE SET
    status = CASE WHEN d.status = 'synced' AND excluded.status = 'failed' THEN d.status
                  ELSE excluded.status END,
    target_id = coalesce(excluded.target_id, d.target_id), position = excluded.position
WHERE d.position <= excluded.position
"""
_UPSERT_RESOLUTION = """
INSERT INTO {t} AS r (tenant, exception_id, resolved, reason, resolved_at, position)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (tenant, exception_id) DO UPDATE SET
    resolved = excluded.resolved, reason = excluded.reason, resolved_at = excluded.resolved_at,
    position = excluded.position
WHERE r.position <= excluded.position
"""
# Updates name their rows by key through ``= ANY`` as well as the join to ``unnest``: that is an
# index scan however little the planner knows of a table a rebuild has just filled (the join
# alone was planned as a scan of the whole table, making every batch slower than the last).
_SET_PAYOUTS = """
UPDATE {t} AS p SET match_state = u.state, bank_line = u.line, difference_minor = u.difference,
    window_start = u.first, window_end = u.last, gross_minor = u.gross,
    refunds_minor = u.refunds, fees_minor = u.fees, disputes_minor = u.disputes,
    adjustments_minor = u.adjustments
FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::date[],
            $8::date[], $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[], $13::bigint[])
     AS u(source, payout_id, state, line, difference, first, last, gross, refunds, fees,
          disputes, adjustments)
WHERE p.tenant = $1 AND p.source = ANY($2::text[]) AND p.payout_id = ANY($3::text[])
  AND p.source = u.source AND p.payout_id = u.payout_id
"""
_SET_MATCHED = """
UPDATE {t} AS b SET matched_payout = u.payout
FROM unnest($2::text[], $3::text[], $4::text[]) AS u(source, line_id, payout)
WHERE b.tenant = $1 AND b.source = ANY($2::text[]) AND b.line_id = ANY($3::text[])
  AND b.source = u.source AND b.line_id = u.line_id AND b.matched_payout IS DISTINCT FROM u.payout
"""
_SET_DUPLICATE = """
UPDATE {t} AS b SET duplicate_of = u.duplicate
FROM unnest($2::text[], $3::text[], $4::text[]) AS u(source, line_id, duplicate)
WHERE b.tenant = $1 AND b.source = ANY($2::text[]) AND b.line_id = ANY($3::text[])
  AND b.source = u.source AND b.line_id = u.line_id AND b.duplicate_of IS DISTINCT FROM u.duplicate
"""
_DELETE_EXCEPTIONS = "DELETE FROM {t} WHERE tenant = $1 AND id = ANY($2::text[])"
_ADD_PROCESSORS = """
INSERT INTO {t} (tenant, currency, processor)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[])
ON CONFLICT DO NOTHING
RETURNING tenant, currency
"""
_SET_LINES = """
UPDATE {t} AS b SET matched_payout = u.payout, duplicate_of = u.duplicate
FROM unnest($2::text[], $3::text[], $4::text[], $5::text[]) AS u(source, line_id, payout, duplicate)
WHERE b.tenant = $1 AND b.source = u.source AND b.line_id = u.line_id
"""
_INSERT_EXCEPTIONS = """
INSERT INTO {t} (tenant, id, kind, source, reference, currency, amount_minor, difference_minor,
                 detail, due_date, timezone)
SELECT $1, u.id, u.kind, u.source, u.reference, $2, u.amount, u.difference, u.detail, u.due, $3
FROM unnest($4::text[], $5::text[], $6::text[], $7::text[], $8::bigint[], $9::bigint[],
            $10::text[], $11::date[]) AS u(id, kind, source, reference, amount, difference,
                                             detail, due)
"""


SYNC_OUTCOMES = frozenset({"accounting.document.synced", "accounting.document.failed"})
"""What the accounting sender logs about each document it pushed (``hub.sync.sender``)."""


class Reconciliation(ReconciliationInspection, ReconciliationReports, Projection):
    """Payouts matched to deposits, their composition, and the exceptions list."""

    name: ClassVar[str] = "reconciliation"
    version: ClassVar[int] = 9
    event_types: ClassVar[frozenset[str] | None] = None
    """Every event: which ones carry orders, payments, payouts, bank lines or balance movements
    is for each connection's mapper to say (``extract``), so a new processor needs nothing
    here."""
    tables: ClassVar[dict[str, str]] = {
        "payouts": _PAYOUTS,
        "bank_lines": _BANK_LINES,
        "movements": _MOVEMENTS,
        "orders": _ORDERS,
        "payments": _PAYMENTS,
        "refunds": _REFUNDS,
        "documents": _DOCUMENTS,
        "exceptions": _EXCEPTIONS,
        "resolutions": _RESOLUTIONS,
        "tenants": _TENANTS,
        "processors": _PROCESSORS,
    }

    config_section: ClassVar[str | None] = "reconciliation"
    config_model: ClassVar[type[BaseModel] | None] = MatchSettings
    views: ClassVar[Mapping[str, View]] = VIEWS
    """The analysts' ``ledgerhub_views`` (``queries.VIEWS``)."""

    @classmethod
    def routes(cls) -> Sequence[ApiRoute]:
        """``/v1/reconciliation/...`` (``routes``)."""
        from projections.reconciliation.routes import ROUTES  # only where the API is served

        return ROUTES

    @property
    def books(self) -> BooksConfig:
        """The charts, rules and connection mappings of the configuration in force."""
        return self.config.books

    def sync_for(self, tenant: str) -> SyncSettings | None:
        """Where ``tenant``'s documents are synced (None: nowhere, no document is expected)."""
        return self.config.sync_for(tenant)

    def settings_for(self, tenant: str) -> MatchSettings:
        """The tenant's matching rules (defaults unless configured)."""
        return self.config.section("reconciliation", tenant, MatchSettings)

    def prepare(self, events: Sequence[RecordedEvent]) -> None:
        """Map ``events`` ahead (``BooksConfig.map`` remembers it for ``handle``)."""
        books = self.books
        for event in events:
            if event.type not in SYNC_OUTCOMES:
                facts_of(event, books)

    async def handle(self, events: Sequence[RecordedEvent], ctx: Context) -> None:
        """Store each event's records, then recompute what they can have changed
        (``incremental``): a fixed number of statements per tenant and currency in the batch,
        each reading rows near what changed, so a batch costs the same however long the log
        is."""
        rows: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
        touched: dict[str, Touched] = defaultdict(Touched)
        books = self.books  # once: a private attribute of the pydantic ``Config``
        syncs: dict[str, SyncSettings | None] = {}
        for event in events:
            if event.type in SYNC_OUTCOMES:
                document = _document_row(event)
                touched[event.tenant].seen = True
                if document is not None:
                    rows["documents"].append(document)
                    touched[event.tenant].orders.documents.add(document[2])
                continue
            event_records = records(event, books)
            if not event_records:
                continue
            touched[event.tenant].seen = True
            zone = books.tenant(event.tenant).timezone.key
            if event.tenant not in syncs:
                syncs[event.tenant] = self.sync_for(event.tenant)
            sync = syncs[event.tenant]
            for record in event_records:
                table, row, _ = _row(event, record, zone, sync)
                rows[table].append(row)
                touched[event.tenant].add(event.source, record)
        for tenant, seen in sorted(touched.items()):
            await seen.read_before(ctx, tenant)
        statements = {
            "payouts": _UPSERT_PAYOUT,
            "bank_lines": _UPSERT_LINE,
            "movements": _UPSERT_MOVEMENT,
            "orders": _UPSERT_ORDER,
            "payments": _UPSERT_PAYMENT,
            "refunds": _UPSERT_REFUND,
            "documents": _UPSERT_DOCUMENT,
            "resolutions": _UPSERT_RESOLUTION,
        }
        rows["tenants"] = [
            (tenant, self.books.tenant(tenant).timezone.key,
             self.settings_for(tenant).tieout_grace_days)
            for tenant in sorted(touched)
        ]  # fmt: skip
        statements["tenants"] = _UPSERT_TENANT
        for table, statement in statements.items():
            if rows[table]:
                await ctx.conn.executemany(statement.format(t=ctx.tables[table]), rows[table])
        fresh = await _new_processors(ctx, touched)
        for tenant, currency in sorted(fresh):
            await self._recompute(ctx, tenant, currency)
        for tenant, seen in sorted(touched.items()):
            await self._recompute_near(ctx, tenant, seen, fresh)

    async def _recompute_near(
        self, ctx: Context, tenant: str, seen: Touched, fresh: set[tuple[str, str]]
    ) -> None:
        """Recompute the deposits, duplicates and orders ``seen`` can have changed (the
        currencies in ``fresh`` were just recomputed whole)."""
        settings = self.settings_for(tenant)
        zone = self.books.tenant(tenant).timezone.key
        for currency, seeds in sorted((await seen.seeds(ctx, tenant)).items()):
            if (tenant, currency) in fresh:
                continue
            processors = await _processors(ctx, tenant, currency)

            async def write(
                payouts: Sequence[PayoutResult],
                lines: Sequence[LineResult],
                stale: Sequence[str],
                exceptions: Sequence[ExceptionRow],
                currency: str = currency,
            ) -> None:
                await _set_payouts(ctx, tenant, payouts)
                await ctx.conn.execute(
                    _SET_MATCHED.format(t=ctx.tables["bank_lines"]),
                    tenant,
                    [r.source for r in lines],
                    [r.line_id for r in lines],
                    [r.matched_payout for r in lines],
                )
                await _replace_exceptions(ctx, tenant, currency, zone, stale, exceptions)

            await recompute_deposits(ctx, tenant, currency, seeds, settings, processors, write)
            if seeds.line_days:
                found, stale, flagged = await recompute_duplicates(
                    ctx, tenant, currency, seeds.line_days, settings
                )
                await ctx.conn.execute(
                    _SET_DUPLICATE.format(t=ctx.tables["bank_lines"]),
                    tenant,
                    [source for (source, _), _ in found],
                    [line_id for (_, line_id), _ in found],
                    [duplicate for _, duplicate in found],
                )
                await _replace_exceptions(ctx, tenant, currency, zone, stale, flagged)
        if seen.orders:
            sync = self.sync_for(tenant)
            read = await order_rows(ctx, tenant, seen.orders, None if sync is None else sync.target)
            stale = read.stale()
            await ctx.conn.execute(
                _DELETE_EXCEPTIONS.format(t=ctx.tables["exceptions"]), tenant, stale
            )
            for currency in read.currencies():
                exceptions = _order_exceptions(read, currency, settings)
                await _replace_exceptions(ctx, tenant, currency, zone, (), exceptions)

    async def _recompute(self, ctx: Context, tenant: str, currency: str) -> None:
        t = ctx.tables
        payout_rows = await ctx.conn.fetch(
            f"SELECT * FROM {t['payouts']} WHERE tenant = $1 AND currency = $2", tenant, currency
        )
        line_rows = await ctx.conn.fetch(
            f"SELECT * FROM {t['bank_lines']} WHERE tenant = $1 AND currency = $2",
            tenant,
            currency,
        )
        movement_rows = await ctx.conn.fetch(
            f"SELECT * FROM {t['movements']} WHERE tenant = $1 AND currency = $2",
            tenant,
            currency,
        )
        order_rows = await ctx.conn.fetch(
            f"SELECT * FROM {t['orders']} WHERE tenant = $1 AND currency = $2", tenant, currency
        )
        payment_rows = await ctx.conn.fetch(
            f"SELECT * FROM {t['payments']} WHERE tenant = $1 "
            "AND (currency = $2 OR settled_currency = $2)",
            tenant,
            currency,
        )
        elsewhere = await ctx.conn.fetch(
            f"SELECT order_id FROM {t['orders']} WHERE tenant = $1 AND currency <> $2",
            tenant,
            currency,
        )
        refund_rows = await ctx.conn.fetch(
            f"SELECT * FROM {t['refunds']} WHERE tenant = $1 AND currency = $2 "
            "AND status = 'succeeded'",
            tenant,
            currency,
        )
        sync = self.sync_for(tenant)
        confirmed: frozenset[str] | None = None
        if sync is not None:
            document_rows = await ctx.conn.fetch(
                f"SELECT doc_key FROM {t['documents']} WHERE tenant = $1 AND target = $2 "
                "AND status = 'synced'",
                tenant,
                sync.target,
            )
            confirmed = frozenset(r["doc_key"] for r in document_rows)
        movements: dict[tuple[str, str], list[Movement]] = defaultdict(list)
        for m in movement_rows:
            if m["payout_id"] is None:
                continue  # not paid out yet: only the clearing tie-out reads it
            movements[m["source"], m["payout_id"]].append(
                Movement(m["category"], m["amount_minor"], m["fee_minor"])
            )
        outcome = reconcile(
            [stored_payout(r) for r in payout_rows],
            [stored_line(r) for r in line_rows],
            movements,
            self.settings_for(tenant),
            [
                StoredOrder(r["source"], r["order_id"], r["status"], r["total_minor"],
                            r["business_date"], r["line_count"], r["doc_key"])
                for r in order_rows
            ],
            _payments_in(currency, payment_rows, {r["order_id"] for r in order_rows}),
            [
                StoredRefund(r["side"], r["order_ref"], r["payment_ref"], r["amount_minor"])
                for r in refund_rows
            ],
            confirmed,
            frozenset(r["order_id"] for r in elsewhere),
            frozenset(r["processor"] for r in (*payout_rows, *movement_rows, *payment_rows)),
        )  # fmt: skip
        zone = self.books.tenant(tenant).timezone.key
        await _write(ctx, tenant, currency, zone, outcome)


def _row(
    event: RecordedEvent, record: Any, zone: str, sync: SyncSettings | None
) -> tuple[str, tuple[Any, ...], str | None]:
    """The table, row and currency (None: no recompute needed) a record is stored as (with the
    key of the accounting document that covers an order or payment when the tenant syncs)."""
    if isinstance(record, PayoutRecord):
        p = record.payout
        parts = None if p.composition is None else _parts(from_statement(p.composition))
        return "payouts", (
            event.tenant, event.source, p.payout_id, p.processor, p.amount.currency,
            p.amount.minor, p.arrival_date, p.status, parts, zone, event.position,
        ), p.amount.currency  # fmt: skip
    if isinstance(record, BankRecord):
        line = record.line
        return "bank_lines", (
            event.tenant, event.source, line.line_id, line.account, line.amount.currency,
            line.amount.minor, line.business_date, line.payee, line.description, event.position,
        ), line.amount.currency  # fmt: skip
    if isinstance(record, MovementRecord):
        m = record.movement
        return "movements", (
            event.tenant, event.source, m.movement_id, m.payout_id, m.amount.currency,
            m.category, m.amount.minor, m.fee.minor, m.net.minor, m.business_date, m.processor,
            event.position,
        ), m.amount.currency  # fmt: skip
    if isinstance(record, OrderRecord):
        sale = record.sale
        return "orders", (
            event.tenant, event.source, sale.order_id, sale.number, sale.status, sale.currency,
            sale.total.minor, sale.business_date, len(sale.lines),
            _doc_key(sync, event, sale, sale.business_date), event.position,
        ), sale.currency  # fmt: skip
    if isinstance(record, PaymentRecord):
        pay = record.payment
        return "payments", (
            event.tenant, event.source, pay.payment_id, pay.processor, pay.order_ref,
            pay.gross.currency, pay.gross.minor, None if pay.fee is None else pay.fee.minor,
            pay.business_date, pay.balance_transaction, pay.payout_id,
            _foreign(pay.settled, pay.gross.currency),
            None if _foreign(pay.settled, pay.gross.currency) is None or pay.settled is None
            else pay.settled.minor,
            _doc_key(sync, event, pay, pay.business_date), event.position,
        ), pay.gross.currency  # fmt: skip
    if isinstance(record, RefundRecord):
        refund = record.refund
        return "refunds", (
            event.tenant, event.source, refund.refund_id,
            "order" if refund.processor is None else "processor", refund.status,
            refund.order_ref, refund.payment_ref, refund.amount.currency, refund.amount.minor,
            event.position,
        ), refund.amount.currency  # fmt: skip
    assert isinstance(record, ResolutionRecord)
    assert event.type in (RESOLVED, REOPENED)
    return "resolutions", (
        event.tenant, record.exception_id, record.resolved, record.reason, event.occurred_at,
        event.position,
    ), None  # fmt: skip


def _doc_key(sync: SyncSettings | None, event: RecordedEvent, fact: Fact, day: date) -> str | None:
    """The accounting document ``fact`` is part of (None when the tenant syncs nowhere)."""
    if sync is None:
        return None
    return document_key(sync.mode, f"{event.source}/{fact.key}", fact, day)


def _document_row(event: RecordedEvent) -> tuple[Any, ...] | None:
    """A sync outcome as a row of ``documents`` (None when it is not one the sender wrote)."""
    data = event.data
    target, key = data.get("target"), data.get("doc_key")
    if not event.source.startswith("sync:") or not isinstance(target, str):
        return None
    if not isinstance(key, str):
        return None
    if event.type == "accounting.document.failed":
        status = "failed"
    else:
        status = "voided" if data.get("operation") == "void" else "synced"
    target_id = data.get("target_id")
    return (
        event.tenant, target, key, status, target_id if isinstance(target_id, str) else None,
        event.position,
    )  # fmt: skip


def _payments_in(currency: str, rows: Sequence[Any], orders: set[str]) -> list[StoredPayment]:
    """The payments to compare in ``currency``: those charged in it (their gross), and those
    charged in another currency but settled in this one that name an order in it (their settled
    amount, so the order is compared with what was paid; the cause of a difference is then
    ``currency``)."""
    found = []
    for r in rows:
        if r["currency"] == currency:
            found.append(
                StoredPayment(r["source"], r["payment_id"], r["order_ref"], r["gross_minor"],
                              r["settled_currency"], r["business_date"], r["doc_key"])
            )  # fmt: skip
        elif r["order_ref"] in orders and r["settled_minor"] is not None:
            found.append(
                StoredPayment(r["source"], r["payment_id"], r["order_ref"], r["settled_minor"],
                              r["currency"], r["business_date"])
            )  # fmt: skip
    return found


def _foreign(settled: Money | None, currency: str) -> str | None:
    """The settlement currency when it is not ``currency`` (the payment was converted)."""
    return None if settled is None or settled.currency == currency else settled.currency


def _parts(c: Composition) -> list[int]:
    return [c.gross_minor, c.refunds_minor, c.fees_minor, c.disputes_minor, c.adjustments_minor]


async def _new_processors(ctx: Context, touched: Mapping[str, Touched]) -> set[tuple[str, str]]:
    """Record the processors the batch names per (tenant, currency); those named for the first
    time (their hints may make any unmatched deposit of the currency unexplained)."""
    named = sorted({(t, c, p) for t, seen in touched.items() for c, p in seen.processors})
    if not named:
        return set()
    rows = await ctx.conn.fetch(
        _ADD_PROCESSORS.format(t=ctx.tables["processors"]),
        [n[0] for n in named],
        [n[1] for n in named],
        [n[2] for n in named],
    )
    return {(r["tenant"], r["currency"]) for r in rows}


async def _processors(ctx: Context, tenant: str, currency: str) -> frozenset[str]:
    """The processors the tenant's facts in ``currency`` name."""
    rows = await ctx.conn.fetch(
        f"SELECT processor FROM {ctx.tables['processors']} WHERE tenant = $1 AND currency = $2",
        tenant,
        currency,
    )
    return frozenset(r["processor"] for r in rows)


def _order_exceptions(
    read: OrderRows, currency: str, settings: MatchSettings
) -> list[ExceptionRow]:
    """The order part of ``reconcile`` in ``currency`` over the rows ``read`` (as
    ``Reconciliation._recompute`` computes it over all of them)."""
    orders = [r for r in read.orders if r["currency"] == currency]
    ids = {r["order_id"] for r in orders}
    payments = [r for r in read.payments if currency in (r["currency"], r["settled_currency"])]
    return order_exceptions(
        [
            StoredOrder(r["source"], r["order_id"], r["status"], r["total_minor"],
                        r["business_date"], r["line_count"], r["doc_key"])
            for r in orders
        ],
        _payments_in(currency, payments, ids),
        settings,
        [
            StoredRefund(r["side"], r["order_ref"], r["payment_ref"], r["amount_minor"])
            for r in read.refunds
            if r["currency"] == currency
        ],
        read.confirmed,
        frozenset(r["order_id"] for r in read.orders if r["currency"] != currency),
    )  # fmt: skip


async def _set_payouts(ctx: Context, tenant: str, payouts: Sequence[PayoutResult]) -> None:
    parts = [None if r.composition is None else _parts(r.composition) for r in payouts]
    await ctx.conn.execute(
        _SET_PAYOUTS.format(t=ctx.tables["payouts"]),
        tenant,
        [r.source for r in payouts],
        [r.payout_id for r in payouts],
        [r.match_state for r in payouts],
        [r.bank_line for r in payouts],
        [r.difference_minor for r in payouts],
        [r.window_start for r in payouts],
        [r.window_end for r in payouts],
        *([None if c is None else c[i] for c in parts] for i in range(5)),
    )


async def _replace_exceptions(
    ctx: Context,
    tenant: str,
    currency: str,
    zone: str,
    stale: Sequence[str],
    exceptions: Sequence[ExceptionRow],
) -> None:
    """Delete the exceptions ``stale`` names, then insert ``exceptions`` (in ``currency``)."""
    t = ctx.tables["exceptions"]
    if stale:
        await ctx.conn.execute(_DELETE_EXCEPTIONS.format(t=t), tenant, list(stale))
    if exceptions:
        e = exceptions
        await ctx.conn.execute(
            _INSERT_EXCEPTIONS.format(t=t),
            tenant,
            currency,
            zone,
            [r.id for r in e],
            [r.kind for r in e],
            [r.source for r in e],
            [r.reference for r in e],
            [r.amount_minor for r in e],
            [r.difference_minor for r in e],
            [r.detail for r in e],
            [r.due_date for r in e],
        )


async def _write(ctx: Context, tenant: str, currency: str, zone: str, outcome: Outcome) -> None:
    t = ctx.tables
    await _set_payouts(ctx, tenant, outcome.payouts)
    lines = outcome.lines
    await ctx.conn.execute(
        _SET_LINES.format(t=t["bank_lines"]),
        tenant,
        [r.source for r in lines],
        [r.line_id for r in lines],
        [r.matched_payout for r in lines],
        [r.duplicate_of for r in lines],
    )
    await ctx.conn.execute(
        f"DELETE FROM {t['exceptions']} WHERE tenant = $1 AND currency = $2", tenant, currency
    )
    await _replace_exceptions(ctx, tenant, currency, zone, (), outcome.exceptions)
