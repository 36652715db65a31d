"""Reconciliation for a processor it has never heard of: ``acme``, a connector made up for this
test and registered only here (nothing in ``projections/`` names it). Its mapper states canonical
facts (payouts, balance movements, a payment); matching, composition (from movements or from the
processor's own statement), descriptor hints and exceptions all follow from those facts alone."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any, ClassVar

import pytest

from hub.domain.facts import (
    BalanceMovement,
    Fact,
    Payment,
    Payout,
    PayoutComposition,
)
from hub.domain.money import Money
from hub.spi.connector import Connector
from hub.spi.mapper import FactMapper, Handler, MapContext, SourceEvent
from hub.spi.registry import connectors
from hub.store import EventStore
from projections.reconciliation import Reconciliation
from projections.reconciliation.composition import Movement, from_movements
from projections.reconciliation.extract import (
    MovementRecord,
    PaymentRecord,
    PayoutRecord,
    fact_records,
)
from projections.reconciliation.settings import MatchSettings, default_hints
from tests.ledger.harness import new
from tests.ledger.test_books import bank_line
from tests.reconciliation.harness import Recon, reconciliation_running

SOURCE = "acme:merchant-7"
PARTS = ("gross_minor", "refunds_minor", "fees_minor", "disputes_minor", "adjustments_minor")


def _usd(minor: int) -> Money:
    return Money(minor=minor, currency="USD")


def _movement(event: SourceEvent, ctx: MapContext) -> list[Fact]:
    """``acme.movement``: one balance movement; a charge is also a payment (maybe of an order)."""
    d = event.data
    amount, fee = _usd(d["amount"]), _usd(d["fee"])
    day = ctx.business_date(event.occurred_at)
    movement = BalanceMovement(
        key=f"movement:{d['id']}", business_date=day, processor="acme", movement_id=d["id"],
        payout_id=d.get("payout"), category=d["category"], amount=amount, fee=fee,
        net=amount - fee,
    )  # fmt: skip
    if d["category"] != "charge":
        return [movement]
    payment = Payment(
        key=f"payment:{d['id']}", business_date=day, processor="acme", payment_id=d["id"],
        gross=amount, fee=fee, order_ref=d.get("order"), payout_id=d.get("payout"),
    )  # fmt: skip
    return [payment, movement]


def _payout(event: SourceEvent, ctx: MapContext) -> list[Fact]:
    """``acme.payout``: a payout, with acme's own statement of its parts when it gives one."""
    d = event.data
    stated = d.get("statement")
    composition = (
        None
        if stated is None
        else PayoutComposition(
            **{name: _usd(stated[name]) for name in PayoutComposition.model_fields}
        )
    )
    return [
        Payout(
            key=f"payout:{d['id']}", business_date=ctx.business_date(event.occurred_at),
            processor="acme", payout_id=d["id"], amount=_usd(d["amount"]),
            arrival_date=date.fromisoformat(d["arrival"]), status=d["status"],
            composition=composition,
        )
    ]  # fmt: skip


class AcmeMapper(FactMapper):
    handlers: ClassVar[Mapping[str, Handler]] = {
        "acme.movement": _movement,
        "acme.payout": _payout,
    }


class AcmeConnector(Connector):
    name = "acme"
    event_types = ("acme.*",)
    mapper: ClassVar[FactMapper | None] = AcmeMapper()


@pytest.fixture
def acme_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """``acme`` installed, as its entry point would install it, for this test only."""
    monkeypatch.setitem(connectors(), "acme", AcmeConnector)


def movement(mid: str, category: str, amount: int, fee: int = 0, **extra: Any) -> Any:
    data = {"id": mid, "category": category, "amount": amount, "fee": fee, **extra}
    return new(SOURCE, mid, "acme.movement", data, "2024-03-01T15:00:00+00:00")


def payout(pid: str, amount: int, arrival: str, **extra: Any) -> Any:
    data = {"id": pid, "amount": amount, "arrival": arrival, "status": "paid", **extra}
    return new(SOURCE, pid, "acme.payout", data, "2024-03-02T15:00:00+00:00")


def test_reconciliation_names_no_processor_and_reads_every_event() -> None:
    assert Reconciliation.event_types is None  # which events matter is the mappers' to say
    assert default_hints("acme") == ("ACME",)
    rules = MatchSettings()
    assert rules.hinted("ACME PAYMENTS 0042", ["acme"]) == {"acme"}
    assert rules.hinted("ACME PAYMENTS 0042") == frozenset()  # no processor named: none known
    configured = MatchSettings(hints={"acme": ("ACM*PAY",)})
    assert configured.hinted("ACM*PAY 0042") == {"acme"}  # configured ones are always known
    assert configured.hinted("ACME PAYMENTS", ["acme"]) == frozenset()  # configured words only


def test_facts_of_an_unknown_processor_become_records() -> None:
    day = date(2024, 3, 4)
    facts: list[Fact] = [
        BalanceMovement(key="movement:m", business_date=day, processor="zeta", movement_id="m",
                        payout_id="z1", category="refund", amount=_usd(-500), fee=_usd(0),
                        net=_usd(-500)),
        Payment(key="payment:p", business_date=day, processor="zeta", payment_id="p",
                gross=_usd(900)),
        Payout(key="payout:z1", business_date=day, processor="zeta", payout_id="z1",
               amount=_usd(400), arrival_date=day, status="paid"),
    ]  # fmt: skip
    found = fact_records(facts)
    assert [type(r) for r in found] == [MovementRecord, PaymentRecord, PayoutRecord]
    composition = from_movements([Movement("refund", -500, 0), Movement("charge", 900, 0)])
    assert composition is not None
    assert (composition.gross_minor, composition.refunds_minor) == (900, -500)


async def test_a_processor_reconciliation_never_heard_of_is_matched_composed_and_flagged(
    acme_installed: None, dsn: str, store: EventStore, recon: Recon
) -> None:
    events = [
        # ap_1: composed from its movements (the payout's own movement left out), matched
        movement("m1", "charge", 10_000, 300, payout="ap_1", order="A-1001"),
        movement("m2", "refund", -1_000, payout="ap_1"),
        movement("m3", "fee", -50, payout="ap_1"),
        movement("m4", "adjustment", 200, payout="ap_1"),
        movement("m5", "payout", -8_850, payout="ap_1"),
        payout("ap_1", 8_850, "2024-03-04"),
        # ap_2: acme states what it is made of; the deposit is a cent short
        movement("m6", "charge", 999, payout="ap_2"),  # the statement wins over movements
        payout("ap_2", 5_000, "2024-03-06", statement={
            "gross": 5_300, "refunds": 0, "fees": -150, "disputes": -150, "adjustments": 0}),
        # ap_3: its movements do not add up to it, and it never reaches the bank
        movement("m7", "charge", 2_000, payout="ap_3"),
        payout("ap_3", 3_000, "2024-03-11"),
        # not paid out yet: no payout's composition reads it
        movement("m8", "charge", 4_000, 100),
    ]  # fmt: skip
    bank = [
        bank_line("B1", "2024-03-05", 8_850, "ACME PAYMENTS TRANSFER"),
        bank_line("B2", "2024-03-06", 4_999, "ACME PAYMENTS TRANSFER"),
        bank_line("B3", "2024-03-20", 777, "ACME PAYMENTS TRANSFER"),  # no payout explains it
        bank_line("B4", "2024-03-20", 1_234, "CORNER COFFEE REFUND"),  # no hint: not flagged
    ]
    async with reconciliation_running(dsn):
        await store.append(bank)  # deposits before payouts
        await store.append(events)
        await recon.settle()
        before = await recon.snapshot()
        await recon.rebuild(store)
        after = await recon.snapshot()
    payouts = {p["payout_id"]: p for p in await recon.payouts()}
    found = {(e["kind"], e["source"], e["reference"]): e for e in await recon.exceptions()}

    assert after == before  # a rebuild writes identical rows
    states = {p: (r["status"], r["bank_line"], r["difference_minor"]) for p, r in payouts.items()}
    assert states == {
        "ap_1": ("matched", "B1", 0),
        "ap_2": ("amount_mismatch", "B2", -1),
        "ap_3": ("missing_deposit", None, None),
    }  # fmt: skip
    assert [payouts["ap_1"][p] for p in PARTS] == [10_000, -1_000, -350, 0, 200]
    assert [payouts["ap_2"][p] for p in PARTS] == [5_300, 0, -150, -150, 0]
    assert [payouts["ap_3"][p] for p in PARTS] == [2_000, 0, 0, 0, 0]
    assert set(found) == {
        ("amount_mismatch", SOURCE, "ap_2"),
        ("composition_mismatch", SOURCE, "ap_3"),
        ("missing_deposit", SOURCE, "ap_3"),
        ("unexplained_deposit", "bank:checking", "B3"),
        ("payment_without_order", SOURCE, "m1"),
    }
    assert found["composition_mismatch", SOURCE, "ap_3"]["difference_minor"] == -1_000
    assert (
        "a acme deposit of 777 USD" in found["unexplained_deposit", "bank:checking", "B3"]["detail"]
    )
    assert len(before["movements"]) == 8
    assert all(",acme," in row for row in before["movements"])
