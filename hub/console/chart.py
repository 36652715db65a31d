"""The console's chart of payouts against deposits, drawn server-side as inline SVG geometry
(no JavaScript): per day, a bar for what payouts were due to arrive and one for what the bank
received, in one currency."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

WIDTH = 960
HEIGHT = 320
_LEFT = 90
_BOTTOM = 40
_TOP = 16


@dataclass(frozen=True)
class Bar:
    """One bar: where it is drawn, and what it says (its ``title``, also for screen readers)."""

    x: float
    y: float
    width: float
    height: float
    kind: str
    day: date
    minor: int


@dataclass(frozen=True)
class Tick:
    """A labelled line across the chart at ``y`` (an amount) or a day under it at ``x``."""

    x: float
    y: float
    minor: int | None = None
    day: date | None = None


@dataclass(frozen=True)
class Chart:
    """A drawn chart of one currency; ``bars`` empty when there is nothing to draw."""

    currency: str
    bars: list[Bar]
    amount_ticks: list[Tick]
    day_ticks: list[Tick]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = _LEFT
    baseline: float = HEIGHT - _BOTTOM


def currencies(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The currencies ``rows`` hold, sorted."""
    return sorted({row["currency"] for row in rows})


def draw(rows: Sequence[dict[str, Any]], currency: str) -> Chart:
    """The chart of ``rows`` (``{"day", "currency", "payouts_minor", "deposits_minor"}``) in
    ``currency``."""
    days = [row for row in rows if row["currency"] == currency]
    top = max([max(r["payouts_minor"], r["deposits_minor"]) for r in days] + [0])
    baseline = HEIGHT - _BOTTOM
    if not days or top <= 0:
        return Chart(currency, [], [], [])
    span = baseline - _TOP
    slot = (WIDTH - _LEFT - 10) / len(days)
    bar = max(1.0, slot * 0.4)
    bars: list[Bar] = []
    day_ticks: list[Tick] = []
    every = max(1, len(days) // 8)
    for i, row in enumerate(days):
        x = _LEFT + i * slot + slot * 0.1
        for j, kind in enumerate(("payouts", "deposits")):
            minor = row[f"{kind}_minor"]
            if minor <= 0:
                continue
            height = span * minor / top
            bars.append(Bar(x + j * bar, baseline - height, bar, height, kind, row["day"], minor))
        if i % every == 0:
            day_ticks.append(Tick(x + bar, baseline + 16, day=row["day"]))
    amount_ticks = [
        Tick(_LEFT, baseline - span * k / 4, minor=round(top * k / 4)) for k in range(5)
    ]
    return Chart(currency, bars, amount_ticks, day_ticks)
