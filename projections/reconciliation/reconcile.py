"""One (tenant, currency)'s reconciliation, recomputed whole from its stored candidates: the
matches, each payout's composition, duplicate bank lines and the exceptions. Pure."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from itertools import pairwise

from projections.ledger.posting import payee_key
from projections.reconciliation.composition import Composition, Movement, from_movements
from projections.reconciliation.matching import (
    DepositCandidate,
    Match,
    PayoutCandidate,
    match,
    window,
)
from projections.reconciliation.orders import (
    StoredOrder,
    StoredPayment,
    StoredRefund,
    order_exceptions,
)
from projections.reconciliation.rows import ExceptionRow, new_exception
from projections.reconciliation.settings import MatchSettings

UNMATCHABLE = frozenset({"failed", "canceled"})
"""Payout statuses that never reach the bank (left out of matching and of the payouts view)."""


@dataclass(frozen=True)
class StoredPayout:
    """A payout row as stored (before reconciling)."""

    source: str
    payout_id: str
    processor: str
    currency: str
    amount_minor: int
    arrival_date: date
    status: str
    summary: Composition | None


@dataclass(frozen=True)
class StoredLine:
    """A bank line row as stored."""

    source: str
    line_id: str
    account: str | None
    currency: str
    amount_minor: int
    business_date: date
    payee: str | None
    description: str | None

    @property
    def text(self) -> str:
        """Payee and description, for descriptor hints."""
        return f"{self.payee or ''} {self.description or ''}"


@dataclass(frozen=True)
class PayoutResult:
    """What reconciling says about one payout."""

    source: str
    payout_id: str
    match_state: str
    bank_line: str | None
    difference_minor: int | None
    window_start: date
    window_end: date
    composition: Composition | None


@dataclass(frozen=True)
class LineResult:
    """What reconciling says about one bank line."""

    source: str
    line_id: str
    matched_payout: str | None
    duplicate_of: str | None


@dataclass
class Outcome:
    """Everything recomputed for one (tenant, currency)."""

    payouts: list[PayoutResult] = field(default_factory=list)
    lines: list[LineResult] = field(default_factory=list)
    exceptions: list[ExceptionRow] = field(default_factory=list)


def reconcile(
    payouts: Sequence[StoredPayout],
    lines: Sequence[StoredLine],
    movements: dict[tuple[str, str], list[Movement]],
    settings: MatchSettings,
    orders: Sequence[StoredOrder] = (),
    payments: Sequence[StoredPayment] = (),
    refunds: Sequence[StoredRefund] = (),
    documents: frozenset[str] | None = None,
    other_orders: frozenset[str] = frozenset(),
    processors: frozenset[str] = frozenset(),
) -> Outcome:
    """The reconciliation of one tenant's payouts, bank lines, payout balance movements,
    orders, payments and refunds in one currency (``movements`` by (source, payout id));
    ``other_orders``: the tenant's order ids in other currencies; ``processors``: the
    processors the tenant's facts in this currency name (with those of ``payouts``, and those
    the settings' ``hints`` configure, the processors whose hint makes an unmatched deposit an
    ``unexplained_deposit``).

    It is the union of three parts that each depend only on their own rows, which is what lets
    the projection recompute a part of a (tenant, currency) rather than all of it
    (``projections.reconciliation.incremental``): ``reconcile_deposits`` (matching, per
    connected group of payouts and deposits), ``reconcile_duplicates`` (per run of look-alike
    lines) and ``order_exceptions`` (per order)."""
    outcome = reconcile_deposits(payouts, lines, movements, settings, processors)
    duplicates, flagged = reconcile_duplicates(lines, settings)
    outcome.lines = [
        LineResult(r.source, r.line_id, r.matched_payout, duplicates.get((r.source, r.line_id)))
        for r in outcome.lines
    ]
    outcome.exceptions.extend(flagged)
    outcome.exceptions.extend(
        order_exceptions(orders, payments, settings, refunds, documents, other_orders)
    )
    outcome.exceptions.sort(key=lambda e: e.id)
    return outcome


def reconcile_deposits(
    payouts: Sequence[StoredPayout],
    lines: Sequence[StoredLine],
    movements: dict[tuple[str, str], list[Movement]],
    settings: MatchSettings,
    processors: frozenset[str] = frozenset(),
) -> Outcome:
    """Payouts matched to deposits: each payout's state and composition, each line's matched
    payout (``duplicate_of`` left None), and the payout exceptions and unexplained deposits.

    Given a set of payouts and lines closed under "may be matched to" (every line a payout's
    window admits, and every payout whose window admits a line; see ``incremental``), the answer
    for them is the same as with every payout and line of the currency: the greedy matching
    never looks beyond the pairs it may make."""
    known = processors | {p.processor for p in payouts}
    expected = [p for p in payouts if p.status not in UNMATCHABLE]
    candidates = [
        PayoutCandidate(p.source, p.payout_id, p.processor, p.currency, p.amount_minor,
                        p.arrival_date)
        for p in expected
    ]  # fmt: skip
    deposits = [
        DepositCandidate(line.source, line.line_id, line.currency, line.amount_minor,
                         line.business_date, line.text)
        for line in lines
    ]  # fmt: skip
    matches = {m.payout: m for m in match(candidates, deposits, settings)}
    by_line = {m.deposit: m.payout for m in matches.values()}
    lines_by_key = {(line.source, line.line_id): line for line in lines}
    outcome = Outcome()
    for payout in sorted(payouts, key=lambda p: (p.source, p.payout_id)):
        found = matches.get((payout.source, payout.payout_id))
        start, end = window(payout.arrival_date, settings)
        composition = payout.summary or from_movements(
            movements.get((payout.source, payout.payout_id), [])
        )
        state = "unmatched" if found is None else (
            "matched" if found.difference_minor == 0 else "amount_mismatch"
        )  # fmt: skip
        outcome.payouts.append(
            PayoutResult(
                payout.source, payout.payout_id, state,
                None if found is None else found.deposit[1],
                None if found is None else found.difference_minor,
                start, end, composition,
            )
        )  # fmt: skip
        if payout.status in UNMATCHABLE:
            continue
        outcome.exceptions.extend(_payout_exceptions(payout, found, end, composition, lines_by_key))
    for line in sorted(lines, key=lambda x: (x.source, x.line_id)):
        key = (line.source, line.line_id)
        payout_key = by_line.get(key)
        matched = None if payout_key is None else f"{payout_key[0]}/{payout_key[1]}"
        outcome.lines.append(LineResult(line.source, line.line_id, matched, None))
        hinted = settings.hinted(line.text, known)
        if payout_key is None and line.amount_minor > 0 and hinted:
            names = ", ".join(sorted(hinted))
            outcome.exceptions.append(
                new_exception(
                    "unexplained_deposit", line.source, line.line_id, line.amount_minor, None,
                    f"a {names} deposit of {line.amount_minor} {line.currency} on "
                    f"{line.business_date} matches no payout",
                )
            )  # fmt: skip
    return outcome


def reconcile_duplicates(
    lines: Sequence[StoredLine], settings: MatchSettings
) -> tuple[dict[tuple[str, str], str], list[ExceptionRow]]:
    """(source, line id) → the earlier line each looks like a duplicate of, and their
    ``duplicate_bank_line`` exceptions."""
    duplicates = _duplicates(lines, settings)
    lines_by_key = {(line.source, line.line_id): line for line in lines}
    flagged = []
    for (source, line_id), earlier in sorted(duplicates.items()):
        line, first = lines_by_key[source, line_id], lines_by_key[source, earlier]
        flagged.append(
            new_exception(
                "duplicate_bank_line", source, line_id, line.amount_minor, None,
                f"same amount and payee as line {first.line_id} on {first.business_date}",
            )
        )  # fmt: skip
    return duplicates, flagged


def _payout_exceptions(
    payout: StoredPayout,
    found: Match | None,
    window_end: date,
    composition: Composition | None,
    lines: dict[tuple[str, str], StoredLine],
) -> list[ExceptionRow]:
    rows: list[ExceptionRow] = []
    amount = payout.amount_minor
    if found is None:
        rows.append(
            new_exception(
                "missing_deposit", payout.source, payout.payout_id, amount, None,
                f"no deposit of {amount} {payout.currency} between the arrival date "
                f"{payout.arrival_date} and {window_end}",
                window_end,
            )
        )  # fmt: skip
    else:
        difference = found.difference_minor
        line = lines[found.deposit]
        if difference:
            rows.append(
                new_exception(
                    "amount_mismatch", payout.source, payout.payout_id, amount, difference,
                    f"deposit {line.line_id} on {line.business_date} is {line.amount_minor}, "
                    f"{difference:+d} against the payout",
                )
            )  # fmt: skip
    if composition is not None and composition.total_minor != amount:
        rows.append(
            new_exception(
                "composition_mismatch", payout.source, payout.payout_id, amount,
                composition.total_minor - amount,
                f"its balance transactions add up to {composition.total_minor}, "
                f"not the payout's {amount}",
            )
        )  # fmt: skip
    return rows


def _duplicates(lines: Sequence[StoredLine], settings: MatchSettings) -> dict[tuple[str, str], str]:
    """(source, line id) → the earlier line it looks like a duplicate of: same account, amount
    and payee (``payee_key``), dated within ``duplicate_window_days``."""
    groups: dict[tuple[str, str | None, int, str], list[StoredLine]] = defaultdict(list)
    for line in lines:
        who = payee_key(line.payee) or payee_key(line.description)
        if who is not None:
            groups[line.source, line.account, line.amount_minor, who].append(line)
    found: dict[tuple[str, str], str] = {}
    for group in groups.values():
        group.sort(key=lambda x: (x.business_date, x.line_id))
        for earlier, later in pairwise(group):
            if (later.business_date - earlier.business_date).days <= settings.duplicate_window_days:
                found[later.source, later.line_id] = earlier.line_id
    return found
