"""The incremental recompute gives exactly what recomputing everything gives.

``Reconciliation`` recomputes only what each batch can have changed
(``projections.reconciliation.incremental``). ``Whole`` is the reference: after every batch it
recomputes every currency of the tenant from everything stored (what the projection did before
it was incremental). Both run side by side over the same shuffled log of a month of Stripe
activity, its bank statement with look-alike lines, payouts rescheduled and corrected after the
fact, orders with payments that name them (some re-sent naming another order, or none), refunds,
and sync outcomes for their documents; in batches as small as one event. Every row of every
table must be the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import random
from datetime import date, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest

from hub.domain.events import NewEvent
from hub.runtime.settings import RuntimeSettings
from hub.runtime.worker import Worker
from hub.spi.projection import Context, View
from hub.store import EventStore
from projections.reconciliation import Reconciliation
from projections.reconciliation.incremental import Touched
from tests.ledger.harness import new, sample
from tests.ledger.scenarios import STRIPE, STRIPE_SOURCE, charge, stripe_event
from tests.reconciliation.harness import Recon
from tests.reconciliation.scenarios import SHOP, _unix, bank_line, statement, stripe_month

CURRENCIES = """
SELECT currency FROM {payouts} WHERE tenant = $1
UNION SELECT currency FROM {lines} WHERE tenant = $1
UNION SELECT currency FROM {orders} WHERE tenant = $1
UNION SELECT currency FROM {payments} WHERE tenant = $1
UNION SELECT settled_currency FROM {payments} WHERE tenant = $1 AND settled_currency IS NOT NULL
UNION SELECT currency FROM {refunds} WHERE tenant = $1
"""


class Whole(Reconciliation):
    """The reference: every currency of a batch's tenants recomputed from all their rows."""

    name: ClassVar[str] = "reconciliation_whole"
    views: ClassVar[dict[str, View]] = {}

    async def _recompute_near(
        self, ctx: Context, tenant: str, seen: Touched, fresh: set[tuple[str, str]]
    ) -> None:
        t = ctx.tables
        rows = await ctx.conn.fetch(
            CURRENCIES.format(payouts=t["payouts"], lines=t["bank_lines"], orders=t["orders"],
                              payments=t["payments"], refunds=t["refunds"]),
            tenant,
        )  # fmt: skip
        for currency in sorted(r["currency"] for r in rows):
            if (tenant, currency) not in fresh:
                await self._recompute(ctx, tenant, currency)


def _payout_update(payout: Any, rng: random.Random) -> NewEvent:
    """The payout rescheduled (a few days later, or weeks: away from the deposit it matched)
    and, for some, corrected by a cent or by much more."""
    arrival = payout.arrival + timedelta(days=rng.choice((1, 3, 15, 30)))
    amount = payout.amount + rng.choice((0, 1, -1, payout.amount // 2))
    obj = {**copy.deepcopy(STRIPE["payout"]), "id": payout.payout_id, "amount": amount,
           "created": _unix(payout.arrival), "arrival_date": _unix(arrival),
           "status": "paid"}  # fmt: skip
    data = stripe_event("payout.updated", obj, _unix(arrival))
    return new(STRIPE_SOURCE, f"evt_{payout.payout_id}_updated", "stripe.payout.updated", data,
               f"{arrival}T07:00:00+00:00")  # fmt: skip


def _order(order_id: int, status: str) -> NewEvent:
    order = {**sample("shopify", "shopify.orders.create"), "id": order_id,
             "name": f"#{order_id}", "financial_status": status}  # fmt: skip
    return new(SHOP, f"o-{order_id}", "shopify.orders.create", order, order["created_at"])


def _charge(charge_id: str, amount: int, order_ref: str | None, version: int = 0) -> NewEvent:
    when = _unix(date(2024, 3, 5), 12)
    metadata = {} if order_ref is None else {"order_id": order_ref}
    obj = charge(charge_id, amount, when, metadata=metadata)
    data = stripe_event("charge.succeeded", obj, when)
    return new(STRIPE_SOURCE, f"evt_{charge_id}_v{version}", "stripe.charge.succeeded", data,
               "2024-03-05T12:00:00+00:00")  # fmt: skip


def _refund(refund_id: str, charge_id: str, amount: int) -> NewEvent:
    when = _unix(date(2024, 3, 6), 12)
    refund = {**copy.deepcopy(STRIPE["refund"]), "id": refund_id, "charge": charge_id,
              "amount": amount, "created": when}  # fmt: skip
    data = stripe_event("refund.created", refund, when)
    return new(STRIPE_SOURCE, f"evt_{refund_id}", "stripe.refund.created", data,
               "2024-03-06T12:00:00+00:00")  # fmt: skip


def _outcome(doc_key: str, kind: str) -> NewEvent:
    data = {"target": "beancount", "doc_key": doc_key, "target_id": f"bc-{doc_key}",
            "idempotency_key": "lh-x", "content_hash": "0" * 64,
            "operation": "void" if kind == "voided" else "create"}  # fmt: skip
    event_type = "accounting.document.failed" if kind == "failed" else "accounting.document.synced"
    return new("sync:beancount", f"{doc_key}#{kind}", event_type, data,
               "2024-04-01T09:00:00+00:00")  # fmt: skip


def activity(seed: int) -> list[NewEvent]:
    """The month's log, shuffled: processor activity, statement, rescheduled payouts, orders."""
    rng = random.Random(seed)
    month = stripe_month(seed=seed)
    events = [*month.events, *statement(month).lines]
    events += [
        bank_line("D1", "2024-03-12", -4999, "GITHUB INC"),
        bank_line("D2", "2024-03-13", -4999, "GITHUB INC"),
        bank_line("D3", "2024-03-20", -4999, "GITHUB INC"),
        bank_line("D4", "2024-03-21", -4999, "GitHub Inc"),
    ]
    events += [_payout_update(p, rng) for p in rng.sample(month.payouts, 6)]
    total = 0
    for n in range(12):
        order_id = 5000 + n
        order = _order(order_id, rng.choice(("paid", "pending", "paid")))
        events.append(order)
        total = int(str(order.data["total_price"]).replace(".", ""))
        paid = rng.choice((total, total // 2, total + 100, 0))
        if paid:
            events.append(_charge(f"ch_o{n}", paid, str(order_id)))
        if n % 4 == 1:  # paid in full, part of it refunded
            events.append(_refund(f"re_o{n}", f"ch_o{n}", total // 3))
    events += [
        _charge("ch_lost", 1234, "404404"),  # names an order the log does not hold
        _charge("ch_sale", 2500, None),  # itself the sale
        _charge("ch_o2", total, "5003", version=1),  # re-sent, naming another order
        _charge("ch_o5", total, None, version=1),  # re-sent, naming none
    ]
    rng.shuffle(events)
    return events


async def _snapshot(recon: Recon, projection: type[Reconciliation]) -> dict[str, list[str]]:
    found = {}
    for table in Reconciliation.tables:
        rows = await recon.conn.fetch(
            f"SELECT t::text AS row FROM {projection.view(table)} AS t ORDER BY 1"
        )
        found[table] = [r["row"] for r in rows]
    return found


async def _settle(recon: Recon) -> None:
    await recon.settle(patience=120)
    await recon.settle(patience=120, projection=Whole.name)


@pytest.mark.parametrize(("seed", "batch"), [(1, 1), (2, 7), (3, 60)])
async def test_incremental_equals_whole_recompute(
    store: EventStore, recon: Recon, config: Path, seed: int, batch: int
) -> None:
    config.write_text(  # noqa: ASYNC240
        '[tenants.default]\nsync = { target = "beancount", mode = "per_transaction" }\n'
    )
    settings = RuntimeSettings(lease_ttl=2, poll_interval=0.05, batch_size=batch)
    worker = asyncio.create_task(Worker(recon.dsn, [Reconciliation, Whole], settings).run())
    try:
        events = activity(seed)
        for start in range(0, len(events), 40):
            await store.append(events[start : start + 40])
        await _settle(recon)
        documents = await recon.conn.fetch(
            f"SELECT doc_key FROM {Reconciliation.view('orders')} WHERE doc_key IS NOT NULL "
            f"UNION SELECT doc_key FROM {Reconciliation.view('payments')} "
            "WHERE doc_key IS NOT NULL ORDER BY 1"
        )
        rng = random.Random(seed)
        outcomes = [
            _outcome(r["doc_key"], rng.choice(("synced", "synced", "failed", "voided")))
            for r in documents
            if rng.random() < 0.7
        ]
        await store.append(outcomes)
        await _settle(recon)
    finally:
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker
    incremental, whole = await _snapshot(recon, Reconciliation), await _snapshot(recon, Whole)
    kinds = {row.split(",")[2] for row in incremental["exceptions"]}
    assert len(documents) >= 10
    assert len(outcomes) >= 5
    # the scenario exercises every kind the incremental parts compute
    assert {"missing_deposit", "amount_mismatch", "unexplained_deposit", "duplicate_bank_line",
            "payment_without_order", "order_unpaid", "document_missing"} <= kinds  # fmt: skip
    for table in Reconciliation.tables:
        assert incremental[table] == whole[table], table
