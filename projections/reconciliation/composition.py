"""Payout composition: what a payout is made of, and whether that adds up to its amount.

Every component is signed the way it moved the processor balance, so the five of them sum to the
payout amount: ``gross`` (charges, positive), ``refunds`` (negative), ``fees`` (all fees of every
movement, negative), ``disputes`` (chargebacks, negative; a reversal positive) and
``adjustments`` (everything else, signed: reserved and released funds, corrections, credits,
debits, retried payouts).

Sources, both canonical facts: the processor's own statement on the ``Payout`` fact
(``Payout.composition``, e.g. a Shopify payout's summary) when it carries one; otherwise the
``BalanceMovement`` facts that name the payout (by their canonical ``category``); otherwise the
composition is unknown (null). Which processor it is does not matter here: each connector's
mapper maps its own category names to the canonical ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from hub.domain.facts import PayoutComposition


@dataclass(frozen=True)
class Movement:
    """One balance movement of a payout: its canonical ``category`` (``MovementCategory``; any
    other value counts as an adjustment), ``amount`` gross, ``fee`` a cost (positive)."""

    category: str
    amount_minor: int
    fee_minor: int


@dataclass(frozen=True)
class Composition:
    """A payout's components (signed; see the module docstring)."""

    gross_minor: int
    refunds_minor: int
    fees_minor: int
    disputes_minor: int
    adjustments_minor: int

    @property
    def total_minor(self) -> int:
        """What the components add up to (the payout amount when they are complete)."""
        return (
            self.gross_minor
            + self.refunds_minor
            + self.fees_minor
            + self.disputes_minor
            + self.adjustments_minor
        )


_PARTS: dict[str, str] = {"charge": "gross", "refund": "refunds", "dispute": "disputes"}
"""Canonical categories by component: a ``fee`` movement is all fees, the ``payout`` itself is
left out, anything else (``adjustment``) is an adjustment."""


def from_movements(movements: Iterable[Movement]) -> Composition | None:
    """The composition from a payout's balance movements (None when there are none)."""
    parts = {"gross": 0, "refunds": 0, "fees": 0, "disputes": 0, "adjustments": 0}
    seen = False
    for movement in movements:
        if movement.category == "payout":
            continue
        seen = True
        if movement.category == "fee":
            parts["fees"] += movement.amount_minor - movement.fee_minor
            continue
        parts[_PARTS.get(movement.category, "adjustments")] += movement.amount_minor
        parts["fees"] -= movement.fee_minor
    if not seen:
        return None
    return Composition(
        parts["gross"], parts["refunds"], parts["fees"], parts["disputes"], parts["adjustments"]
    )


def from_statement(statement: PayoutComposition) -> Composition:
    """The composition a processor states for its payout (``Payout.composition``)."""
    return Composition(
        gross_minor=statement.gross.minor,
        refunds_minor=statement.refunds.minor,
        fees_minor=statement.fees.minor,
        disputes_minor=statement.disputes.minor,
        adjustments_minor=statement.adjustments.minor,
    )
