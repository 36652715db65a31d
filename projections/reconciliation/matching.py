"""Payout ↔ bank deposit matching: a pure, deterministic function of the stored candidates.

The handler recomputes the matches of a whole (tenant, currency) from every stored payout and
deposit whenever one of them changes, so the result does not depend on the order events reached
the log, and a rebuild gives the same answer.

Rules, in order:

1. **Exact**: same currency, same amount in minor units, the deposit dated within the payout's
   window (``window_before`` business days before its arrival date … ``window_after`` after;
   business days are Monday to Friday except the tenant's ``holidays``). Among several
   candidates, a deposit whose text carries the payout's processor hint (by default the
   processor's name in upper case: STRIPE, SHOPIFY; see ``settings``) wins, then the one
   closest in days, then the lowest ids. Pairs are taken greedily in that order over every
   candidate pair, so each deposit matches at most one payout and each payout at most one
   deposit.
2. **Amount mismatch**: a payout still unmatched and a deposit still unmatched, in the window,
   the deposit carrying the payout's processor hint and within the tolerance
   (``mismatch_tolerance_bp``): the smallest difference wins, then the closest date, then ids.

Anything else stays unmatched: a payout becomes ``pending`` or ``missing_deposit`` depending on
the day it is looked at (see ``projections.reconciliation``), a deposit hinted by a processor
the tenant's facts name (or one ``hints`` configures) becomes an ``unexplained_deposit``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import date, timedelta

from projections.reconciliation.settings import MatchSettings


@dataclass(frozen=True, order=True)
class PayoutCandidate:
    """A payout expected at the bank: ``amount_minor`` positive (negative: the processor
    debits the bank account, matched with a line of money out)."""

    source: str
    payout_id: str
    processor: str
    currency: str
    amount_minor: int
    arrival_date: date


@dataclass(frozen=True, order=True)
class DepositCandidate:
    """A bank statement line (positive: money in); ``text`` is its payee and description."""

    source: str
    line_id: str
    currency: str
    amount_minor: int
    business_date: date
    text: str


@dataclass(frozen=True)
class Match:
    """A payout paired with a deposit; ``difference_minor`` = deposit - payout (0: exact)."""

    payout: tuple[str, str]
    deposit: tuple[str, str]
    difference_minor: int


def add_business_days(day: date, count: int, holidays: AbstractSet[date] = frozenset()) -> date:
    """``day`` moved ``count`` business days (Mon-Fri but ``holidays``) forward, or back when
    negative; a day off counts from itself (Saturday + 1 = Monday, Saturday - 1 = Friday)."""
    step = 1 if count >= 0 else -1
    moved = day
    for _ in range(abs(count)):
        moved += timedelta(days=step)
        while moved.weekday() >= 5 or moved in holidays:
            moved += timedelta(days=step)
    return moved


def window(arrival: date, settings: MatchSettings) -> tuple[date, date]:
    """The first and last day a payout arriving on ``arrival`` may land on the statement."""
    return (
        add_business_days(arrival, -settings.window_before, settings.holidays),
        add_business_days(arrival, settings.window_after, settings.holidays),
    )


def _key(payout: PayoutCandidate) -> tuple[str, str]:
    return payout.source, payout.payout_id


def _line(deposit: DepositCandidate) -> tuple[str, str]:
    return deposit.source, deposit.line_id


def match(
    payouts: Iterable[PayoutCandidate],
    deposits: Iterable[DepositCandidate],
    settings: MatchSettings,
) -> list[Match]:
    """The matches among ``payouts`` and ``deposits`` (any order in, the same answer out),
    sorted by payout."""
    payouts = sorted(set(payouts))
    deposits = sorted({d for d in deposits if d.amount_minor != 0})
    processors = {p.processor for p in payouts}
    hints = {_line(d): settings.hinted(d.text, processors) for d in deposits}
    by_amount: dict[tuple[str, int], list[DepositCandidate]] = defaultdict(list)
    for deposit in deposits:
        by_amount[deposit.currency, deposit.amount_minor].append(deposit)
    exact: list[tuple[int, int, tuple[str, str], tuple[str, str]]] = []
    for payout in payouts:
        first, last = window(payout.arrival_date, settings)
        for deposit in by_amount.get((payout.currency, payout.amount_minor), []):
            if first <= deposit.business_date <= last:
                hinted = payout.processor in hints[_line(deposit)]
                distance = abs((deposit.business_date - payout.arrival_date).days)
                exact.append((0 if hinted else 1, distance, _key(payout), _line(deposit)))
    taken_payouts: set[tuple[str, str]] = set()
    taken_deposits: set[tuple[str, str]] = set()
    found: list[Match] = []
    for *_, payout_key, line in sorted(exact):
        if payout_key not in taken_payouts and line not in taken_deposits:
            taken_payouts.add(payout_key)
            taken_deposits.add(line)
            found.append(Match(payout_key, line, 0))
    near: list[tuple[int, int, tuple[str, str], tuple[str, str], int]] = []
    for payout in payouts:
        if _key(payout) in taken_payouts:
            continue
        first, last = window(payout.arrival_date, settings)
        for deposit in deposits:
            if _line(deposit) in taken_deposits or deposit.currency != payout.currency:
                continue
            if payout.processor not in hints[_line(deposit)]:
                continue
            if (deposit.amount_minor > 0) != (payout.amount_minor > 0):
                continue
            if not first <= deposit.business_date <= last:
                continue
            difference = deposit.amount_minor - payout.amount_minor
            if settings.within_tolerance(payout.amount_minor, difference):
                distance = abs((deposit.business_date - payout.arrival_date).days)
                near.append((abs(difference), distance, _key(payout), _line(deposit), difference))
    for _, _, payout_key, line, difference in sorted(near):
        if payout_key not in taken_payouts and line not in taken_deposits:
            taken_payouts.add(payout_key)
            taken_deposits.add(line)
            found.append(Match(payout_key, line, difference))
    return sorted(found, key=lambda m: m.payout)
