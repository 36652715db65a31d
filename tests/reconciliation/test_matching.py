"""Matching and composition as pure functions: windows in business days, hints, tolerance,
one deposit per payout, and the same answer whatever order the candidates come in."""

from __future__ import annotations

import random
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.config import load_config
from hub.errors import ConfigError
from projections.reconciliation.composition import Movement, from_movements
from projections.reconciliation.matching import (
    DepositCandidate,
    PayoutCandidate,
    add_business_days,
    match,
    window,
)
from projections.reconciliation.settings import MatchSettings

RULES = MatchSettings()
FRIDAY = date(2024, 3, 8)


def payout(pid: str, amount: int, arrival: date, processor: str = "stripe") -> PayoutCandidate:
    return PayoutCandidate(f"{processor}:acct", pid, processor, "USD", amount, arrival)


def deposit(line: str, amount: int, day: date, text: str = "STRIPE TRANSFER") -> DepositCandidate:
    return DepositCandidate("bank:checking", line, "USD", amount, day, text)


def test_business_days_skip_weekends_both_ways() -> None:
    assert add_business_days(FRIDAY, 1) == date(2024, 3, 11)
    assert add_business_days(date(2024, 3, 11), -1) == FRIDAY
    assert add_business_days(FRIDAY, 5) == date(2024, 3, 15)
    assert window(date(2024, 3, 11), RULES) == (FRIDAY, date(2024, 3, 18))


def test_a_deposit_is_matched_inside_the_window_only() -> None:
    arrival = date(2024, 3, 11)  # a Monday: the window is Friday 8th … Monday 18th
    first, last = window(arrival, RULES)
    inside = [deposit("early", 500, first), deposit("late", 700, last)]
    outside = [deposit("too-early", 500, first - timedelta(days=1)),
               deposit("too-late", 700, last + timedelta(days=1))]  # fmt: skip
    found = match([payout("a", 500, arrival), payout("b", 700, arrival)], inside, RULES)
    missed = match([payout("a", 500, arrival), payout("b", 700, arrival)], outside, RULES)
    assert [(m.payout[1], m.deposit[1], m.difference_minor) for m in found] == [
        ("a", "early", 0), ("b", "late", 0)
    ]  # fmt: skip
    assert missed == []


def test_the_processor_hint_breaks_a_tie_then_the_closest_date() -> None:
    arrival = date(2024, 3, 12)
    deposits = [
        deposit("plain", 1000, arrival, "ACH CREDIT"),
        deposit("shopify", 1000, arrival + timedelta(days=2), "SHOPIFY PAYMENTS"),
        deposit("shopify-later", 1000, arrival + timedelta(days=3), "SHOPIFY PAYMENTS"),
    ]
    [found] = match([payout("s", 1000, arrival, "shopify")], deposits, RULES)
    assert found.deposit[1] == "shopify"


def test_one_deposit_matches_at_most_one_payout() -> None:
    arrival = date(2024, 3, 12)
    found = match(
        [payout("a", 1000, arrival), payout("b", 1000, arrival + timedelta(days=1))],
        [deposit("only", 1000, arrival)],
        RULES,
    )
    assert [(m.payout[1], m.deposit[1]) for m in found] == [("a", "only")]


def test_an_amount_mismatch_needs_the_hint_and_the_tolerance() -> None:
    arrival = date(2024, 3, 12)
    payouts = [payout("a", 100_000, arrival)]
    near = match(payouts, [deposit("cent", 99_999, arrival)], RULES)
    unhinted = match(payouts, [deposit("cent", 99_999, arrival, "ACH CREDIT")], RULES)
    far = match(payouts, [deposit("far", 98_000, arrival)], RULES)  # 2 % off
    assert [(m.deposit[1], m.difference_minor) for m in near] == [("cent", -1)]
    assert unhinted == []
    assert far == []


def test_an_exact_match_wins_over_a_mismatch_for_the_same_deposit() -> None:
    arrival = date(2024, 3, 12)
    found = match(
        [payout("near", 1001, arrival), payout("exact", 1000, arrival)],
        [deposit("d", 1000, arrival)],
        RULES,
    )
    assert [(m.payout[1], m.difference_minor) for m in found] == [("exact", 0)]


def test_a_negative_payout_matches_a_debit_of_the_same_amount_only() -> None:
    arrival = date(2024, 3, 12)
    lines = [deposit("credit", 2500, arrival), deposit("debit", -2500, arrival),
             deposit("near-credit", 2499, arrival)]  # fmt: skip
    found = match([payout("neg", -2500, arrival), payout("neg2", -2499, arrival)], lines, RULES)
    assert [(m.payout[1], m.deposit[1], m.difference_minor) for m in found] == [("neg", "debit", 0)]


_days = st.integers(min_value=0, max_value=20).map(lambda n: FRIDAY + timedelta(days=n))
_amounts = st.sampled_from([1000, 1001, 2500, 999, -1000, -999])
_payouts = st.lists(
    st.builds(payout, st.text("abcdef", min_size=1, max_size=3), _amounts, _days,
              st.sampled_from(["stripe", "shopify"])),
    max_size=8, unique_by=lambda p: p.payout_id,
)  # fmt: skip
_deposits = st.lists(
    st.builds(deposit, st.text("uvwxyz", min_size=1, max_size=3), _amounts, _days,
              st.sampled_from(["STRIPE", "SHOPIFY", "ACH"])),
    max_size=8, unique_by=lambda d: d.line_id,
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(_payouts, _deposits, st.randoms(use_true_random=False))
def test_matching_is_independent_of_order_and_one_to_one(
    payouts: list[PayoutCandidate], deposits: list[DepositCandidate], rng: random.Random
) -> None:
    shuffled_payouts, shuffled_deposits = list(payouts), list(deposits)
    rng.shuffle(shuffled_payouts)
    rng.shuffle(shuffled_deposits)
    found = match(payouts, deposits, RULES)
    assert match(shuffled_payouts, shuffled_deposits, RULES) == found
    assert len({m.deposit for m in found}) == len(found) == len({m.payout for m in found})
    amounts = {(p.source, p.payout_id): p.amount_minor for p in payouts}
    lines = {("bank:checking", d.line_id): d.amount_minor for d in deposits}
    for m in found:
        assert lines[m.deposit] - amounts[m.payout] == m.difference_minor
        assert (lines[m.deposit] > 0) == (amounts[m.payout] > 0)


def test_composition_from_balance_transactions_sums_nets_and_leaves_the_payout_out() -> None:
    movements = [
        Movement("charge", 10_000, 320),
        Movement("refund", -2_000, 0),
        Movement("dispute", -5_000, 1_500),
        Movement("risk_reserved_funds", -700, 0),
        Movement("fee", -99, 0),
        Movement("payout", -99_999, 0),
    ]
    composition = from_movements(movements)
    assert composition is not None
    assert (composition.gross_minor, composition.refunds_minor, composition.fees_minor,
            composition.disputes_minor, composition.adjustments_minor) == (
        10_000, -2_000, -320 - 1_500 - 99, -5_000, -700
    )  # fmt: skip
    nets = sum(m.amount_minor - m.fee_minor for m in movements if m.category != "payout")
    assert composition.total_minor == nets
    assert from_movements([Movement("payout", -5, 0)]) is None


def test_tenant_holidays_are_no_business_days_for_the_window(tmp_path: Path) -> None:
    christmas = date(2026, 12, 25)  # a Friday
    path = tmp_path / "ledgerhub.toml"
    path.write_text(
        '[tenants.default.reconciliation]\nwindow_after = 1\nholidays = ["2026-12-25"]\n'
    )
    rules = load_config(path).section("reconciliation", "default", MatchSettings)
    arrival = date(2026, 12, 24)
    late = deposit("L1", 500, date(2026, 12, 28))  # Monday: one business day after the 24th
    assert rules.holidays == frozenset({christmas})
    assert add_business_days(arrival, 1, rules.holidays) == date(2026, 12, 28)
    assert add_business_days(date(2026, 12, 28), -1, rules.holidays) == arrival
    assert window(arrival, rules) == (date(2026, 12, 23), date(2026, 12, 28))
    assert [m.deposit for m in match([payout("po", 500, arrival)], [late], rules)] == [
        ("bank:checking", "L1")
    ]
    without = rules.model_copy(update={"holidays": frozenset()})
    assert match([payout("po", 500, arrival)], [late], without) == []


def test_a_holiday_that_is_not_a_date_is_refused_naming_the_key(tmp_path: Path) -> None:
    path = tmp_path / "ledgerhub.toml"
    path.write_text(
        '[tenants.acme]\n\n[tenants.acme.reconciliation]\nholidays = ["2026-12-25", "Christmas"]\n'
    )
    with pytest.raises(
        ConfigError, match=r"ledgerhub\.toml:4: tenants\.acme\.reconciliation\.holidays\.1: .*date"
    ):
        load_config(path)
