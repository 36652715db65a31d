"""Payout composition: what a payout is made of, and whether that adds up to its amount.

Every component is signed the way it moved the processor balance, so the five of them sum to the
payout amount: ``gross`` (charges, positive), ``refunds`` (negative), ``fees`` (all fees of every
movement, negative), ``disputes`` (chargebacks, negative; a reversal positive) and
``adjustments`` (everything else, signed: reserved and released funds, corrections, credits,
debits, retried payouts).

Sources: a Shopify payout's own ``summary`` (Shopify's composition, exact) when the payout carries
one; otherwise the balance transactions that name the payout (Stripe's, pulled per payout; or
Shopify's payout transactions); otherwise the composition is unknown (null).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from hub.domain.money import to_minor


@dataclass(frozen=True)
class Movement:
    """One balance transaction of a payout: ``amount`` gross, ``fee`` a cost (positive)."""

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


_GROSS = frozenset({"charge", "payment"})
_REFUNDS = frozenset({"refund", "refund_failure", "partial_capture_reversal"})
_DISPUTES = frozenset({"dispute", "dispute_reversal"})
_FEES = frozenset({"fee", "stripe_fee", "application_fee"})
_PAYOUTS = frozenset({"payout", "payout_reversal", "payout_cancel", "payout_failure"})
"""Categories (Stripe ``reporting_category``/``type``, Shopify ``type``) by component; the
payout's own movement is left out; anything not named is an adjustment."""


def from_movements(movements: Iterable[Movement]) -> Composition | None:
    """The composition from a payout's balance transactions (None when there are none)."""
    parts = {"gross": 0, "refunds": 0, "fees": 0, "disputes": 0, "adjustments": 0}
    seen = False
    for movement in movements:
        if movement.category in _PAYOUTS:
            continue
        seen = True
        category = movement.category
        if category in _FEES:
            parts["fees"] += movement.amount_minor - movement.fee_minor
            continue
        part = (
            "gross"
            if category in _GROSS
            else "refunds"
            if category in _REFUNDS
            else "disputes"
            if category in _DISPUTES
            else "adjustments"
        )
        parts[part] += movement.amount_minor
        parts["fees"] -= movement.fee_minor
    if not seen:
        return None
    return Composition(
        parts["gross"], parts["refunds"], parts["fees"], parts["disputes"], parts["adjustments"]
    )


def from_shopify_summary(summary: Mapping[str, Any], currency: str) -> Composition:
    """The composition a Shopify payout's ``summary`` states (decimal strings; fee amounts are
    costs, so they are subtracted; reserved funds and retried payouts count as adjustments)."""

    def minor(name: str) -> int:
        value = summary.get(name)
        return 0 if value is None else to_minor(str(value), currency)

    fees = sum(minor(name) for name in summary if name.endswith("_fee_amount"))
    return Composition(
        gross_minor=minor("charges_gross_amount"),
        refunds_minor=minor("refunds_gross_amount"),
        fees_minor=-fees,
        disputes_minor=0,
        adjustments_minor=(
            minor("adjustments_gross_amount")
            + minor("reserved_funds_gross_amount")
            + minor("retried_payouts_gross_amount")
        ),
    )
