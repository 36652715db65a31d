"""``TenantLinks`` finds links by index: the same answers as a walk of every link it holds.

The ledger and the accounting projection ask, for every event, which links an order has, which
order a refund's payment names, and which refunds a payment's id resolves; these were walks of
every link the batch loaded. The walks are written out here as the reference."""

from __future__ import annotations

from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from hub.domain.facts import Payment, Refund
from hub.domain.money import Money
from projections.ledger.links import Link, Side, TenantLinks, _side

_IDS = st.sampled_from(["p1", "p2", "p3"])
_ORDERS = st.sampled_from(["o1", "o2", "o3"])
_KEYS = st.sampled_from([f"stripe:acct/{k}" for k in ("a", "b", "c", "d", "e", "f")])


@st.composite
def _facts(draw: st.DrawFn) -> Payment | Refund:
    if draw(st.booleans()):
        return Payment(
            key="payment", business_date=date(2024, 1, 2), processor="stripe",
            payment_id=draw(_IDS), gross=Money.of(1000, "USD"),
            order_ref=draw(st.none() | _ORDERS),
        )  # fmt: skip
    return Refund(
        key="refund", business_date=date(2024, 1, 3), refund_id="r",
        processor=draw(st.none() | st.just("stripe")), amount=Money.of(500, "USD"),
        order_ref=draw(st.none() | _ORDERS), payment_ref=draw(st.none() | _IDS),
    )  # fmt: skip


# a change: hold a link (key, fact, order it resolves to), or resolve a held one anew
_CHANGES = st.lists(
    st.tuples(st.booleans(), _KEYS, _facts(), st.none() | _ORDERS), min_size=1, max_size=30
)


def _walk_order_of(state: TenantLinks, fact: Refund) -> str | None:
    if fact.order_ref is not None:
        return fact.order_ref
    for link in state.links.values():
        if link.side == "payment" and link.payment_id == fact.payment_ref:
            return link.order_ref
    return None


@settings(max_examples=300, deadline=None)
@given(_CHANGES, _facts())
def test_indexed_lookups_answer_as_a_walk_of_every_link(
    changes: list[tuple[bool, str, Payment | Refund, str | None]], asked: Payment | Refund
) -> None:
    state = TenantLinks("acme")
    for hold, key, fact, ref in changes:
        if hold or key not in state.links:
            # a link keeps its side when a later fact of its key names no order (``take``)
            kept: Side | None = "payment" if isinstance(fact, Payment) else None
            if isinstance(fact, Refund):
                kept = "shop_refund" if fact.processor is None else "processor_refund"
            side = _side(fact) or kept
            assert side is not None
            state.put(Link(key, "stripe:acct", side, fact, ref, 1))
        else:
            state.refer(state.links[key], ref)
    for ref in ("o1", "o2", "o3"):
        walked = sorted(
            (link for link in state.links.values() if link.order_ref == ref),
            key=lambda link: link.key,
        )
        assert state.linked([ref]) == walked
        assert sorted(state._of(ref), key=lambda link: link.key) == walked
    assert state.linked(["o1", "o2"]) == sorted(
        (link for link in state.links.values() if link.order_ref in {"o1", "o2"}),
        key=lambda link: link.key,
    )
    if isinstance(asked, Refund):
        assert state.order_of(asked) == _walk_order_of(state, asked)
