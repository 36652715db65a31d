"""Books a bookkeeper signs (issue 21): refunds give back their tax and shipping, shop-side
WooCommerce refunds are booked, and a payment naming an order the log does not hold waits in
unapplied payments until the order arrives.

The shop is the WooCommerce sample order 727 (REST API v3 shape): total 29.35 = lines 18.00 +
shipping 10.00 + tax 1.35; it is paid through Stripe (a charge whose ``metadata.order_id`` names
it). Accounts of the default chart: 1100 receivable, 1200 Stripe clearing, 2100 sales tax,
2300 unapplied payments, 4000 sales, 4100 shipping, 4900 refunds.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from hub.domain.events import NewEvent
from hub.domain.money import Money
from hub.store import EventStore
from projections.ledger.posting import OrderFigures, split_refund
from tests.ledger.harness import Books, ledger_running, new, sample
from tests.ledger.scenarios import STRIPE, STRIPE_SOURCE, charge, stripe_event

WOO = "woocommerce:shop"
T = 1490200088 + 3600  # an hour after the order was created
TOTAL, TAX, SHIPPING, LINES = 2935, 135, 1000, 1800


def _usd(minor: int) -> Money:
    return Money(minor=minor, currency="USD")


def order(event_type: str = "woocommerce.order.created", **changes: Any) -> NewEvent:
    data = {**sample("woocommerce", "woocommerce.order.created"), **changes}
    modified = changes.get("date_modified_gmt", "2017-03-22T16:28:08")
    return new(WOO, f"order:727@{modified}", event_type, data, f"{modified}+00:00")


def listing(refund_id: int, total: str, modified: str) -> NewEvent:
    """The order as ``order.updated`` delivers it after a refund: ``refunds[]`` by total."""
    return order(
        "woocommerce.order.updated",
        status="refunded" if total == "-29.35" else "processing",
        date_modified_gmt=modified,
        refunds=[{"id": refund_id, "reason": "", "total": total}],
    )


def refund_object(refund_id: int, amount: str, **lines: Any) -> NewEvent:
    base = sample("woocommerce", "woocommerce.refund")
    refund = {**base["refund"], "id": refund_id, "amount": amount, **lines}
    data = {**base, "refund": refund}
    return new(WOO, f"refund:{refund_id}", "woocommerce.refund", data, "2017-03-23T10:00:00+00:00")


def stripe_charge(charge_id: str = "ch_W", amount: int = TOTAL, order_id: str = "727") -> NewEvent:
    obj = charge(charge_id, amount, T, metadata={"order_id": order_id})
    event = stripe_event("charge.succeeded", obj, T)
    return new(STRIPE_SOURCE, f"evt_{charge_id}", "stripe.charge.succeeded", event,
               "2017-03-22T17:28:08+00:00")  # fmt: skip


def stripe_refund(refund_id: str, amount: int, charge_id: str = "ch_W") -> NewEvent:
    """A refund naming only its charge (Stripe refunds carry no ``metadata.order_id``)."""
    obj = {**copy.deepcopy(STRIPE["refund"]), "id": refund_id, "charge": charge_id,
           "amount": amount, "created": T + 86400, "balance_transaction": None,
           "metadata": {}, "status": "succeeded"}  # fmt: skip
    event = stripe_event("refund.created", obj, T + 86400)
    return new(STRIPE_SOURCE, f"evt_{refund_id}", "stripe.refund.created", event,
               "2017-03-23T17:28:08+00:00")  # fmt: skip


async def _book(dsn: str, store: EventStore, books: Books, *batches: list[NewEvent]) -> Any:
    """Append each batch in turn (the ledger catching up in between); the last balances."""
    async with ledger_running(dsn):
        for batch in batches:
            await store.append(batch)
            await books.settle()
        return await books.balances()


def _get(balances: dict[tuple[str, str], int], code: str) -> int:
    return balances.get((code, "USD"), 0)


# ------------------------------------------------------------------ the split rule


def test_a_full_refund_gives_back_exactly_the_orders_tax_and_shipping() -> None:
    figures = OrderFigures(_usd(TOTAL), _usd(TAX), _usd(SHIPPING))
    assert split_refund(_usd(TOTAL), figures) == (_usd(LINES), _usd(TAX), _usd(SHIPPING))


def test_a_partial_refund_is_split_pro_rata_rounded_half_up_the_net_taking_the_rest() -> None:
    figures = OrderFigures(_usd(TOTAL), _usd(TAX), _usd(SHIPPING))
    # tax: 645 * 135 / 2935 = 29.67 -> 30; tax + shipping: 645 * 1135 / 2935 = 249.43 -> 249
    assert split_refund(_usd(645), figures) == (_usd(396), _usd(30), _usd(219))
    # exactly half a cent: rounded up (tax 1 * 1 / 2 = 0.5 -> 1); the net takes the rest
    half = OrderFigures(_usd(2), _usd(1), _usd(0))
    assert split_refund(_usd(1), half) == (_usd(0), _usd(1), _usd(0))
    # tax and shipping both half a cent: tax 0.5 -> 1, tax + shipping 1.0 -> 1, shipping 0
    both = OrderFigures(_usd(4), _usd(1), _usd(1))
    assert split_refund(_usd(2), both) == (_usd(1), _usd(1), _usd(0))
    # the parts always add up to the refund, and never exceed it
    for amount in range(TOTAL + 1):
        net, tax, shipping = split_refund(_usd(amount), figures)
        assert net.minor + tax.minor + shipping.minor == amount
        assert min(net.minor, tax.minor, shipping.minor) >= 0


def test_without_the_order_or_in_another_currency_the_refund_is_all_net() -> None:
    assert split_refund(_usd(500), None) == (_usd(500), _usd(0), _usd(0))
    eur = OrderFigures(Money(minor=TOTAL, currency="EUR"), Money(minor=TAX, currency="EUR"),
                       Money(minor=SHIPPING, currency="EUR"))  # fmt: skip
    assert split_refund(_usd(500), eur) == (_usd(500), _usd(0), _usd(0))


# ------------------------------------------------------------------ processor-side refunds


async def test_a_full_stripe_refund_of_a_taxed_order_leaves_sales_tax_payable_at_zero(
    dsn: str, store: EventStore, books: Books
) -> None:
    tb = await _book(dsn, store, books, [order(), stripe_charge(), stripe_refund("re_W", TOTAL)])
    assert _get(tb, "2100") == 0  # sales tax payable: the 1.35 went back to the customer
    assert _get(tb, "4100") == 0  # shipping given back too
    assert _get(tb, "4900") == LINES  # the refunds account holds the net only
    assert _get(tb, "4000") == -LINES
    assert _get(tb, "1100") == 0  # nothing owed either way
    assert _get(tb, "1200") == 0  # charged and refunded through Stripe
    assert _get(tb, "2300") == 0


async def test_a_partial_stripe_refund_reduces_tax_and_shipping_pro_rata(
    dsn: str, store: EventStore, books: Books
) -> None:
    tb = await _book(dsn, store, books, [order(), stripe_charge(), stripe_refund("re_W", 645)])
    assert _get(tb, "2100") == -TAX + 30
    assert _get(tb, "4100") == -SHIPPING + 219
    assert _get(tb, "4900") == 396
    assert _get(tb, "1100") == 0
    assert _get(tb, "1200") == TOTAL - 645


@pytest.mark.parametrize("shop_first", [True, False], ids=["shop-first", "stripe-first"])
async def test_a_refund_reported_by_the_shop_and_by_stripe_is_booked_once_either_way(
    dsn: str, store: EventStore, books: Books, shop_first: bool
) -> None:
    shop = [listing(728, "-29.35", "2017-03-23T10:00:00")]
    processor = [stripe_refund("re_W", TOTAL)]
    first, second = (shop, processor) if shop_first else (processor, shop)
    tb = await _book(dsn, store, books, [order(), stripe_charge()], first, second)
    assert _get(tb, "2100") == 0
    assert _get(tb, "4100") == 0
    assert _get(tb, "4900") == LINES  # once, not twice
    assert _get(tb, "1100") == 0
    assert _get(tb, "1200") == 0
    stripe_side = await books.entry(f"{STRIPE_SOURCE}/refund:re_W")
    assert stripe_side is not None  # the shop's refund books the order side: Stripe settles it
    assert sorted(zip(stripe_side["accounts"], stripe_side["amounts"], strict=True)) == [
        ("1100", TOTAL),
        ("1200", -TOTAL),
    ]


# ------------------------------------------------------------------ WooCommerce refunds


async def test_a_refund_made_in_woocommerce_is_booked_with_its_stated_split_once(
    dsn: str, store: EventStore, books: Books
) -> None:
    # the refund object states tax 0.45 on the 6.00 line; then the order lists it by total
    tb = await _book(
        dsn,
        store,
        books,
        [order(), refund_object(728, "6.45")],
        [listing(728, "-6.45", "2017-03-23T10:00:05")],
    )
    assert _get(tb, "2100") == -(TAX - 45)
    assert _get(tb, "4900") == 600
    assert _get(tb, "4100") == -SHIPPING
    assert _get(tb, "1100") == TOTAL - 645  # owed back to the customer: no processor paid it
    entry = await books.entry(f"{WOO}/refund:728")
    assert entry is not None
    assert len(entry["positions"]) == 2  # one refund, stated twice
    assert entry["business_date"].isoformat() == "2017-03-23"


async def test_a_refund_listed_by_total_is_split_pro_rata_until_its_object_states_the_split(
    dsn: str, store: EventStore, books: Books
) -> None:
    async with ledger_running(dsn):
        await store.append([order(), listing(728, "-6.45", "2017-03-23T10:00:00")])
        await books.settle()
        listed = await books.balances()
        await store.append([refund_object(728, "6.45")])
        await books.settle()
        stated = await books.balances()
    assert (_get(listed, "2100"), _get(listed, "4100"), _get(listed, "4900")) == (
        -TAX + 30, -SHIPPING + 219, 396)  # fmt: skip
    assert (_get(stated, "2100"), _get(stated, "4100"), _get(stated, "4900")) == (
        -TAX + 45, -SHIPPING, 600)  # fmt: skip
    assert _get(stated, "1100") == TOTAL - 645


async def test_a_woocommerce_shipping_refund_states_its_shipping(
    dsn: str, store: EventStore, books: Books
) -> None:
    shipping = {"shipping_lines": [{"id": 9, "total": "-10.00", "total_tax": "0.00"}],
                "line_items": []}  # fmt: skip
    tb = await _book(dsn, store, books, [order(), refund_object(730, "10.00", **shipping)])
    assert _get(tb, "4100") == 0
    assert _get(tb, "2100") == -TAX
    assert _get(tb, "4900") == 0


# ------------------------------------------------------------------ unapplied payments


async def test_a_payment_for_an_unknown_order_waits_in_unapplied_then_moves_to_receivable(
    dsn: str, store: EventStore, books: Books
) -> None:
    async with ledger_running(dsn):
        await store.append([stripe_charge(), stripe_refund("re_W", 645)])
        await books.settle()
        waiting = await books.balances()
        arrived = await store.append([order()])
        await books.settle()
        applied = await books.balances()
        payment = await books.entry(f"{STRIPE_SOURCE}/charge:ch_W")
        rows = await books.journal_rows()
        await books.rebuild(store)
        await books.settle()
        rebuilt = await books.journal_rows()
    # before the order: a liability to the customer, not a smaller receivable
    assert _get(waiting, "2300") == -(TOTAL - 645)
    assert _get(waiting, "1100") == 0
    assert _get(waiting, "2100") == 0
    assert _get(waiting, "1200") == TOTAL - 645
    # the order arrives: the payment and its refund are applied to it
    assert _get(applied, "2300") == 0
    assert _get(applied, "1100") == 0
    assert _get(applied, "2100") == -TAX + 30
    assert _get(applied, "4900") == 396
    assert payment is not None
    assert arrived[0].position in list(payment["positions"])  # re-booked by the order's event
    assert dict(zip(payment["accounts"], payment["amounts"], strict=True)) == {
        "1100": -TOTAL,
        "1200": TOTAL,
    }
    assert rebuilt == rows  # a rebuild books exactly the same, byte for byte


async def test_a_payment_for_an_order_already_in_the_log_goes_to_receivable(
    dsn: str, store: EventStore, books: Books
) -> None:
    tb = await _book(dsn, store, books, [order()], [stripe_charge()])
    assert _get(tb, "1100") == 0
    assert _get(tb, "2300") == 0


async def test_a_payment_naming_no_order_is_the_sale_itself(
    dsn: str, store: EventStore, books: Books
) -> None:
    obj = charge("ch_S", 1099, T)
    event = stripe_event("charge.succeeded", obj, T)
    tb = await _book(dsn, store, books, [new(STRIPE_SOURCE, "evt_S", "stripe.charge.succeeded",
                                            event, "2017-03-22T17:28:08+00:00")])  # fmt: skip
    assert _get(tb, "4000") == -1099
    assert _get(tb, "2300") == 0


async def test_a_refund_seen_before_its_charge_and_order_is_applied_when_they_arrive(
    dsn: str, store: EventStore, books: Books
) -> None:
    async with ledger_running(dsn):
        await store.append([stripe_refund("re_W", 645)])
        await books.settle()
        alone = await books.balances()
        await store.append([stripe_charge()])
        await books.settle()
        await store.append([order()])
        await books.settle()
        tb = await books.balances()
    assert _get(alone, "4900") == 645  # naming no order it knows: a refund of a sale
    assert (_get(tb, "2100"), _get(tb, "4100"), _get(tb, "4900")) == (
        -TAX + 30, -SHIPPING + 219, 396)  # fmt: skip
    assert (_get(tb, "1100"), _get(tb, "2300"), _get(tb, "1200")) == (0, 0, TOTAL - 645)
