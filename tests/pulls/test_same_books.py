"""Pulled history and the same history pushed as signed webhooks (plus the balance transactions
pushed by hand, as before pulls existed) give the same ledger and the same payout
reconciliation; and both together book nothing twice."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson

from connectors.stripe.webhook import StripeVerifier
from hub.domain.events import NewEvent
from hub.spi.verifier import WebhookDelivery
from hub.store import EventStore
from hub.testing.postgres import Databases
from hub.usecases.pull import pull_connection
from projections.ledger import Ledger
from tests.ledger.harness import Books
from tests.pulls.conftest import STRIPE_SOURCE, ConfigWriter, stripe_connection
from tests.pulls.fake_stripe import DAY, FakeStripe, History, serve
from tests.pulls.test_stripe import FAST
from tests.reconciliation.harness import Recon, books_running

SECRET = b"whsec_same_books"


def _delivered(kind: str, obj: dict[str, Any], created: int) -> NewEvent:
    """``obj`` in a signed ``kind`` webhook, read the way the webhook route reads it."""
    body = orjson.dumps(
        {
            "id": f"evt_{obj['id']}_{kind}",
            "object": "event",
            "type": kind,
            "created": created,
            "data": {"object": obj},
        }
    )
    verifier = StripeVerifier()
    now = datetime.fromtimestamp(created, UTC)
    delivery = WebhookDelivery(
        url="http://127.0.0.1/v1/webhooks/stripe/acct_pulled",
        headers={k.lower(): v for k, v in verifier.sign(body, SECRET, now=now).items()},
        body=body,
    )
    verifier.verify(delivery, SECRET, now=now)
    (found,) = verifier.events(delivery)
    return NewEvent(
        source=STRIPE_SOURCE,
        external_id=found.external_id,
        type=found.type,
        occurred_at=found.occurred_at,
        data=found.data,
        stream=None if found.entity is None else f"{STRIPE_SOURCE}/{found.entity}",
    )


def pushed(history: History) -> list[NewEvent]:
    """The history as Stripe's webhooks tell it, with each paid payout's balance transactions
    pushed by hand (``stripe.balance_transaction``, the transaction's id as external id)."""
    events: list[NewEvent] = []
    for charge in history.charges:
        events.append(_delivered("charge.succeeded", charge, charge["created"]))
    for refund in history.refunds:
        events.append(_delivered("refund.created", refund, refund["created"]))
    for dispute in history.disputes:
        events.append(_delivered("charge.dispute.created", dispute, dispute["created"]))
        for bt in dispute["balance_transactions"]:
            kind = "funds_withdrawn" if bt["amount"] < 0 else "funds_reinstated"
            events.append(_delivered(f"charge.dispute.{kind}", dispute, bt["created"]))
        if dispute["status"] in ("won", "lost"):
            events.append(_delivered("charge.dispute.closed", dispute, dispute["created"] + 60))
    by_id = {bt["id"]: bt for bt in history.balance_transactions}
    for payout in history.payouts:
        events.append(
            _delivered("payout.created", {**payout, "status": "in_transit"}, payout["created"])
        )
        if payout["status"] != "paid":
            continue
        for txn in history.settled_by[payout["id"]]:
            events.append(
                NewEvent(
                    source=STRIPE_SOURCE,
                    external_id=txn,
                    type="stripe.balance_transaction",
                    occurred_at=datetime.fromtimestamp(by_id[txn]["created"], UTC),
                    data={"data": {"object": by_id[txn]}, "payout": payout["id"]},
                )
            )
        events.append(_delivered("payout.paid", payout, payout["arrival_date"]))
    return events


async def _books(dsn: str) -> tuple[dict[tuple[str, str], int], list[tuple[Any, ...]], Any]:
    """Run the ledger and reconciliation over ``dsn``'s log; the balances, the journal's
    entries that book something (without positions: an in-transit payout a webhook announced
    keeps an empty entry, which a pull, waiting for it to land, has not) and the payout
    reconciliation."""
    conn = await asyncpg.connect(dsn)
    try:
        async with books_running(dsn):
            recon = Recon(dsn, conn)
            await recon.settle()
            await recon.settle(projection="ledger")
            books = Books(conn)
            balances = await books.balances()
            rows = await conn.fetch(
                f"SELECT entry_key, kind, business_date, accounts, currencies, amounts "
                f"FROM {Ledger.view('journal')} WHERE cardinality(amounts) > 0 "
                "ORDER BY tenant, entry_key"
            )
            payouts = await recon.payouts()
    finally:
        await conn.close()
    return balances, [tuple(r) for r in rows], payouts


async def test_pulled_history_books_the_same_as_webhooks_and_both_book_once(
    dsn: str, pool: asyncpg.Pool, databases: Databases, write_config: ConfigWriter
) -> None:
    today = int(time.time()) // DAY * DAY
    history = History(seed=11)
    history.add_days(today - 45 * DAY, 45, 6)
    history.settle(today - 1)
    async with serve(FakeStripe(history)) as fake:
        fake.now = today
        config = write_config(stripe_connection(fake.url))
        report = await pull_connection(
            pool,
            config,
            STRIPE_SOURCE,
            since=datetime.fromtimestamp(today - 50 * DAY, UTC).date(),
            retry=FAST,
            now=datetime.fromtimestamp(today, UTC),
        )
        assert report.ok, report.error
    pulled = await _books(dsn)

    other = await databases.create()
    try:
        async with await EventStore.open(other) as store:
            results = await store.append(pushed(history))
            assert all(r.status == "appended" for r in results)
        webhooks = await _books(other)
        assert pulled[0] == webhooks[0]  # the trial balance
        assert pulled[1] == webhooks[1]  # every journal entry, posting for posting
        assert pulled[2] == webhooks[2]  # the payout reconciliation
        assert any(p["status"] != "pending" for p in pulled[2])

        # the pulled events on top of the webhooks' change nothing
        pulled_events = await _events(dsn)
        async with await EventStore.open(other) as store:
            results = await store.append(pulled_events)
        appended = [r for r in results if r.status == "appended"]
        assert appended  # the pulled changes have ids of their own …
        assert await _books(other) == webhooks  # … but each object is booked once
    finally:
        await databases.drop(other)


async def _events(dsn: str) -> list[NewEvent]:
    async with await EventStore.open(dsn) as store:
        recorded = await store.read_after(0, limit=100_000, source=STRIPE_SOURCE)
    return [
        NewEvent(
            source=e.source,
            external_id=e.external_id,
            type=e.type,
            occurred_at=e.occurred_at,
            data=e.data,
            stream=e.stream,
            meta=e.meta,
        )
        for e in recorded
    ]
