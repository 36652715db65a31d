"""Stripe activity built on the reference objects' shapes (tests/fixtures/stripe): the fixture's
balance transaction has no fee and its payout does not match its charge, so the amounts here
are ours, consistent the way a real account's are."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hub.domain.events import NewEvent
from tests.ledger.harness import new

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
STRIPE = json.loads((FIXTURES / "stripe" / "money_objects.json").read_text())
STRIPE_SOURCE = "stripe:acct_demo"
WHEN = "2024-03-01T12:00:00+00:00"


def stripe_event(event_type: str, obj: dict[str, Any], created: int) -> dict[str, Any]:
    return {
        "id": f"evt_{obj['id']}_{event_type}",
        "object": "event",
        "type": event_type,
        "created": created,
        "data": {"object": obj},
    }


def charge(charge_id: str, amount: int, created: int, **extra: Any) -> dict[str, Any]:
    return {
        **copy.deepcopy(STRIPE["charge"]),
        "id": charge_id,
        "amount": amount,
        "amount_captured": amount,
        "captured": True,
        "created": created,
        **extra,
    }


def balance_transaction(
    bt_id: str, source: str, amount: int, fee: int, category: str, created: int
) -> dict[str, Any]:
    details = (
        [
            {
                "amount": fee,
                "application": None,
                "currency": "usd",
                "description": "Stripe processing fees",
                "type": "stripe_fee",
            }
        ]
        if fee
        else []
    )
    return {
        **copy.deepcopy(STRIPE["balance_transaction"]),
        "id": bt_id,
        "source": source,
        "amount": amount,
        "fee": fee,
        "net": amount - fee,
        "fee_details": details,
        "type": category,
        "reporting_category": category,
        "created": created,
    }


@dataclass
class StripeScenario:
    """Two charges and a partial refund, their balance transactions, and the payout of them."""

    balance_transactions: list[dict[str, Any]]
    before_payout: list[NewEvent]
    payout_in_transit: list[NewEvent]
    payout_paid: list[NewEvent]
    payout_id: str
    payout_amount: int


def stripe_scenario(source: str = STRIPE_SOURCE) -> StripeScenario:
    t = 1709294400  # 2024-03-01 12:00 UTC
    charges = [charge("ch_A", 1099, t), charge("ch_B", 2500, t + 60)]
    refund = {
        **copy.deepcopy(STRIPE["refund"]),
        "id": "re_A",
        "charge": "ch_A",
        "amount": 500,
        "created": t + 3600,
        "balance_transaction": "txn_R",
    }
    bts = [
        balance_transaction("txn_A", "ch_A", 1099, 62, "charge", t),
        balance_transaction("txn_B", "ch_B", 2500, 103, "charge", t + 60),
        balance_transaction("txn_R", "re_A", -500, 0, "refund", t + 3600),
    ]
    amount = sum(bt["net"] for bt in bts)
    payout = {
        **copy.deepcopy(STRIPE["payout"]),
        "id": "po_A",
        "amount": amount,
        "created": t + 86400,
        "arrival_date": t + 2 * 86400,
    }
    events = [
        new(
            source,
            f"evt_{c['id']}",
            "stripe.charge.succeeded",
            stripe_event("charge.succeeded", c, c["created"]),
            WHEN,
        )
        for c in charges
    ]
    events.append(
        new(
            source,
            "evt_re_A",
            "stripe.refund.created",
            stripe_event("refund.created", refund, t + 3600),
            WHEN,
        )
    )
    # the same refund again, listed by charge.refunded: booked once
    refunded = {**charges[0], "refunds": {"object": "list", "data": [refund]}}
    events.append(
        new(
            source,
            "evt_ch_A_refunded",
            "stripe.charge.refunded",
            stripe_event("charge.refunded", refunded, t + 3600),
            WHEN,
        )
    )
    events += [
        new(
            source,
            bt["id"],
            "stripe.balance_transaction",
            {"data": {"object": bt}, "payout": "po_A"},
            WHEN,
        )
        for bt in bts
    ]
    in_transit = {**payout, "status": "in_transit"}
    paid = {**payout, "status": "paid"}
    return StripeScenario(
        balance_transactions=bts,
        before_payout=events,
        payout_in_transit=[
            new(
                source,
                "evt_po_A_created",
                "stripe.payout.created",
                stripe_event("payout.created", in_transit, t + 86400),
                WHEN,
            )
        ],
        payout_paid=[
            new(
                source,
                "evt_po_A_paid",
                "stripe.payout.paid",
                stripe_event("payout.paid", paid, t + 2 * 86400),
                WHEN,
            )
        ],
        payout_id="po_A",
        payout_amount=amount,
    )
