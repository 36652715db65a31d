"""A month of Stripe activity on the reference objects' shapes, a bank statement for it, and the
Shopify reference payout (tests/fixtures; see its NOTICE.md).

The Stripe fixture's balance transaction has no fee, so amounts and fees here are ours: card fees
of 2.9 % + 30 cents, partial refunds, one dispute with Stripe's 15.00 dispute fee, and one
automatic payout per business day of that day's balance transactions, arriving two business days
later. Everything is drawn from a seeded generator, so a run is repeatable.
"""

from __future__ import annotations

import copy
import json
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from hub.domain.events import NewEvent
from projections.reconciliation.matching import add_business_days
from tests.ledger.harness import new
from tests.ledger.scenarios import (
    FIXTURES,
    STRIPE,
    STRIPE_SOURCE,
    balance_transaction,
    charge,
    stripe_event,
)
from tests.ledger.test_books import BANK, bank_line

SHOP = "shopify:acme-store"


def _unix(day: date, hour: int = 0) -> int:
    return int(datetime.combine(day, time(hour), UTC).timestamp())


def _card_fee(amount: int) -> int:
    return (amount * 29 + 500) // 1000 + 30


@dataclass(frozen=True)
class PayoutMade:
    """A payout the scenario made: its id, amount and arrival date."""

    payout_id: str
    amount: int
    arrival: date


@dataclass
class StripeMonth:
    """The events of the month (processor side) and the payouts they produced."""

    events: list[NewEvent] = field(default_factory=list)
    payouts: list[PayoutMade] = field(default_factory=list)


def stripe_month(seed: int = 7, month: date = date(2024, 3, 1)) -> StripeMonth:
    """Charges, refunds, a dispute, their balance transactions and a payout per business day."""
    rng = random.Random(seed)
    scenario = StripeMonth()
    day, n = month, 0
    while day.month == month.month:
        if day.weekday() >= 5:
            day += timedelta(days=1)
            continue
        n += 1
        bts: list[dict[str, Any]] = []
        for i in range(rng.randint(2, 5)):
            amount = rng.randint(1500, 25000)
            charge_id = f"ch_{n}_{i}"
            created = _unix(day, 9 + i)
            obj = charge(charge_id, amount, created, balance_transaction=f"txn_{charge_id}")
            scenario.events.append(
                new(STRIPE_SOURCE, f"evt_{charge_id}", "stripe.charge.succeeded",
                    stripe_event("charge.succeeded", obj, created), f"{day}T{9 + i:02}:00:00+00:00")
            )  # fmt: skip
            bts.append(
                balance_transaction(f"txn_{charge_id}", charge_id, amount, _card_fee(amount),
                                    "charge", created)
            )  # fmt: skip
        if n % 4 == 0:  # a partial refund of the day's first charge
            refunded = bts[0]["amount"] // 3
            created = _unix(day, 16)
            refund = {
                **copy.deepcopy(STRIPE["refund"]),
                "id": f"re_{n}",
                "charge": bts[0]["source"],
                "amount": refunded,
                "created": created,
                "balance_transaction": f"txn_re_{n}",
            }
            scenario.events.append(
                new(STRIPE_SOURCE, f"evt_re_{n}", "stripe.refund.created",
                    stripe_event("refund.created", refund, created), f"{day}T16:00:00+00:00")
            )  # fmt: skip
            bts.append(
                balance_transaction(f"txn_re_{n}", f"re_{n}", -refunded, 0, "refund", created)
            )
        if n == 10:  # a chargeback of the day's last charge, with the dispute fee
            disputed = bts[-1]["amount"]
            created = _unix(day, 17)
            dispute = {
                **copy.deepcopy(STRIPE["dispute"]),
                "id": "dp_1",
                "charge": bts[-1]["source"],
                "amount": disputed,
                "created": created,
                "status": "needs_response",
            }
            scenario.events.append(
                new(STRIPE_SOURCE, "evt_dp_1", "stripe.charge.dispute.funds_withdrawn",
                    stripe_event("charge.dispute.funds_withdrawn", dispute, created),
                    f"{day}T17:00:00+00:00")
            )  # fmt: skip
            bts.append(balance_transaction("txn_dp_1", "dp_1", -disputed, 1500, "dispute", created))
        payout_id = f"po_{n}"
        amount = sum(bt["net"] for bt in bts)
        arrival = add_business_days(day, 2)
        for bt in bts:
            scenario.events.append(
                new(STRIPE_SOURCE, bt["id"], "stripe.balance_transaction",
                    {"data": {"object": bt}, "payout": payout_id}, f"{day}T20:00:00+00:00")
            )  # fmt: skip
        payout = {**copy.deepcopy(STRIPE["payout"]), "id": payout_id, "amount": amount,
                  "created": _unix(day, 21), "arrival_date": _unix(arrival), "status": "paid",
                  "balance_transaction": f"txn_{payout_id}"}  # fmt: skip
        scenario.events.append(
            new(STRIPE_SOURCE, f"evt_{payout_id}_paid", "stripe.payout.paid",
                stripe_event("payout.paid", payout, _unix(arrival)), f"{arrival}T06:00:00+00:00")
        )  # fmt: skip
        scenario.payouts.append(PayoutMade(payout_id, amount, arrival))
        day += timedelta(days=1)
    return scenario


@dataclass
class Statement:
    """A bank statement for a month of payouts, and what it was built to contain."""

    lines: list[NewEvent]
    missing: PayoutMade
    off_by_a_cent: PayoutMade
    unrelated_line: str


def statement(month: StripeMonth) -> Statement:
    """A deposit per payout (some a business day late), except one missing and one a cent
    short; an unrelated STRIPE deposit of a payout's amount weeks later; other traffic."""
    payouts = month.payouts
    missing, short, echoed = payouts[5], payouts[11], payouts[2]
    lines = []
    for i, payout in enumerate(payouts):
        if payout is missing:
            continue
        landed = add_business_days(payout.arrival, 1) if i % 3 == 0 else payout.arrival
        amount = payout.amount - 1 if payout is short else payout.amount
        lines.append(bank_line(f"L{i}", landed.isoformat(), amount, f"STRIPE TRANSFER ST-{i:04}"))
    late = payouts[-1].arrival + timedelta(days=10)
    lines += [
        bank_line("U1", late.isoformat(), echoed.amount, "STRIPE TRANSFER ST-9999"),
        bank_line("C1", payouts[3].arrival.isoformat(), payouts[3].amount, "MOBILE CHECK DEPOSIT"),
        bank_line("R1", payouts[4].arrival.isoformat(), -250000, "LANDLORD LLC RENT"),
    ]
    return Statement(lines, missing, short, "U1")


def shopify_reference() -> tuple[NewEvent, list[NewEvent], dict[str, Any]]:
    """The reference payout, its payout transactions, and the payout object itself."""
    payout = json.loads((FIXTURES / "shopify" / "payout.json").read_text())
    transactions = json.loads((FIXTURES / "shopify" / "payouts_transactions.json").read_text())
    obj = payout["payout"]
    payout_event = new(SHOP, f"payout-{obj['id']}", "shopify.payout", payout,
                       f"{obj['date']}T00:00:00-05:00")  # fmt: skip
    movements = [
        new(SHOP, f"txn-{t['id']}", "shopify.balance_transaction", t, t["processed_at"])
        for t in transactions["transactions"]
    ]
    return payout_event, movements, obj


__all__ = ["BANK", "SHOP", "STRIPE_SOURCE", "bank_line"]
