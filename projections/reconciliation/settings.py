"""How reconciliation matches: the arrival window, descriptor hints and tolerances.

Per tenant, from ``[tenants.NAME.reconciliation]`` in the ``LEDGERHUB_CONFIG`` file, validated
with the rest of the file when it is loaded (every key optional; the defaults below otherwise)::

    [tenants.default.reconciliation]
    window_before = 1              # business days a deposit may land before the arrival date
    window_after = 5               # … and after it
    mismatch_tolerance_bp = 100    # an amount_mismatch pairs amounts within 1 % (basis points)
    duplicate_window_days = 2      # bank lines with the same amount and payee this close: flagged
    payment_terms_days = 30        # an open order not paid this many days after it: order_unpaid
    document_grace_days = 2        # a document not synced this many days after: document_missing
    tieout_grace_days = 5          # a clearing day that does not tie is "off" this many days after
    hints = { stripe = ["STRIPE", "STRIPE PAYMENTS"] }  # per processor, case-insensitive
    holidays = ["2026-12-25"]      # days that are no business days for the windows (YYYY-MM-DD)

Descriptor hints: the words a processor's deposits carry in the bank statement's payee or
description. A processor ``hints`` does not name is hinted by its own name in upper case
(``default_hints``: ``stripe`` → ``STRIPE``, ``shopify`` → ``SHOPIFY``), so a new processor
needs no configuration and no code here. An unmatched deposit is an ``unexplained_deposit`` when
it carries the hint of a processor the tenant's facts in its currency name (payouts, balance
movements, payments) or of one ``hints`` configures.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from pydantic import BaseModel, ConfigDict, Field


def default_hints(processor: str) -> tuple[str, ...]:
    """The words a processor's deposits carry unless configured: its name in upper case."""
    return (processor.upper(),)


class MatchSettings(BaseModel):
    """One tenant's matching rules (see the module docstring for the config keys)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    window_before: int = Field(default=1, ge=0, le=30)
    window_after: int = Field(default=5, ge=0, le=60)
    mismatch_tolerance_bp: int = Field(default=100, ge=0, le=10_000)
    duplicate_window_days: int = Field(default=2, ge=0, le=31)
    payment_terms_days: int = Field(default=30, ge=0, le=365)
    document_grace_days: int = Field(default=2, ge=0, le=365)
    tieout_grace_days: int = Field(default=5, ge=0, le=60)
    hints: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    """Configured hint words per processor (any other processor: ``default_hints``)."""
    holidays: frozenset[date] = frozenset()

    def words(self, processor: str) -> tuple[str, ...]:
        """The hint words of ``processor``: configured, else ``default_hints``."""
        configured = self.hints.get(processor)
        return default_hints(processor) if configured is None else configured

    def hints_at(self, processor: str, text: str) -> bool:
        """Whether ``text`` (a bank line's payee and description) carries a hint word of
        ``processor`` (case-insensitive)."""
        upper = text.upper()
        return any(word.upper() in upper for word in self.words(processor))

    def hinted(self, text: str, processors: Iterable[str] = ()) -> frozenset[str]:
        """Which of ``processors`` (and of those ``hints`` configures) ``text`` carries a hint
        word of."""
        known = set(processors) | set(self.hints)
        return frozenset(p for p in known if self.hints_at(p, text))

    def within_tolerance(self, amount_minor: int, difference_minor: int) -> bool:
        """Whether a deposit ``difference_minor`` away from ``amount_minor`` may be a mismatch
        of that payout rather than another deposit (at least one minor unit always is)."""
        limit = max(abs(amount_minor) * self.mismatch_tolerance_bp, 10_000)
        return abs(difference_minor) * 10_000 <= limit
