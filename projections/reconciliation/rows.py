"""The exception rows reconciliation writes, and their stable ids."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class ExceptionRow:
    """An exception (``due_date``: a missing deposit is one only after its window closes)."""

    id: str
    kind: str
    source: str
    reference: str
    amount_minor: int
    difference_minor: int | None
    detail: str
    due_date: date | None = None


def exception_id(kind: str, source: str, reference: str) -> str:
    """The stable id of an exception: ``kind:source/reference``."""
    return f"{kind}:{source}/{reference}"


def new_exception(
    kind: str,
    source: str,
    reference: str,
    amount: int,
    difference: int | None,
    detail: str,
    due: date | None = None,
) -> ExceptionRow:
    return ExceptionRow(
        exception_id(kind, source, reference), kind, source, reference, amount, difference,
        detail, due,
    )  # fmt: skip
